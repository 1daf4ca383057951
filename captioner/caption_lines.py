"""Captions read back from lines: plain text, or the JSON lines ``captioner caption --format jsonl`` writes.

``captioner postprocess`` runs post-processors on them; a line that cannot be read
becomes an error row naming it, and the other lines go on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from .results import CaptionResult


def read_caption_line(line: str, where: str) -> CaptionResult | None:
    """The caption on one line (``None`` for a blank line); ``where`` (``FILE:LINE``) names it in errors.

    A line starting with ``{`` is a JSON result: its ``image`` (else ``where``) and
    other fields are kept; ``{"caption": ...}`` alone will do. Any other line is a
    caption, named ``where``.
    """
    text = line.strip()
    if not text:
        return None
    if not text.startswith("{"):
        return CaptionResult.from_text(where, text)
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return CaptionResult.from_dict({"image": where, **data})
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        return CaptionResult(where, error=f"{where}: not a caption result ({error})")


def read_caption_batches(lines: Iterable[str], source: str, batch_size: int) -> Iterator[list[CaptionResult]]:
    """The captions of a file's lines (blank lines skipped), ``batch_size`` at a time, as they are read."""
    batch: list[CaptionResult] = []
    for number, line in enumerate(lines, 1):
        result = read_caption_line(line, f"{source}:{number}")
        if result is not None:
            batch.append(result)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
