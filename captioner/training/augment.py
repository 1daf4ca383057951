"""Image augmentation for fine-tuning that keeps the caption true."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..vocab import tokenize

SIDE_WORDS = frozenset({"left", "right"})


def mirrorable(caption: str) -> bool:
    """Whether a mirrored photo still fits ``caption`` (it names no left or right side)."""
    return not SIDE_WORDS.intersection(tokenize(caption))


@dataclass(frozen=True)
class Augmentation:
    """Random zoom and shift, mirroring and light colour changes, one draw per image.

    ``min_scale`` is the smallest crop side as a fraction of the image side (the crop
    is resized back to the full input); colour changes are multiplicative and small,
    so "a red shirt" stays red. An image is mirrored with probability ``mirror``,
    and only where its caption allows it (see :func:`mirrorable`).
    """

    min_scale: float = 0.8
    mirror: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.1

    def __call__(self, pixels: torch.Tensor, mirrorable: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``pixels (B, 3, H, W)`` in [0, 1] -> augmented pixels of the same shape, still in [0, 1]."""
        batch = pixels.size(0)

        def uniform(low: float, high: float) -> torch.Tensor:
            return (low + (high - low) * torch.rand(batch, generator=generator)).to(pixels.device)

        scale = uniform(self.min_scale, 1.0)
        shift_x, shift_y = (uniform(-1.0, 1.0) * (1 - scale) for _ in range(2))
        flip = uniform(0.0, 1.0) < self.mirror
        if mirrorable is not None:
            flip &= mirrorable.to(pixels.device)
        theta = torch.zeros(batch, 2, 3, device=pixels.device)
        theta[:, 0, 0] = torch.where(flip, -scale, scale)
        theta[:, 1, 1] = scale
        theta[:, 0, 2], theta[:, 1, 2] = shift_x, shift_y
        grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
        pixels = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)
        brightness = uniform(1 - self.brightness, 1 + self.brightness).view(batch, 1, 1, 1)
        contrast = uniform(1 - self.contrast, 1 + self.contrast).view(batch, 1, 1, 1)
        mean = pixels.mean(dim=(1, 2, 3), keepdim=True)
        return ((pixels - mean) * contrast + mean).mul_(brightness).clamp_(0, 1)
