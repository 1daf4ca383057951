"""Where captioner keeps what it can rebuild: extracted features, compiled encoders."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(kind: str) -> Path:
    """``$XDG_CACHE_HOME/captioner/<kind>`` (``~/.cache/captioner/<kind>`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "captioner" / kind
