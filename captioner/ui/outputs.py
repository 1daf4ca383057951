"""Files the app hands to Gradio (the batch tab's CSV and JSON lines), kept in one folder it owns and removes."""

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

from ..atomic import atomic_write_bytes
from ..results import ROW_COLUMNS, CaptionResult


def to_csv(results: list[CaptionResult]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_COLUMNS)
    writer.writeheader()
    writer.writerows(result.to_row() for result in results)
    return buffer.getvalue()


def to_jsonl(results: list[CaptionResult]) -> str:
    return "".join(json.dumps(result.to_dict(), ensure_ascii=False) + "\n" for result in results)


class OutputFiles:
    """Writes each response's files atomically into a fresh folder; keeps the newest ``keep`` folders.

    Gradio copies returned files into its cache (atomically) right after the handler
    returns, so a folder only has to outlive its own response.
    """

    def __init__(self, keep: int = 256) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="captioner-ui-"))
        self._folders: deque[Path] = deque()
        self._keep = keep
        self._lock = threading.Lock()

    def write(self, files: dict[str, bytes]) -> list[str]:
        """Write ``{name: data}`` and return the paths, in order."""
        folder = self.root / uuid.uuid4().hex
        for name, data in files.items():
            atomic_write_bytes(folder / name, data)
        with self._lock:
            self._folders.append(folder)
            while len(self._folders) > self._keep:
                shutil.rmtree(self._folders.popleft(), ignore_errors=True)
        return [str(folder / name) for name in files]

    def write_results(self, results: list[CaptionResult], stem: str) -> list[str]:
        """``[STEM.csv, STEM.jsonl]`` for a batch of results."""
        return self.write({f"{stem}.csv": to_csv(results).encode(), f"{stem}.jsonl": to_jsonl(results).encode()})

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
