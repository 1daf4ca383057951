"""Post-processor outputs drawn for people: words shaded by their weight, attention as a grid.

Any post-processor can use these by the shape of what it stores in ``result.extras``:
``{"label": ..., "words": [[word, weight], ...]}`` is drawn as a labelled sentence
whose words are shaded by weight (``sentiment-rnn``), and ``{"source": [...],
"target": [...], "weights": [[...], ...]}`` as a target-by-source attention grid
that opens on request (``translate-rnn``). Weights share one scale: 0 is white, 1 the darkest shade, and
the opacity in between is the weight's square root.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

LABEL_COLOURS = {"positive": "#1a7f37", "negative": "#cf222e", "neutral": "#57606a"}


def _shade(weight: float) -> str:
    """A blue background of opacity sqrt(weight) (weight clamped to 0..1): one scale for every map, on
    which a word holding a tenth of the attention is still visible."""
    alpha = math.sqrt(max(0.0, min(1.0, float(weight))))
    return f"background: rgba(9, 105, 218, {alpha:.2f}); color: {'#fff' if alpha > 0.6 else 'inherit'}"


def is_weighted_words(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("words"), list) and "label" in value


def is_alignment(value: Any) -> bool:
    return isinstance(value, dict) and {"source", "target", "weights"} <= set(value)


def weighted_words_html(name: str, value: dict[str, Any]) -> str:
    """The label as a badge and each word shaded by its share of the attention."""
    label = str(value.get("label", ""))
    colour = LABEL_COLOURS.get(label, "#57606a")
    words = " ".join(
        f'<span title="{float(w):.2f}" style="padding: 1px 3px; border-radius: 3px; {_shade(w)}">{escape(str(word))}</span>'
        for word, w in value["words"]
    )
    return (
        f'<div class="explain-words"><b>{escape(name)}</b> '
        f'<span style="background: {colour}; color: #fff; padding: 1px 8px; border-radius: 10px">{escape(label)}</span>'
        f'<div style="margin-top: 4px; line-height: 1.9">{words}</div>'
        f'<small>Darker words carried more of the judgement (hover for their share).</small></div>'
    )


def alignment_html(name: str, value: dict[str, Any]) -> str:
    """A table: one row per target word, one column per source word, cells shaded by attention."""
    header = "".join(f'<th style="writing-mode: vertical-rl; padding: 2px">{escape(str(w))}</th>' for w in value["source"])
    rows = "".join(
        f'<tr><th style="text-align: right; padding: 0 4px">{escape(str(word))}</th>'
        + "".join(f'<td title="{float(w):.2f}" style="width: 18px; height: 18px; {_shade(w)}"></td>' for w in weights)
        + "</tr>"
        for word, weights in zip(value["target"], value["weights"])
    )
    return (
        f'<details class="explain-grid"><summary><b>{escape(name)}</b>: show the attention</summary>'
        f'<div style="overflow-x: auto">Each translated word (row) over the English words (columns); darker is '
        f'more (hover for the weight).'
        f'<table style="border-collapse: collapse; margin-top: 4px"><tr><th></th>{header}</tr>{rows}</table></div></details>'
    )


def explanations_html(extras: dict[str, Any]) -> str:
    """Every drawable post-processor output of a result, in order; empty when there is none."""
    parts = []
    for name, value in extras.items():
        if is_weighted_words(value):
            parts.append(weighted_words_html(name, value))
        elif is_alignment(value):
            parts.append(alignment_html(name, value))
    return "".join(parts)
