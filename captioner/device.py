"""Choosing the torch device: CUDA, then Apple MPS, then CPU, unless one is forced."""

from __future__ import annotations

import torch

from .errors import CaptionerError


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"`` picks the best available device; anything else is checked."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise CaptionerError(f"device {device!r} is not a torch device: {error}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise CaptionerError(f"device {device!r} was asked for but CUDA is not available here")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise CaptionerError(f"device {device!r} was asked for but Apple MPS is not available here")
    return chosen


def describe_device(device: torch.device) -> str:
    """A human name for ``device``, e.g. ``cuda:0 (NVIDIA H100)`` or ``cpu``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)
