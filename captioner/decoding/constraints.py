"""Masks applied to next-token log-probabilities before a search picks tokens."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .options import DecodingOptions

NEG_INF = float("-inf")


def banned_ngram_mask(sequences: torch.Tensor, n: int, vocab_size: int) -> torch.Tensor:
    """``(R, V)`` bool mask of tokens that would repeat an n-gram already in each row.

    ``sequences`` is ``(R, L)``: the tokens generated so far.
    """
    rows, length = sequences.shape
    mask = torch.zeros(rows, vocab_size, dtype=torch.bool, device=sequences.device)
    if n < 1 or length < n - 1 or length == 0:
        return mask
    if n == 1:
        return mask.scatter_(1, sequences, True)
    if length < n:
        return mask
    grams = sequences.unfold(1, n - 1, 1)  # (R, L-n+2, n-1)
    suffix = grams[:, -1:]  # the n-1 tokens just generated
    matches = (grams[:, :-1] == suffix).all(dim=2)  # (R, L-n+1): earlier (n-1)-grams equal to it
    followers = sequences[:, n - 1 :]  # the token that followed each earlier (n-1)-gram
    counts = torch.zeros(rows, vocab_size, device=sequences.device)
    counts.scatter_add_(1, followers, matches.float())
    return counts > 0


def step_logprobs(
    logits: torch.Tensor,
    sequences: torch.Tensor,
    options: DecodingOptions,
    *,
    step: int,
    end_id: int,
    banned_ids: Sequence[int],
    dtype: torch.dtype,
    adjust: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """A decoder step's logits ``(R, V)`` as log-probabilities in ``dtype`` that a search may
    choose from: ``adjust`` (lexical constraints) first, then the options' limits (:func:`constrain`)."""
    logprobs = torch.log_softmax(logits.to(dtype), dim=-1)
    if adjust is not None:
        logprobs = adjust(logprobs)
    return constrain(logprobs, sequences, step=step, min_length=options.min_length,
                     no_repeat_ngram_size=options.no_repeat_ngram_size, end_id=end_id, banned_ids=banned_ids)


def constrain(
    logprobs: torch.Tensor,
    sequences: torch.Tensor,
    *,
    step: int,
    min_length: int,
    no_repeat_ngram_size: int,
    end_id: int,
    banned_ids: Sequence[int],
) -> torch.Tensor:
    """Apply banned tokens, minimum length and n-gram blocking to ``(R, V)`` log-probs, in place.

    ``logprobs`` must be the caller's own tensor (:func:`step_logprobs` makes a fresh
    one each step): it is changed and returned, sparing an ``(R, V)`` copy a step.
    ``step`` is 1 for the first generated token. A row left with no allowed token
    may still end, so no search ever runs out of choices.
    """
    end_logprob = logprobs[:, end_id].clone()
    if banned_ids:
        logprobs[:, list(banned_ids)] = NEG_INF
    if step <= min_length:
        logprobs[:, end_id] = NEG_INF
    if no_repeat_ngram_size:
        logprobs.masked_fill_(banned_ngram_mask(sequences, no_repeat_ngram_size, logprobs.size(1)), NEG_INF)
    stuck = logprobs.amax(dim=1) == NEG_INF  # every token ruled out: one reduction, no (R, V) mask
    logprobs[:, end_id] = torch.where(stuck, end_logprob, logprobs[:, end_id])
    return logprobs
