"""Choosing the torch device (CUDA, then Apple MPS, then CPU, unless one is forced) and what runs fast on it."""

from __future__ import annotations

import os

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


def fast_bfloat16(device: torch.device) -> bool:
    """Whether the encoder runs under bfloat16 autocast on ``device``: where that is fast.

    True on CUDA, and on CPUs with AMX tiles (Intel Xeon since Sapphire Rapids), where
    oneDNN runs bfloat16 convolutions in hardware: EfficientNet-Lite0 ran about 2x
    faster so on a 2-core Xeon. Elsewhere a CPU emulates bfloat16 and is slower with it.
    ``CAPTIONER_BFLOAT16=0`` turns it off everywhere (float32 gives the same scores on
    every machine).
    """
    if os.environ.get("CAPTIONER_BFLOAT16", "").strip() == "0":
        return False
    if device.type == "cuda":
        return True
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch; absent means unknown
    return device.type == "cpu" and amx is not None and bool(amx())
