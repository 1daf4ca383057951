"""CSV and JSON-lines files of batch results, kept in one folder the app owns and removes."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import threading
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..results import CaptionResult

CSV_COLUMNS = ["image", "caption", "score", "error", "original_caption", "postprocessing"]


def table_row(result: CaptionResult) -> dict[str, Any]:
    """A flat row: the caption (or error) and the post-processors' outputs as JSON."""
    data = result.to_dict()
    extras = {**result.extras, **({"postprocess_errors": result.postprocess_errors} if result.postprocess_errors else {})}
    return {
        "image": result.image,
        "caption": data.get("caption") or "",
        "score": round(result.score, 4) if result.score is not None else None,
        "error": result.error or "",
        "original_caption": data.get("original_caption", ""),
        "postprocessing": json.dumps(extras, ensure_ascii=False) if extras else "",
    }


def to_csv(results: list[CaptionResult]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(table_row(result) for result in results)
    return buffer.getvalue()


def to_jsonl(results: list[CaptionResult]) -> str:
    return "".join(json.dumps(result.to_dict(), ensure_ascii=False) + "\n" for result in results)


class DownloadStore:
    """Writes each batch's files atomically; keeps the newest ``keep`` batches, deletes the rest."""

    def __init__(self, keep: int = 32) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="captioner-ui-"))
        self._batches: deque[Path] = deque()
        self._keep = keep
        self._lock = threading.Lock()

    def write(self, results: list[CaptionResult]) -> list[str]:
        """``[captions.csv, captions.jsonl]`` for ``results``."""
        folder = self.root / uuid.uuid4().hex
        atomic_write_text(folder / "captions.csv", to_csv(results))
        atomic_write_text(folder / "captions.jsonl", to_jsonl(results))
        with self._lock:
            self._batches.append(folder)
            while len(self._batches) > self._keep:
                shutil.rmtree(self._batches.popleft(), ignore_errors=True)
        return [str(folder / "captions.csv"), str(folder / "captions.jsonl")]

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
