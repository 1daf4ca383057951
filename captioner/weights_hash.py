"""Hashing a module's weights exactly: what caches built from them are keyed by."""

from __future__ import annotations

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
