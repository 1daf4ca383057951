"""What captioning returns: one :class:`CaptionResult` per input image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Candidate:
    """One caption of the n-best list."""

    text: str
    words: list[str]
    score: float
    logprob: float
    finished: bool
    attention: torch.Tensor | None = field(default=None, repr=False)  # (steps, regions), last step is <end>

    def to_dict(self) -> dict[str, Any]:
        return {"caption": self.text, "score": self.score, "logprob": self.logprob, "finished": self.finished}


@dataclass
class CaptionResult:
    """The caption of one image, or the one-line error that explains why there is none.

    ``extras`` holds what post-processors add (e.g. ``extras["sentiment"]``);
    ``postprocess_errors`` maps a post-processor's name to its error.
    """

    image: str
    candidates: list[Candidate] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    postprocess_errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.candidates)

    @property
    def text(self) -> str | None:
        return self.candidates[0].text if self.candidates else None

    @property
    def score(self) -> float | None:
        return self.candidates[0].score if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"image", "caption", "score", "nbest", ...extras}`` or ``{"image", "error"}``."""
        if self.error is not None:
            return {"image": self.image, "error": self.error}
        data: dict[str, Any] = {
            "image": self.image,
            "caption": self.text,
            "score": self.score,
            "nbest": [c.to_dict() for c in self.candidates],
        }
        data.update(self.extras)
        if self.postprocess_errors:
            data["postprocess_errors"] = dict(self.postprocess_errors)
        return data
