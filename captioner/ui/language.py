"""The page's Language choice: which translating post-processor serves each language, and the n-best list in it."""

from __future__ import annotations

from dataclasses import dataclass

from ..captioner import Captioner
from ..postprocessing import parse_spec
from ..results import CaptionResult

ENGLISH = "en"
NAMES = {"en": "English", "de": "Deutsch (German)", "fr": "Français (French)", "es": "Español (Spanish)",
         "ca": "Català (Catalan)", "gl": "Galego (Galician)", "eo": "Esperanto"}
# Apertium first where it is installed; our own RNN translators work without it.
ENGINES = ("translate", "translate-rnn")


@dataclass(frozen=True)
class Languages:
    """The languages captions can be shown in, each with the post-processor spec that translates into it."""

    specs: dict[str, str]  # language code -> spec, e.g. {"es": "translate:es"}

    @classmethod
    def from_specs(cls, specs: list[str]) -> Languages:
        """The translating specs among ``specs`` (``list_postprocessor_specs()``), one per language."""
        chosen: dict[str, str] = {}
        for engine in ENGINES:
            for spec in specs:
                name, option = parse_spec(spec)
                if name == engine and option and option != ENGLISH:
                    chosen.setdefault(option, spec)
        return cls(dict(sorted(chosen.items())))

    def choices(self) -> list[tuple[str, str]]:
        """``(label, code)`` pairs for a menu, English first."""
        return [(NAMES.get(code, code), code) for code in [ENGLISH, *self.specs]]

    def spec(self, code: str | None) -> str | None:
        """The spec that translates into ``code``; ``None`` for English. Raises ``ValueError`` for others."""
        if not code or code == ENGLISH:
            return None
        if code not in self.specs:
            offered = ", ".join([ENGLISH, *self.specs])
            raise ValueError(f"language must be one of {offered}, not {code!r}")
        return self.specs[code]


def nbest_texts(captioner: Captioner, result: CaptionResult, spec: str | None) -> list[str]:
    """The n-best captions, translated with ``spec`` when given (the best one already is, by the chain)."""
    texts = [candidate.text for candidate in result.candidates]
    if spec is None or len(texts) < 2:
        return [result.text or "", *texts[1:]]
    others = [CaptionResult.from_text(f"{result.image} #{rank}", text) for rank, text in enumerate(texts[1:], 2)]
    captioner.postprocessing_chain((spec,))(others)
    return [result.text or "", *(other.text or "" for other in others)]
