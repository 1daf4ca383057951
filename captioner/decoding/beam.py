"""Beam search batched over images x beams.

All ``B * k`` beams advance together: one decoder step on ``(B*k)`` rows, one
``topk`` over ``(B, k*V)`` candidates per step. At step 1 only beam 0 of each image is
alive, so the k beams start distinct. Each image keeps a pool of its k best finished
hypotheses; it stops counting once the pool is full and no live beam can still beat
the pool's worst, and the loop exits when every image has stopped.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..decoder import Decoder
from ..encoder import EncoderOutput
from .constraints import NEG_INF, constrain
from .options import DecodingOptions, Hypothesis, score_dtype


def _length_bound(step: int, max_length: int, length_penalty: float) -> float:
    """Largest ``length ** length_penalty`` any continuation of a live beam can reach."""
    if length_penalty > 0:
        return float(max_length) ** length_penalty
    return float(step + 1) ** length_penalty


@torch.inference_mode()
def beam_search(
    decoder: Decoder,
    features: EncoderOutput,
    options: DecodingOptions,
    *,
    start_id: int,
    end_id: int,
    banned_ids: Sequence[int] = (),
) -> list[list[Hypothesis]]:
    """Return, per image, up to ``n_best`` hypotheses sorted best first."""
    batch = features.pooled.size(0)
    k = options.beam_size
    max_length = options.max_length
    lp = options.length_penalty
    device = features.pooled.device
    dtype = score_dtype(features)

    rows = torch.arange(batch, device=device).repeat_interleave(k)
    state = decoder.reorder_state(decoder.init_state(features), rows)
    tokens = torch.full((batch * k,), start_id, dtype=torch.long, device=device)
    sequences = torch.empty(batch * k, 0, dtype=torch.long, device=device)
    beam_scores = torch.full((batch, k), NEG_INF, dtype=dtype, device=device)
    beam_scores[:, 0] = 0.0
    history: torch.Tensor | None = None  # attention so far, (B*k, t, N)

    # The finished pool: k slots per image, sorted best first, -inf when empty.
    pool_scores = torch.full((batch, k), NEG_INF, dtype=dtype, device=device)
    pool_logprobs = torch.full((batch, k), NEG_INF, dtype=dtype, device=device)
    pool_lengths = torch.zeros(batch, k, dtype=torch.long, device=device)
    pool_tokens = torch.zeros(batch, k, max_length, dtype=torch.long, device=device)
    pool_attention: torch.Tensor | None = None
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    image_offsets = (torch.arange(batch, device=device) * k).unsqueeze(1)  # (B, 1)

    for step in range(1, max_length + 1):
        out = decoder.step(tokens, state)
        logprobs = torch.log_softmax(out.logits.to(dtype), dim=-1)  # (B*k, V)
        logprobs = constrain(
            logprobs,
            sequences,
            step=step,
            min_length=options.min_length,
            no_repeat_ngram_size=options.no_repeat_ngram_size,
            end_id=end_id,
            banned_ids=banned_ids,
        )
        vocab = logprobs.size(1)
        candidates = (beam_scores.view(-1, 1) + logprobs).view(batch, k * vocab)
        n_cand = min(2 * k, k * vocab)
        cand_scores, cand_index = candidates.topk(n_cand, dim=1)  # (B, n_cand), best first
        cand_beam = cand_index // vocab
        cand_token = cand_index % vocab
        cand_rows = (image_offsets + cand_beam).view(-1)  # source row of every candidate
        ranks = torch.arange(n_cand, device=device).unsqueeze(0)

        # Candidates ending in <end> among the top k join the finished pool.
        ends = (cand_token == end_id) & (ranks < k) & torch.isfinite(cand_scores) & ~done.unsqueeze(1)
        if ends.any():
            end_scores = torch.where(ends, cand_scores / float(step) ** lp, NEG_INF)
            merged_scores, keep = torch.cat([pool_scores, end_scores], dim=1).topk(k, dim=1)
            padded = torch.zeros(batch * n_cand, max_length, dtype=torch.long, device=device)
            padded[:, : step - 1] = sequences.index_select(0, cand_rows)
            padded = padded.view(batch, n_cand, max_length)
            pool_tokens = _take(torch.cat([pool_tokens, padded], dim=1), keep)
            pool_logprobs = torch.cat([pool_logprobs, cand_scores], dim=1).gather(1, keep)
            step_lengths = torch.full_like(cand_beam, step)
            pool_lengths = torch.cat([pool_lengths, step_lengths], dim=1).gather(1, keep)
            if out.attention is not None:
                attention = _extend(history, out.attention, cand_rows).view(batch, n_cand, step, -1)
                if pool_attention is None:
                    pool_attention = attention.new_zeros(batch, k, max_length, attention.size(-1))
                padded_attention = attention.new_zeros(batch, n_cand, max_length, attention.size(-1))
                padded_attention[:, :, :step] = attention
                pool_attention = _take(torch.cat([pool_attention, padded_attention], dim=1), keep)
            pool_scores = merged_scores

        # The best k candidates that did not end become the next beams.
        live_scores, live = torch.where(cand_token == end_id, NEG_INF, cand_scores).topk(k, dim=1)
        next_rows = cand_rows.view(batch, n_cand).gather(1, live).view(-1)
        tokens = cand_token.gather(1, live).view(-1)
        sequences = torch.cat([sequences.index_select(0, next_rows), tokens.unsqueeze(1)], dim=1)
        state = decoder.reorder_beams(out.state, next_rows)  # beams stay within their image
        if out.attention is not None:
            history = _extend(history, out.attention, next_rows)
        beam_scores = live_scores

        best_live = beam_scores.max(dim=1).values
        pool_full = torch.isfinite(pool_scores[:, -1])
        hopeless = best_live / _length_bound(step, max_length, lp) <= pool_scores[:, -1]
        done |= (pool_full & hopeless) | torch.isinf(best_live)
        if bool(done.all()):
            break

    n_best = min(options.n_best or k, k)
    return [
        _image_hypotheses(
            b, n_best, lp, pool_scores, pool_logprobs, pool_lengths, pool_tokens, pool_attention,
            beam_scores, sequences.view(batch, k, -1), history,
        )
        for b in range(batch)
    ]


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, index[b, j]]`` for a ``(B, M, ...)`` tensor and ``(B, J)`` index."""
    return values[torch.arange(values.size(0), device=values.device).unsqueeze(1), index]


