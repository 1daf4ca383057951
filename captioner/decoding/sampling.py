"""Greedy decoding and seeded top-k / top-p sampling, batched over images."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..decoder import ImageRows, StepDecoder
from .constraints import NEG_INF, step_logprobs
from .options import DecodingOptions, Hypothesis, score_dtype


def filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Set to -inf every token outside the top-k and outside the top-p nucleus."""
    if top_k and top_k < logits.size(-1):
        kth_best = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_best, NEG_INF)
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        outside = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # keep the token that crosses top_p
        logits = logits.masked_fill(outside.scatter(1, order, outside), NEG_INF)
    return logits


@torch.inference_mode()
def sample(
    decoder: StepDecoder,
    features: ImageRows,
    options: DecodingOptions,
    *,
    start_id: int,
    end_id: int,
    banned_ids: Sequence[int] = (),
) -> list[list[Hypothesis]]:
    """One hypothesis per image: argmax tokens (``method="greedy"``) or sampled ones."""
    batch = features.pooled.size(0)
    device = features.pooled.device
    dtype = score_dtype(features.pooled)
    greedy = options.method == "greedy"
    generator = None
    if not greedy and options.seed is not None:
        generator = torch.Generator(device=device).manual_seed(options.seed)

    state = decoder.init_state(features)
    tokens = torch.full((batch,), start_id, dtype=torch.long, device=device)
    sequences = torch.empty(batch, 0, dtype=torch.long, device=device)
    logprob_sum = torch.zeros(batch, dtype=dtype, device=device)
    lengths = torch.full((batch,), options.max_length, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    attention_steps: list[torch.Tensor] = []

    for step in range(1, options.max_length + 1):
        out = decoder.step(tokens, state)
        logprobs = step_logprobs(out.logits, sequences, options, step=step, end_id=end_id, banned_ids=banned_ids,
                                 dtype=dtype)
        if greedy:
            next_tokens = logprobs.argmax(dim=-1)
        else:
            filtered = filter_top_k_top_p(logprobs / options.temperature, options.top_k, options.top_p)
            next_tokens = torch.multinomial(filtered.softmax(dim=-1), 1, generator=generator).squeeze(1)
        next_tokens = torch.where(finished, end_id, next_tokens)
        logprob_sum += torch.where(finished, 0.0, logprobs.gather(1, next_tokens.unsqueeze(1)).squeeze(1))
        just_ended = (next_tokens == end_id) & ~finished
        lengths = torch.where(just_ended, step, lengths)
        finished |= just_ended
        sequences = torch.cat([sequences, next_tokens.unsqueeze(1)], dim=1)
        if out.attention is not None:
            attention_steps.append(out.attention)
        if bool(finished.all()):
            break
        tokens = next_tokens
        state = out.state

    attention = torch.stack(attention_steps, dim=1).cpu() if attention_steps else None
    results = []
    for b in range(batch):
        length = int(lengths[b])
        n_words = length - 1 if finished[b] else length
        logprob = float(logprob_sum[b])
        results.append(
            [
                Hypothesis(
                    token_ids=sequences[b, :n_words].tolist(),
                    score=logprob / float(length) ** options.length_penalty,
                    logprob=logprob,
                    finished=bool(finished[b]),
                    attention=None if attention is None else attention[b, :length],
                )
            ]
        )
    return results
