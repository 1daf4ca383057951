"""``translate-rnn:LANG``: the caption translated by a recurrent encoder-decoder with attention.

German and French learned from human translations (Multi30k, see
``scripts/make_multi30k_pairs.py``); Spanish and Catalan imitate Apertium (see
``scripts/make_translation_pairs.py``). None needs anything beyond the package to
run: the models ship in ``assets/postprocessors/translate-rnn-LANG``. The
translation is written by the same batched beam search as the captions.
``extras["translate-rnn:LANG"]`` holds the attention between the English and the
translated words (``source``, ``target``, ``weights``: one row per target word) for
texts of up to :data:`MAX_ATTENTION_WORDS` words. ``translate-rnn:FOLDER`` uses a model trained
with ``scripts/train_translate_rnn.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from captioner import CaptionResult, PostProcessor, Rewrite, hookimpl
from captioner.errors import ModelLoadError, PostProcessError
from captioner.text.shipped import load_translator, resolve_text_model, shipped_text_models
from captioner.text.translation import KIND

BEAM_SIZE = 4
MAX_ATTENTION_WORDS = 100  # longer texts (a review through `captioner postprocess`) get no attention grid


class RnnTranslate(PostProcessor):
    """The caption translated by our own encoder-decoder RNN (works without Apertium)."""

    effect = "rewrite"
    option_required = True
    languages = ("en",)

    def __init__(self, option: str | None = None) -> None:
        super().__init__(None)
        self.option = option
        folder = resolve_text_model(KIND, option)
        try:
            self.translator = load_translator(folder)
        except ModelLoadError as error:
            raise PostProcessError(str(error)) from None
        if self.translator.metadata.get("source", "en") != "en":
            raise PostProcessError(f"{folder} translates from {self.translator.metadata['source']}, not English")
        self.output_language = self.translator.target_language

    @classmethod
    def options(cls) -> list[str]:
        return sorted(shipped_text_models(KIND))

    def process(self, results: Sequence[CaptionResult]) -> list[Rewrite]:
        translations = self.translator.translate([r.text or "" for r in results], beam_size=BEAM_SIZE)
        return [
            Rewrite(t.text, t.to_dict() if t.attention and len(t.source_words) <= MAX_ATTENTION_WORDS else None)
            for t in translations
        ]


@hookimpl
def register_postprocessors(register) -> None:
    register("translate-rnn", RnnTranslate)
