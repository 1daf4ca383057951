"""Appending results to a JSON-lines file that survives crashes and can be resumed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import CaptionerError
from .results import CaptionResult


def read_done(path: Path) -> tuple[set[str], int]:
    """Images already in ``path`` and the byte length of its complete lines (a torn last line is dropped)."""
    done: set[str] = set()
    good_bytes = 0
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break  # written when the run was killed
            try:
                done.add(json.loads(line)["image"])
            except (ValueError, KeyError, TypeError):
                raise CaptionerError(f"{path}: line {len(done) + 1} is not a captioner JSON line; "
                                     "refusing to resume into it") from None
            good_bytes += len(line)
    return done, good_bytes


class JsonlSink:
    """One JSON line per result, each written whole and flushed; ``resume`` keeps what is already there."""

    def __init__(self, path: str | os.PathLike, resume: bool = False, sync_every: int = 64) -> None:
        self.path = Path(path)
        self.done: set[str] = set()
        if resume and self.path.exists():
            self.done, good_bytes = read_done(self.path)
            with self.path.open("r+b") as handle:
                handle.truncate(good_bytes)
        elif self.path.exists():
            raise CaptionerError(f"{self.path} already exists; use --resume to continue it, or choose another file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("ab")
        self._sync_every = sync_every
        self._unsynced = 0

    def write(self, result: CaptionResult) -> None:
        self._handle.write(json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n")
        self._handle.flush()
        self._unsynced += 1
        if self._unsynced >= self._sync_every:
            os.fsync(self._handle.fileno())
            self._unsynced = 0

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