def _extend(history: torch.Tensor | None, attention: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Attention history of ``rows`` with this step's attention appended: ``(R, t, N)``."""
    current = attention.index_select(0, rows).unsqueeze(1)
    if history is None:
        return current
    return torch.cat([history.index_select(0, rows), current], dim=1)


def _image_hypotheses(
    b: int,
    n_best: int,
    lp: float,
    pool_scores: torch.Tensor,
    pool_logprobs: torch.Tensor,
    pool_lengths: torch.Tensor,
    pool_tokens: torch.Tensor,
    pool_attention: torch.Tensor | None,
    beam_scores: torch.Tensor,
    live_tokens: torch.Tensor,
    history: torch.Tensor | None,
) -> list[Hypothesis]:
    """Finished hypotheses of image ``b``; if none finished, its best live beams."""
    hypotheses = []
    for j in range(pool_scores.size(1)):
        score = float(pool_scores[b, j])
        if score == NEG_INF:
            break
        length = int(pool_lengths[b, j])
        attention = None if pool_attention is None else pool_attention[b, j, :length].cpu()
        hypotheses.append(
            Hypothesis(
                token_ids=pool_tokens[b, j, : length - 1].tolist(),
                score=score,
                logprob=float(pool_logprobs[b, j]),
                finished=True,
                attention=attention,
            )
        )
    if not hypotheses:
        k = beam_scores.size(1)
        length = live_tokens.size(2)
        order = beam_scores[b].argsort(descending=True, stable=True).tolist()
        for j in order:
            logprob = float(beam_scores[b, j])
            if logprob == NEG_INF:
                continue
            attention = None if history is None else history.view(-1, k, *history.shape[1:])[b, j].cpu()
            hypotheses.append(
                Hypothesis(
                    token_ids=live_tokens[b, j].tolist(),
                    score=logprob / float(length) ** lp,
                    logprob=logprob,
                    finished=False,
                    attention=attention,
                )
            )
    return hypotheses[:n_best]
