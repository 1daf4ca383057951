"""Epoch checkpoints: the model folder plus optimizer/scheduler/RNG state, without pickle.

Each checkpoint is a folder ``checkpoints/epoch-NNNN/`` written completely before the
``checkpoints/LATEST`` pointer is replaced (atomically), so a run killed at any moment
resumes from the last complete checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from ..atomic import atomic_write_bytes, atomic_write_text

STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"
LATEST = "LATEST"


def flatten_state(state: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested state dict into ``tensors``; return the JSON-able rest."""
    if isinstance(state, torch.Tensor):
        tensors[prefix] = state.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(state, dict):
        return {"__dict__": [[key, flatten_state(value, f"{prefix}.{key}", tensors)] for key, value in state.items()]}
    if isinstance(state, (list, tuple)):
        return [flatten_state(value, f"{prefix}.{i}", tensors) for i, value in enumerate(state)]
    return state


def unflatten_state(data: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state` (dict keys keep their types, e.g. int parameter ids)."""
    if isinstance(data, dict) and "__tensor__" in data:
        return tensors[data["__tensor__"]]
    if isinstance(data, dict) and "__dict__" in data:
        return {key: unflatten_state(value, tensors) for key, value in data["__dict__"]}
    if isinstance(data, list):
        return [unflatten_state(value, tensors) for value in data]
    return data


def write_checkpoint(checkpoints: Path, epoch: int, write_model, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``epoch-NNNN`` (model via ``write_model(folder)``, then state), point LATEST at it."""
    folder = checkpoints / f"epoch-{epoch:04d}"
    if folder.exists():
        shutil.rmtree(folder)
    write_model(folder)
    tensors: dict[str, torch.Tensor] = {}
    meta = flatten_state(state, "state", tensors)
    atomic_write_bytes(folder / STATE_TENSORS, save(tensors))
    atomic_write_text(folder / STATE_JSON, json.dumps(meta) + "\n")
    atomic_write_text(checkpoints / LATEST, folder.name + "\n")
    for old in sorted(checkpoints.glob("epoch-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The folder LATEST points at, or None when the run has no complete checkpoint."""
    pointer = checkpoints / LATEST
    if not pointer.is_file():
        return None
    folder = checkpoints / pointer.read_text().strip()
    return folder if (folder / STATE_JSON).is_file() else None


def read_state(folder: Path) -> dict[str, Any]:
    """The trainer state saved in a checkpoint folder."""
    tensors = load_file(folder / STATE_TENSORS)
    return unflatten_state(json.loads((folder / STATE_JSON).read_text()), tensors)
