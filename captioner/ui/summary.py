"""What a result says at a glance, under its caption: sentiment badges and tags for the recognised objects."""

from __future__ import annotations

from html import escape

from ..results import CaptionResult
from .explain import LABEL_COLOURS

SENTIMENT_ICONS = {"positive": "☺", "negative": "☹", "neutral": "•"}


def sentiment_badges(result: CaptionResult) -> list[str]:
    """One badge per post-processor output labelled positive, negative or neutral (``sentiment``, ``sentiment-rnn``)."""
    badges = []
    for name, value in result.extras.items():
        label = value.get("label") if isinstance(value, dict) else None
        if label in LABEL_COLOURS:
            badges.append(f'<span class="badge sentiment-{label}" title="{escape(name)}" '
                          f'style="background: {LABEL_COLOURS[label]}">{SENTIMENT_ICONS[label]} {label}</span>')
    return badges


def object_tags(result: CaptionResult) -> list[str]:
    """One tag per recognised object: the class, its probability, and the caption's word for it where it differs."""
    tags = []
    for found in result.objects:
        word = f" → {escape(found.word)}" if found.word and found.word != found.label.lower() else ""
        tags.append(f'<span class="tag" title="the encoder\'s ImageNet classifier">{escape(found.label)}{word} '
                    f'<small>{found.probability:.0%}</small></span>')
    return tags


def summary_html(result: CaptionResult) -> str:
    """Badges and tags in one wrapping row; empty when there are none."""
    items = sentiment_badges(result) + object_tags(result)
    return f'<div class="summary">{"".join(items)}</div>' if items else ""
