"""Training images decoded once and kept in memory, so fine-tuning never re-reads a file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..encoder import EncoderConfig
from ..images import load_image, normalize, resize
from .augment import Augmentation


class _ResizedImages(Dataset):
    def __init__(self, paths: list[Path], config: EncoderConfig) -> None:
        self.paths, self.config = paths, config

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return resize(load_image(self.paths[index]), self.config)


class PixelStore:
    """Every image resized to the encoder's input as ``uint8 (N, 3, H, W)`` on the training device.

    Flickr8k at 224x224 takes about 1 GiB. ``batch`` turns rows into normalised
    float pixels, augmented when an :class:`Augmentation` is given.
    """

    def __init__(self, paths: list[Path], config: EncoderConfig, device: torch.device,
                 num_workers: int = 1, progress: bool = True) -> None:
        self.config = config
        loader = DataLoader(_ResizedImages(paths, config), batch_size=64, num_workers=num_workers)
        batches = [batch for batch in tqdm(loader, desc="reading images", unit="batch", disable=not progress)]
        self.pixels = torch.cat(batches).to(device)  # (N, 3, H, W) uint8; decoded in worker processes

    def __len__(self) -> int:
        return len(self.pixels)

    def batch(self, rows: torch.Tensor, augmentation: Augmentation | None = None,
              mirrorable: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised float pixels ``(B, 3, H, W)`` of ``rows``; augmented if ``augmentation`` is given."""
        pixels = self.pixels[rows.to(self.pixels.device)].float().div_(255)
        if augmentation is not None:
            pixels = augmentation(pixels, mirrorable, generator)
        return normalize(pixels, self.config)
