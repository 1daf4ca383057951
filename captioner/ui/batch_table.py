"""The batch tab's results as an HTML table: a thumbnail per photo, readable errors, no column left empty."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from PIL import Image

from ..results import CaptionResult
from .heatmap import data_uri
from .summary import summary_html

THUMBNAIL_SIZE = 72


def thumbnail_uri(path: str) -> str | None:
    """A small JPEG of the photo at ``path`` as a ``data:`` URI; ``None`` if it cannot be read."""
    try:
        with Image.open(path) as picture:
            picture.draft("RGB", (THUMBNAIL_SIZE * 2, THUMBNAIL_SIZE * 2))  # JPEGs decode at a fraction of their size
            picture.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
            return data_uri(picture.convert("RGB"))
    except Exception:  # noqa: BLE001 - the row's error already says why the photo cannot be read
        return None


def caption_cell(result: CaptionResult) -> str:
    """The caption with its sentiment badges and object tags under it, or the error."""
    if result.error:
        return f'<span class="batch-error">{escape(result.error)}</span>'
    return escape(result.text or "") + summary_html(result)


def original_cell(result: CaptionResult) -> str:
    return escape(result.original_text or "") if result.rewritten is not None else ""


# Optional columns: (heading, cell); a column is shown only when one of its cells has something in it.
OPTIONAL_COLUMNS: list[tuple[str, Callable[[CaptionResult], str]]] = [("English", original_cell)]


def batch_table_html(results: list[CaptionResult], thumbnails: list[str | None]) -> str:
    """One row per photo, in order: thumbnail, file name, caption (or error), then the optional columns in use."""
    columns = [(heading, cell) for heading, cell in OPTIONAL_COLUMNS if any(cell(r) for r in results)]
    head = "".join(f"<th>{escape(heading)}</th>" for heading in ["Photo", "Caption", *[h for h, _ in columns]])
    rows = []
    for result, thumbnail in zip(results, thumbnails):
        picture = f'<img class="thumb" src="{thumbnail}" alt="">' if thumbnail else ""
        name = escape(Path(result.image).name)
        cells = [f'<td class="batch-photo">{picture}<div>{name}</div></td>', f"<td>{caption_cell(result)}</td>"]
        cells += [f"<td>{cell(result)}</td>" for _, cell in columns]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    failed = sum(1 for r in results if r.error)
    count = f"{len(results)} photos" + (f", {failed} could not be read" if failed else "")
    return (f'<p class="batch-count">{count}</p><div class="batch-scroll"><table class="batch-table">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
