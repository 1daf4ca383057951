"""What captioning returns: one :class:`CaptionResult` per input image."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch

from .objects import RecognizedObject

ROW_COLUMNS = ("image", "caption", "score", "error", "original_caption", "objects", "postprocessing")


@dataclass
class Candidate:
    """One caption of the n-best list."""

    text: str
    words: list[str]
    score: float | None  # None for a caption read back from plain text (``captioner postprocess``)
    logprob: float | None
    finished: bool
    attention: torch.Tensor | None = field(default=None, repr=False)  # (steps, regions), last step is <end>
    consensus: float | None = None  # agreement with similar training photos' captions, when reranked by it

    def to_dict(self) -> dict[str, Any]:
        data = {"caption": self.text, "score": self.score, "logprob": self.logprob, "finished": self.finished}
        if self.consensus is not None:
            data["consensus"] = self.consensus
        return data


@dataclass
class CaptionResult:
    """The caption of one image, or the one-line error that explains why there is none.

    ``text`` is the caption: the model's best candidate, or what a rewriting
    post-processor (``translate``) made of it; ``original_text`` then keeps the
    model's words. ``extras`` holds what annotating post-processors add (e.g.
    ``extras["sentiment"]``); ``postprocess_errors`` maps a post-processor spec to
    its error.
    """

    image: str
    candidates: list[Candidate] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    postprocess_errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    language: str = "en"
    rewritten: str | None = None
    objects: list[RecognizedObject] = field(default_factory=list)  # what the encoder's classifier sees
    required_words: list[str] = field(default_factory=list)  # what open-world guidance asked the caption to say

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.candidates)

    @property
    def original_text(self) -> str | None:
        """The model's best caption, before any rewriting."""
        return self.candidates[0].text if self.candidates else None

    @property
    def text(self) -> str | None:
        return self.rewritten if self.rewritten is not None else self.original_text

    def rewrite(self, text: str, language: str | None = None) -> None:
        """Replace the caption text (the candidates keep the model's words)."""
        self.rewritten = text
        if language:
            self.language = language

    @property
    def score(self) -> float | None:
        return self.candidates[0].score if self.candidates else None

    @classmethod
    def from_text(cls, image: str, text: str) -> CaptionResult:
        """A caption given as plain text (no scores), named ``image`` (e.g. ``captions.txt:3``)."""
        return cls(image, [Candidate(text, text.split(), None, None, True)])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaptionResult:
        """Read back what :meth:`to_dict` wrote; other fields (post-processor outputs) go to ``extras``.

        Raises ``ValueError`` naming the first field that is missing or of the wrong type.
        """
        known = {"image", "caption", "score", "nbest", "original_caption", "language", "objects", "required_words",
                 "postprocess_errors", "error"}
        image = data.get("image")
        if not isinstance(image, str):
            raise ValueError("'image' must be a string")
        if data.get("error") is not None:
            return cls(image, error=str(data["error"]))
        nbest = data.get("nbest")
        if nbest is None and isinstance(data.get("caption"), str):  # a hand-written {"image", "caption"} line
            nbest = [{"caption": data["caption"], "score": data.get("score")}]
        if not isinstance(nbest, list) or not nbest or not all(isinstance(c, dict) for c in nbest):
            raise ValueError("'nbest' must be a non-empty list of candidates")
        try:
            candidates = [
                Candidate(str(c["caption"]), str(c["caption"]).split(), c.get("score"), c.get("logprob"),
                          bool(c.get("finished", True)), consensus=c.get("consensus"))
                for c in nbest
            ]
            objects = [RecognizedObject(**o) for o in data.get("objects", [])]
        except (KeyError, TypeError) as error:
            raise ValueError(f"a candidate or object is malformed ({error})") from None
        result = cls(image, candidates, objects=objects, required_words=list(data.get("required_words", [])))
        if "original_caption" in data:
            result.rewrite(str(data["caption"]), str(data.get("language") or "") or None)
        result.extras = {key: value for key, value in data.items() if key not in known}
        result.postprocess_errors = dict(data.get("postprocess_errors") or {})
        return result

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"image", "caption", "score", "nbest", ...extras}`` or ``{"image", "error"}``.

        A rewritten caption adds ``original_caption`` and ``language``.
        """
        if self.error is not None:
            return {"image": self.image, "error": self.error}
        data: dict[str, Any] = {
            "image": self.image,
            "caption": self.text,
            "score": self.score,
            "nbest": [c.to_dict() for c in self.candidates],
        }
        if self.rewritten is not None:
            data["original_caption"] = self.original_text
            data["language"] = self.language
        if self.objects:
            data["objects"] = [o.to_dict() for o in self.objects]
            data["required_words"] = list(self.required_words)
        data.update(self.extras)
        if self.postprocess_errors:
            data["postprocess_errors"] = dict(self.postprocess_errors)
        return data

    def to_row(self) -> dict[str, Any]:
        """One flat table row (:data:`ROW_COLUMNS`, for CSV and Parquet): the caption or the error, the
        recognised objects as text, and the post-processors' outputs and errors as one JSON string."""
        extras = {**self.extras, **({"postprocess_errors": self.postprocess_errors} if self.postprocess_errors else {})}
        return {
            "image": self.image,
            "caption": self.text if self.error is None else None,
            "score": self.score,
            "error": self.error,
            "original_caption": self.original_text if self.rewritten is not None else None,
            "objects": ", ".join(f"{o.label} {o.probability:.2f}" for o in self.objects) or None,
            "postprocessing": json.dumps(extras, ensure_ascii=False) if extras else None,
        }
