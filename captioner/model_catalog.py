"""Finding model folders: the ones shipped in ``assets/models`` and any given path."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import CaptionerError, ModelLoadError
from .model_folder import CONFIG_FILE, read_config

DEFAULT_MODEL = "flickr8k-lite0-attention"
"""The shipped model that is used when none is named."""


def shipped_assets_dir(name: str) -> Path | None:
    """``assets/<name>`` (``models``, ``examples``) as installed with the package, if present."""
    spec = importlib.util.find_spec("captioner_assets")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / name
        if candidate.is_dir():
            return candidate
    return None


def shipped_models_dir() -> Path | None:
    """``assets/models`` as installed with the package, if present."""
    return shipped_assets_dir("models")


def shipped_model_names() -> list[str]:
    """Names of the model folders shipped with the package."""
    root = shipped_models_dir()
    if root is None:
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file())


def resolve_model(name_or_path: str | Path | None) -> Path:
    """A model folder for a path, a shipped model name, or ``None`` (the default model)."""
    target = DEFAULT_MODEL if name_or_path is None else name_or_path
    path = Path(target)
    if path.is_dir():
        return path
    if isinstance(target, str) and "/" not in target and "\\" not in target:
        root = shipped_models_dir()
        if root is not None and (root / target / CONFIG_FILE).is_file():
            return root / target
    shipped = ", ".join(shipped_model_names()) or "none"
    raise ModelLoadError(f"model {str(target)!r}: no such folder and no shipped model of that name (shipped: {shipped})")


@dataclass
class ModelInfo:
    """One row of ``captioner models``."""

    name: str
    path: str
    encoder: str | None = None
    decoder: str | None = None
    vocab_size: int | None = None
    error: str | None = None


def describe_model(name: str, path: Path) -> ModelInfo:
    """Read a model folder's config without loading weights."""
    try:
        config = read_config(path)
    except CaptionerError as error:
        return ModelInfo(name=name, path=str(path), error=str(error))
    encoder = f"{config.encoder} of {', '.join(config.encoder_members)}" if config.encoder_members else config.encoder
    return ModelInfo(name, str(path), encoder, config.decoder, config.vocab_size)


def describe_models(paths: list[str] | None = None) -> list[ModelInfo]:
    """What the shipped models and the given model folders hold (``list_*`` functions return names,
    ``describe_*`` ones return infos, as for post-processors)."""
    root = shipped_models_dir()
    infos = [describe_model(name, root / name) for name in shipped_model_names()] if root else []
    infos += [describe_model(str(p), Path(p)) for p in paths or []]
    return infos
