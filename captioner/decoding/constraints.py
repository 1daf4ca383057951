"""Masks applied to next-token log-probabilities before a search picks tokens."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .options import DecodingOptions

NEG_INF = float("-inf")


def ban_repeated_ngrams_(logprobs: torch.Tensor, sequences: torch.Tensor, n: int) -> torch.Tensor:
    """Set to -inf, in place, the ``(R, V)`` log-probs of tokens that would repeat an n-gram
    already in each row; returns ``logprobs``.

    ``sequences`` is ``(R, L)``: the tokens generated so far. The work is ``(R, L)``:
    no ``(R, V)`` mask is built.
    """
    rows, length = sequences.shape
    if n < 1 or length < n or length == 0:
        return logprobs
    if n == 1:
        return logprobs.scatter_(1, sequences, NEG_INF)
    grams = sequences.unfold(1, n - 1, 1)  # (R, L-n+2, n-1)
    matches = (grams[:, :-1] == grams[:, -1:]).all(dim=2)  # (R, L-n+1): earlier (n-1)-grams equal to the last
    followers = sequences[:, n - 1 :]  # the token that followed each earlier (n-1)-gram
    # The minimum of each token's own log-prob and, for each match, -inf: exact whatever the duplicates.
    blocked = logprobs.gather(1, followers).masked_fill_(matches, NEG_INF)
    return logprobs.scatter_reduce_(1, followers, blocked, reduce="amin")


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
        ban_repeated_ngrams_(logprobs, sequences, no_repeat_ngram_size)
    stuck = logprobs.amax(dim=1) == NEG_INF  # every token ruled out: one reduction, no (R, V) mask
    logprobs[:, end_id] = torch.where(stuck, end_logprob, logprobs[:, end_id])
    return logprobs
