"""``sentiment-rnn``: how a caption feels, judged by a bidirectional GRU trained on human ratings.

The same fields as ``sentiment`` (VADER): ``label``, ``compound`` (a score in [-1, 1])
and the three class probabilities; plus ``words``, each word of the caption with
its share of the attention, i.e. which words carried the judgement. A text of more
than 100 words is read as a review: sentence by sentence, the verdict weighed by a
head trained on whole reviews, positive or negative unless it is a coin toss. The model
ships with the package (``assets/postprocessors/sentiment-rnn``);
``sentiment-rnn:FOLDER`` uses another one trained with ``scripts/train_sentiment_rnn.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from captioner import CaptionResult, PostProcessor, hookimpl
from captioner.errors import ModelLoadError, PostProcessError
from captioner.text.sentiment import KIND
from captioner.text.shipped import load_sentiment_classifier, resolve_text_model

SHIPPED = "sentiment-rnn"


class RnnSentiment(PostProcessor):
    """Sentiment of the caption by a GRU trained on human ratings: label, score, and the words that carried it."""

    effect = "annotate"
    languages = ("en",)

    def __init__(self, option: str | None = None) -> None:
        super().__init__(None)
        self.option = option
        folder = resolve_text_model(KIND, option, default=SHIPPED)
        try:
            self.classifier = load_sentiment_classifier(folder)
        except ModelLoadError as error:
            raise PostProcessError(str(error)) from None

    def process(self, results: Sequence[CaptionResult]) -> list[dict[str, Any]]:
        return [judgement.to_dict() for judgement in self.classifier.judge([r.text or "" for r in results])]


@hookimpl
def register_postprocessors(register) -> None:
    register("sentiment-rnn", RnnSentiment)
