"""Finding text models: the folders shipped in ``assets/postprocessors`` and any given path."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import PostProcessError
from ..model_catalog import shipped_assets_dir
from ..model_folder import read_json
from .model_folder import CONFIG_FILE, FORMAT_NAME
from .sentiment import SentimentClassifier
from .translation import TextTranslator

ASSETS_FOLDER = "postprocessors"


def shipped_text_models(kind: str) -> dict[str, Path]:
    """Shipped folders holding a ``kind`` model, by their option name (``es`` for a translator to Spanish)."""
    root = shipped_assets_dir(ASSETS_FOLDER)
    found: dict[str, Path] = {}
    for folder in sorted(root.iterdir()) if root is not None else []:
        if not (folder / CONFIG_FILE).is_file():
            continue
        config = read_json(folder / CONFIG_FILE)
        if config.get("format") == FORMAT_NAME and config.get("kind") == kind:
            found[str(config.get("metadata", {}).get("target", folder.name))] = folder
    return found


def resolve_text_model(kind: str, option: str | None, default: str | None = None) -> Path:
    """The folder for ``option``: a shipped model's name, or a path to a model folder."""
    shipped = shipped_text_models(kind)
    name = option or default
    if name is None:
        raise PostProcessError(f"needs an option, one of: {', '.join(shipped) or 'none shipped'} (or a model folder)")
    if name in shipped:
        return shipped[name]
    if Path(name).is_dir():
        return Path(name)
    raise PostProcessError(f"{name!r} is neither a shipped {kind} model ({', '.join(shipped) or 'none'}) nor a folder")


@lru_cache(maxsize=8)
def load_sentiment_classifier(folder: Path) -> SentimentClassifier:
    """One loaded classifier per folder and process."""
    return SentimentClassifier.load(folder)


@lru_cache(maxsize=8)
def load_translator(folder: Path) -> TextTranslator:
    """One loaded translator per folder and process."""
    return TextTranslator.load(folder)
