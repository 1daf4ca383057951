"""``sentiment``: how a caption feels, scored by VADER (lexicon shipped with vaderSentiment, works offline)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from captioner import CaptionResult, PostProcessor, hookimpl

# VADER's recommended thresholds on the compound score.
POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05


@lru_cache(maxsize=1)
def analyzer() -> Any:
    """One VADER analyzer per process (loading the lexicon takes a moment)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def label_for(compound: float) -> str:
    if compound >= POSITIVE_AT:
        return "positive"
    if compound <= NEGATIVE_AT:
        return "negative"
    return "neutral"


class Sentiment(PostProcessor):
    """Sentiment of the caption with VADER: label, compound and per-class scores."""

    effect = "annotate"
    languages = ("en",)

    def process(self, results: Sequence[CaptionResult]) -> list[dict[str, Any]]:
        outputs = []
        for result in results:
            scores = analyzer().polarity_scores(result.text)
            outputs.append({
                "label": label_for(scores["compound"]),
                "compound": scores["compound"],
                "positive": scores["pos"],
                "neutral": scores["neu"],
                "negative": scores["neg"],
            })
        return outputs


@hookimpl
def register_postprocessors(register) -> None:
    register("sentiment", Sentiment)
