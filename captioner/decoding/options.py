"""Decoding options and the hypothesis type every search returns."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch

from ..methods import METHODS, Method


@dataclass(frozen=True)
class DecodingOptions:
    """How to turn decoder steps into captions.

    ``length_penalty`` divides a hypothesis' log-probability by ``length ** length_penalty``
    (length counts generated tokens, ``<end>`` included): 0 ranks by raw log-probability,
    1 by the mean per token. ``min_length`` is the fewest words before ``<end>`` is allowed.

    Open-world guidance (beam search, encoders with a classifier; see
    :mod:`captioner.objects`): with ``guide`` on, up to ``max_objects`` words for what
    the classifier recognises with at least ``object_threshold`` probability
    (``new_word_threshold`` for words added to the vocabulary) must be in the caption,
    and words for things it gives less than ``absent_threshold`` are not said.
    ``open_vocabulary`` lets it name classes outside the caption vocabulary.
    A required word is left out when the best caption with it scores (mean
    log-probability per word) lower than the best caption without it by more than
    ``object_margin`` times the word's confidence, which grows from 0 at
    ``object_threshold`` to 1 at certainty: the decoder finds no sentence it fits.

    Evidence (models with a people detector and a caption language model; see
    :mod:`captioner.evidence`): with ``guide`` on, words for people, and words that
    captions say only with people, are not said where the detector gives people less
    than ``people_threshold`` (nor words said only with people or dogs where the dog
    classes have less than ``absent_threshold`` too); and the language model's
    log-probabilities, conditioned on the photo's evidence (people, a dog), are added to
    the decoder's ``language_weight`` times the photo's unfamiliarity (0 for photos like
    the training photos, 1 for photos unlike any of them). 0 turns either off.

    Colours (see :mod:`captioner.colours`): with ``guide`` on, a colour word is not said
    where fewer than ``colour_threshold`` of the photo's pixels have that colour (features
    from :meth:`Captioner.encode` carry the shares). 0 turns it off.

    Consensus reranking (models with a caption memory; see :mod:`captioner.consensus`):
    with ``consensus_neighbours`` above 0, the beam's candidates are reordered by their
    agreement (CIDEr-D) with the captions of that many training photos most like the
    image, plus ``consensus_weight`` times their own score, minus ``consensus_generic``
    times their agreement with captions in general (which favours the specific caption
    over the stock phrase).
    """

    method: Method = "beam"
    beam_size: int = 3
    max_length: int = 20
    min_length: int = 1
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    suppress_unk: bool = True
    n_best: int | None = None  # how many hypotheses to return (beam search), default beam_size
    top_k: int = 0  # sampling: keep the k most likely tokens (0 keeps all)
    top_p: float = 1.0  # sampling: keep the smallest set with this much probability
    temperature: float = 1.0
    seed: int | None = None
    guide: bool = True
    object_threshold: float = 0.3
    new_word_threshold: float = 0.5
    max_objects: int = 1
    absent_threshold: float = 0.05
    open_vocabulary: bool = True
    object_margin: float = 0.4
    people_threshold: float = 0.0
    language_weight: float = 0.0
    colour_threshold: float = 0.0
    consensus_neighbours: int = 0
    consensus_weight: float = 0.0
    consensus_generic: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be {', '.join(METHODS[:-1])} or {METHODS[-1]}, not {self.method!r}")
        if self.beam_size < 1:
            problems.append(f"beam_size must be >= 1, not {self.beam_size}")
        if self.max_length < 1:
            problems.append(f"max_length must be >= 1, not {self.max_length}")
        if not 0 <= self.min_length <= self.max_length:
            problems.append(f"min_length must be between 0 and max_length, not {self.min_length}")
        if self.no_repeat_ngram_size < 0:
            problems.append("no_repeat_ngram_size must be >= 0")
        if self.n_best is not None and not 1 <= self.n_best:
            problems.append("n_best must be >= 1")
        if self.top_k < 0:
            problems.append("top_k must be >= 0")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], not {self.top_p}")
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0, not {self.temperature}")
        if not 0 <= self.object_threshold <= 1:
            problems.append(f"object_threshold must be in [0, 1], not {self.object_threshold}")
        if not 0 <= self.new_word_threshold <= 1:
            problems.append(f"new_word_threshold must be in [0, 1], not {self.new_word_threshold}")
        if not 0 <= self.max_objects <= 3:
            problems.append(f"max_objects must be 0 to 3, not {self.max_objects}")
        if self.object_margin < 0:
            problems.append(f"object_margin must be >= 0, not {self.object_margin}")
        if not 0 <= self.people_threshold <= 1:
            problems.append(f"people_threshold must be in [0, 1], not {self.people_threshold}")
        if not 0 <= self.colour_threshold <= 1:
            problems.append(f"colour_threshold must be in [0, 1], not {self.colour_threshold}")
        if self.language_weight < 0:
            problems.append(f"language_weight must be >= 0, not {self.language_weight}")
        if not 0 <= self.absent_threshold <= 1:
            problems.append(f"absent_threshold must be in [0, 1], not {self.absent_threshold}")
        if self.consensus_neighbours < 0:
            problems.append(f"consensus_neighbours must be >= 0, not {self.consensus_neighbours}")
        if self.consensus_weight < 0 or self.consensus_generic < 0:
            problems.append("consensus_weight and consensus_generic must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    def updated(self, **changes: Any) -> DecodingOptions:
        """A copy with the given fields changed; ``None`` values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


@dataclass
class Hypothesis:
    """One candidate caption: token ids (no specials), scores and optional attention ``(T, N)``."""

    token_ids: list[int]
    score: float  # log-probability / length ** length_penalty
    logprob: float
    finished: bool  # False when max_length was reached before <end>
    attention: torch.Tensor | None = field(default=None, repr=False)


def score_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """Scores are accumulated in float32, or float64 when the inputs (features, states) are float64."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32
