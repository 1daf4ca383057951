"""Telling when weights change: what caches built from them are keyed by. An exact hash of their
bytes (for caches on disk) and a cheap fingerprint of where they live and how often they were written
(for copies kept in memory)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import torch
from torch import nn


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def update_with_weights(digest: Digest, module: nn.Module) -> None:
    """Feed ``module``'s state to ``digest``: each tensor's name and exact bytes, in name order."""
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())


def weights_fingerprint(tensors: Iterable[torch.Tensor]) -> tuple[tuple[int, int], ...]:
    """Where each tensor lives and how often it was written: it changes when the weights do."""
    # Inference tensors (made under torch.inference_mode) have no version counter.
    return tuple((t.data_ptr(), -1 if t.is_inference() else t._version) for t in tensors)
