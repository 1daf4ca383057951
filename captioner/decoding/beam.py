"""Beam search batched over images x beams.

All ``B * k`` beams advance together: one decoder step on ``(B*k)`` rows, one
``topk`` over ``(B, k*V)`` candidates per step (with lexical constraints, per group of
beams that met the same constraints: see :func:`beam_search`). At step 1 only beam 0
of each image is alive, so the k beams start distinct. Each image keeps a pool of its k best finished
hypotheses; it stops counting once the pool is full and no live beam can still beat
the pool's worst, and the loop exits when every image has stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..decoder import StepDecoder
from .constraints import NEG_INF, step_logprobs
from .lexical import LexicalConstraints, RowConstraints
from .options import DecodingOptions, Hypothesis, score_dtype


def _length_bound(step: int, max_length: int, length_penalty: float) -> float:
    """Largest ``length ** length_penalty`` any continuation of a live beam can reach."""
    if length_penalty > 0:
        return float(max_length) ** length_penalty
    return float(step + 1) ** length_penalty


@torch.inference_mode()
def beam_search(
    decoder: StepDecoder,
    source: Any,
    options: DecodingOptions,
    *,
    start_id: int,
    end_id: int,
    banned_ids: Sequence[int] = (),
    constraints: LexicalConstraints | None = None,
) -> list[list[Hypothesis]]:
    """Return, per source, up to ``n_best`` hypotheses sorted best first.

    ``source`` is what ``decoder.init_state`` takes: an image's :class:`EncoderOutput`
    for a caption decoder, a sentence's encoder states for the translator; "image"
    below means one row of it.

    With ``constraints`` this is constrained beam search: every image keeps k beams
    for each set of slots met so far (``2**C`` groups for ``C`` slots, a finite-state
    machine over the constraints); saying any token of slot ``i`` moves a beam to the
    group with bit ``i`` set. The captions come from the group that met the most
    slots among those whose best caption in mean log-probability per word (whatever
    the length penalty) is within the image's margin (``constraints.margins``) of the
    best of any group.
    Without constraints there is one group and this is plain beam search.
    """
    start_state = decoder.init_state(source)
    first = next(iter(start_state.values()))
    batch = first.size(0)
    k = options.beam_size
    max_length = options.max_length
    lp = options.length_penalty
    device = first.device
    dtype = score_dtype(*start_state.values())
    slots = constraints.slots if constraints is not None else 0
    groups = 1 << slots  # per image: which required tokens are in
    accept = groups - 1
    n_groups = batch * groups
    group_image = torch.arange(batch, device=device).repeat_interleave(groups)  # (G,)
    group_state = torch.arange(groups, device=device).repeat(batch)  # (G,)
    row_image = group_image.repeat_interleave(k)  # (G*k,)
    no_slots = torch.empty(batch, 0, 1, dtype=torch.long, device=device)
    required = constraints.required if constraints is not None else no_slots  # (B, C, S)

    row_constraints = constraints.for_rows(row_image) if constraints is not None else None
    state = decoder.reorder_state(start_state, row_image)
    tokens = torch.full((n_groups * k,), start_id, dtype=torch.long, device=device)
    sequences = torch.empty(n_groups * k, 0, dtype=torch.long, device=device)
    beam_scores = torch.full((n_groups, k), NEG_INF, dtype=dtype, device=device)
    unused_slots = (required < 0).all(dim=2).long() << torch.arange(slots, device=device)  # (B, C): met from the start
    beam_scores[torch.arange(batch, device=device) * groups + unused_slots.sum(dim=1), 0] = 0.0
    history: torch.Tensor | None = None  # attention so far, (G*k, t, N)

    # The finished pool: k slots per group, sorted best first, -inf when empty.
    pool_scores = torch.full((n_groups, k), NEG_INF, dtype=dtype, device=device)
    pool_logprobs = torch.full((n_groups, k), NEG_INF, dtype=dtype, device=device)
    pool_lengths = torch.zeros(n_groups, k, dtype=torch.long, device=device)
    pool_tokens = torch.zeros(n_groups, k, max_length, dtype=torch.long, device=device)
    pool_attention: torch.Tensor | None = None
    done = torch.zeros(n_groups, dtype=torch.bool, device=device)

    for step in range(1, max_length + 1):
        inputs = constraints.decoder_inputs(tokens) if constraints is not None else tokens
        out = decoder.step(inputs, state)
        lexical = None if row_constraints is None else (  # this step's tokens, bound now
            lambda logprobs, previous=tokens: row_constraints.logprobs(logprobs, previous))
        logprobs = step_logprobs(out.logits, sequences, options, step=step, end_id=end_id, banned_ids=banned_ids,
                                 dtype=dtype, adjust=lexical)  # (G*k, V)
        vocab = logprobs.size(1)
        candidates = _candidates(logprobs, beam_scores, required, row_constraints, groups)  # (G, k*V + C*S*k)
        n_cand = min(2 * k, candidates.size(1))
        cand_scores, cand_index = candidates.topk(n_cand, dim=1)  # (G, n_cand), best first
        cand_rows, cand_token = _decode_candidates(cand_index, required, group_image, group_state, groups, k, vocab)
        ranks = torch.arange(n_cand, device=device).unsqueeze(0)

        # Candidates ending in <end> among the top k join their group's finished pool.
        ends = (cand_token == end_id) & (ranks < k) & torch.isfinite(cand_scores) & ~done.unsqueeze(1)
        if ends.any():
            end_scores = torch.where(ends, cand_scores / float(step) ** lp, NEG_INF)
            merged_scores, keep = torch.cat([pool_scores, end_scores], dim=1).topk(k, dim=1)
            padded = torch.zeros(n_groups * n_cand, max_length, dtype=torch.long, device=device)
            padded[:, : step - 1] = sequences.index_select(0, cand_rows)
            padded = padded.view(n_groups, n_cand, max_length)
            pool_tokens = _take(torch.cat([pool_tokens, padded], dim=1), keep)
            pool_logprobs = torch.cat([pool_logprobs, cand_scores], dim=1).gather(1, keep)
            step_lengths = torch.full_like(cand_token, step)
            pool_lengths = torch.cat([pool_lengths, step_lengths], dim=1).gather(1, keep)
            if out.attention is not None:
                attention = _extend(history, out.attention, cand_rows).view(n_groups, n_cand, step, -1)
                if pool_attention is None:
                    pool_attention = attention.new_zeros(n_groups, k, max_length, attention.size(-1))
                padded_attention = attention.new_zeros(n_groups, n_cand, max_length, attention.size(-1))
                padded_attention[:, :, :step] = attention
                pool_attention = _take(torch.cat([pool_attention, padded_attention], dim=1), keep)
            pool_scores = merged_scores

        # The best k candidates that did not end become the next beams.
        live_scores, live = torch.where(cand_token == end_id, NEG_INF, cand_scores).topk(k, dim=1)
        next_rows = cand_rows.view(n_groups, n_cand).gather(1, live).view(-1)
        tokens = cand_token.gather(1, live).view(-1)
        sequences = torch.cat([sequences.index_select(0, next_rows), tokens.unsqueeze(1)], dim=1)
        state = decoder.reorder_beams(out.state, next_rows)  # beams stay within their image
        if out.attention is not None:
            history = _extend(history, out.attention, next_rows)
        beam_scores = live_scores

        # An image is done when its accepting pool is full and no live beam of any group can beat it.
        best_live = beam_scores.max(dim=1).values.view(batch, groups).max(dim=1).values
        worst_kept = pool_scores.view(batch, groups, k)[:, accept, -1]
        hopeless = best_live / _length_bound(step, max_length, lp) <= worst_kept
        image_done = (torch.isfinite(worst_kept) & hopeless) | torch.isinf(best_live)
        done = image_done.repeat_interleave(groups)
        if bool(done.all()):
            break

    n_best = min(options.n_best or k, k)
    margins = constraints.margins.tolist() if constraints is not None else [0.0] * batch
    final = _FinalState.from_search(pool_scores, pool_logprobs, pool_lengths, pool_tokens, pool_attention,
                                    beam_scores, sequences.view(n_groups, k, -1), history, lp)
    results = []
    for b in range(batch):
        best = {g: score for g in range(groups) if (score := final.best_score(b * groups + g)) > NEG_INF}
        per_word = {g: final.best_per_word(b * groups + g) for g in best}
        top = max(per_word.values(), default=NEG_INF)
        # The group that met most slots, among those within the image's margin of the best caption.
        eligible = [g for g in best if per_word[g] >= top - margins[b]]
        chosen = max(eligible, key=lambda g: (bin(g).count("1"), best[g]), default=accept)
        results.append(final.hypotheses(b * groups + chosen, n_best))
    return results


def _candidates(
    logprobs: torch.Tensor, beam_scores: torch.Tensor, required: torch.Tensor, rows: RowConstraints | None,
    groups: int,
) -> torch.Tensor:
    """Scores of every way to extend a group's beams: ``(G, k*V + C*S*k)``.

    The first ``k*V`` stay in the group (any token that no slot holds); the rest
    enter it by saying token ``s`` of slot ``i`` from the group without bit ``i``.
    ``logprobs`` is used up: the scores of staying are written into it (required tokens at -inf).
    """
    n_groups, k = beam_scores.shape
    _, slots, choices = required.shape
    if not slots or rows is None:
        return logprobs.add_(beam_scores.view(-1, 1)).reshape(n_groups, -1)  # in place: no new (G*k, V) array
    say = logprobs.gather(1, rows.required.clamp(min=0)).masked_fill_(rows.required < 0, NEG_INF)  # (G*k, C*S)
    stay_scores = logprobs.masked_fill_(rows.is_required, NEG_INF).add_(beam_scores.view(-1, 1)).reshape(n_groups, -1)
    say = (beam_scores.view(-1, 1) + say).view(-1, groups, k, slots, choices).permute(0, 1, 3, 4, 2)  # (B, g, C, S, k)
    bits = 1 << torch.arange(slots, device=logprobs.device)
    states = torch.arange(groups, device=logprobs.device).unsqueeze(1)  # (groups, 1)
    source = states ^ bits  # (groups, C): the group a beam enters from by saying a token of slot i
    enter = say[:, source, torch.arange(slots, device=logprobs.device)]  # (B, groups, C, S, k)
    enter = enter.masked_fill(((states & bits) == 0).view(1, groups, slots, 1, 1), NEG_INF)
    return torch.cat([stay_scores, enter.reshape(n_groups, slots * choices * k)], dim=1)


def _decode_candidates(
    index: torch.Tensor, required: torch.Tensor, group_image: torch.Tensor, group_state: torch.Tensor,
    groups: int, k: int, vocab: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source row ``(G*n,)`` and token ``(G, n)`` of each candidate index from :func:`_candidates`."""
    _, slots, choices = required.shape
    stays = index < k * vocab
    entry = (index - k * vocab).clamp(min=0)
    slot = (entry // (choices * k)).clamp(max=max(slots - 1, 0))
    choice = entry % (choices * k) // k
    image = group_image.unsqueeze(1)
    source_state = torch.where(stays, group_state.unsqueeze(1), group_state.unsqueeze(1) ^ (1 << slot))
    beam = torch.where(stays, index // vocab, entry % k)
    token = index % vocab
    if slots:
        token = torch.where(stays, token, required[image, slot, choice])
    rows = ((image * groups + source_state) * k + beam).view(-1)
    return rows, token


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, index[b, j]]`` for a ``(B, M, ...)`` tensor and ``(B, J)`` index."""
    return values[torch.arange(values.size(0), device=values.device).unsqueeze(1), index]


def _extend(history: torch.Tensor | None, attention: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Attention history of ``rows`` with this step's attention appended: ``(R, t, N)``."""
    current = attention.index_select(0, rows).unsqueeze(1)
    if history is None:
        return current
    return torch.cat([history.index_select(0, rows), current], dim=1)


def _to_host(values: torch.Tensor | None) -> np.ndarray | None:
    """A float32 copy of ``values`` in host memory; from a GPU, a pinned copy that does not wait for it.

    It is complete once anything later on the same stream has been read (``tolist()``).
    """
    if values is None:
        return None
    values = values.float()
    if values.device.type != "cuda":
        return values.cpu().numpy()
    host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
    return host.copy_(values, non_blocking=True).numpy()


@dataclass
class _FinalState:
    """What a search ends with, copied to the host once: the per-image loop then reads
    Python lists and arrays (on a GPU, reading device tensors element by element would
    wait on the device once per element)."""

    pool_scores: list[list[float]]  # (G, k), best first, -inf when empty
    pool_logprobs: list[list[float]]
    pool_lengths: list[list[int]]
    pool_tokens: list[list[list[int]]]  # (G, k, max_length)
    pool_attention: np.ndarray | None  # (G, k, max_length, N)
    beam_scores: list[list[float]]  # (G, k), live beams
    live_tokens: list[list[list[int]]]  # (G, k, t)
    history: np.ndarray | None  # (G*k, t, N)
    length_penalty: float

    @classmethod
    def from_search(cls, pool_scores: torch.Tensor, pool_logprobs: torch.Tensor, pool_lengths: torch.Tensor,
                    pool_tokens: torch.Tensor, pool_attention: torch.Tensor | None, beam_scores: torch.Tensor,
                    live_tokens: torch.Tensor, history: torch.Tensor | None, length_penalty: float) -> _FinalState:
        attention, history_ = _to_host(pool_attention), _to_host(history)  # queued before tolist() waits
        return cls(pool_scores.tolist(), pool_logprobs.tolist(), pool_lengths.tolist(), pool_tokens.tolist(),
                   attention, beam_scores.tolist(), live_tokens.tolist(), history_, length_penalty)

    def best_score(self, group: int) -> float:
        """The score of :meth:`hypotheses`' first: the best finished one, else the best live beam."""
        if self.pool_scores[group][0] > NEG_INF:
            return self.pool_scores[group][0]
        length = float(len(self.live_tokens[group][0])) ** self.length_penalty
        return max(self.beam_scores[group]) / length

    def best_per_word(self, group: int) -> float:
        """The best mean log-probability per word (the end included) among :meth:`hypotheses`."""
        if self.pool_scores[group][0] > NEG_INF:
            return max(logprob / length for logprob, length, score
                       in zip(self.pool_logprobs[group], self.pool_lengths[group], self.pool_scores[group])
                       if score > NEG_INF)
        return max(self.beam_scores[group]) / len(self.live_tokens[group][0])

    def hypotheses(self, group: int, n_best: int) -> list[Hypothesis]:
        """Finished hypotheses of ``group``; if none finished, its best live beams."""
        found = []
        for j, score in enumerate(self.pool_scores[group][:n_best]):
            if score == NEG_INF:
                break
            length = self.pool_lengths[group][j]
            found.append(Hypothesis(
                token_ids=self.pool_tokens[group][j][: length - 1],
                score=score,
                logprob=self.pool_logprobs[group][j],
                finished=True,
                attention=None if self.pool_attention is None else torch.from_numpy(
                    self.pool_attention[group, j, :length].copy()),
            ))
        if found:
            return found
        k = len(self.beam_scores[group])
        live = sorted(range(k), key=lambda j: -self.beam_scores[group][j])  # stable: ties keep beam order
        for j in live:
            logprob = self.beam_scores[group][j]
            if logprob == NEG_INF:
                continue
            tokens = self.live_tokens[group][j]
            found.append(Hypothesis(
                token_ids=tokens,
                score=logprob / float(len(tokens)) ** self.length_penalty,
                logprob=logprob,
                finished=False,
                attention=None if self.history is None else torch.from_numpy(self.history[group * k + j].copy()),
            ))
        return found[:n_best]
