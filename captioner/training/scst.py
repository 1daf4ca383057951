"""Self-critical sequence training: sampled captions rewarded by CIDEr-D.

Each image gets ``n`` sampled captions; a caption's advantage is its reward minus the
mean reward of the image's other samples (no greedy pass needed), and the loss is
``-advantage * log P(caption)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..cider import CiderD
from ..decoder import Decoder
from ..encoder import EncoderOutput
from ..vocab import Vocabulary


def sample_captions(
    decoder: Decoder, features: EncoderOutput, samples: int, max_length: int, banned: Sequence[int],
    end_id: int, start_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``samples`` captions per image: tokens ``(B*n, T)`` and their log-probabilities ``(B*n,)``."""
    rows = torch.arange(features.pooled.size(0), device=features.pooled.device).repeat_interleave(samples)
    state = decoder.reorder_state(decoder.init_state(features), rows)
    tokens = torch.full((rows.numel(),), start_id, dtype=torch.long, device=rows.device)
    alive = torch.ones(rows.numel(), dtype=torch.bool, device=rows.device)
    logprob = torch.zeros(rows.numel(), device=rows.device)
    sampled = []
    for _ in range(max_length):
        out = decoder.step(tokens, state)
        logits = out.logits.float()
        logits[:, list(banned)] = float("-inf")
        logprobs = torch.log_softmax(logits, dim=-1)
        tokens = torch.multinomial(logprobs.detach().exp(), 1).squeeze(1)
        logprob = logprob + logprobs.gather(1, tokens.unsqueeze(1)).squeeze(1) * alive
        tokens = torch.where(alive, tokens, end_id)
        sampled.append(tokens)
        alive = alive & (tokens != end_id)
        state = out.state
        if not alive.any():
            break
    return torch.stack(sampled, 1), logprob


def scst_loss(
    decoder: Decoder, features: EncoderOutput, image_keys: list[int], references: list[list[list[str]]],
    cider: CiderD, vocab: Vocabulary, samples: int, max_length: int,
) -> tuple[torch.Tensor, float]:
    """The self-critical loss for one batch, and the batch's mean reward."""
    banned = vocab.never_said()
    tokens, logprob = sample_captions(decoder, features, samples, max_length, banned, vocab.end_id, vocab.start_id)
    rewards = torch.tensor(
        [cider.score(vocab.decode(row), image_keys[i // samples], references[i // samples])
         for i, row in enumerate(tokens.tolist())],
        device=logprob.device,
    ).view(-1, samples)
    baseline = (rewards.sum(1, keepdim=True) - rewards) / max(1, samples - 1)
    advantage = (rewards - baseline).view(-1)
    return -(advantage * logprob).mean(), float(rewards.mean())
