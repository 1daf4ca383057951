"""Where an attention decoder looked: one heat map over the image per generated word."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image

from ..encoder import EncoderConfig
from ..images import center_crop_size

# Dark blue -> cyan -> green -> yellow -> red, sampled at even steps.
COLORMAP = np.array([[48, 18, 59], [40, 160, 230], [60, 220, 90], [250, 210, 40], [220, 40, 20]], dtype=np.float32)
DISPLAY_SIZE = 256


def grid_shape(regions: int, input_size: tuple[int, int]) -> tuple[int, int]:
    """The (rows, cols) of an encoder grid with ``regions`` cells whose shape best matches ``input_size``."""
    aspect = input_size[0] / input_size[1]
    pairs = [(rows, regions // rows) for rows in range(1, regions + 1) if regions % rows == 0]
    return min(pairs, key=lambda rc: abs(math.log(rc[0] / rc[1]) - math.log(aspect)))


def colorize(weights: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB ``float32 (..., 3)``."""
    position = np.clip(weights, 0, 1) * (len(COLORMAP) - 1)
    low = np.floor(position).astype(int).clip(0, len(COLORMAP) - 2)
    fraction = (position - low)[..., None]
    return COLORMAP[low] * (1 - fraction) + COLORMAP[low + 1] * fraction


def view_as_model(image: torch.Tensor, config: EncoderConfig) -> torch.Tensor:
    """The part of ``image`` (RGB uint8 (3, H, W)) the encoder saw, at display size, keeping its shape."""
    if config.resize_mode == "center_crop":  # the grid covers only the centre crop
        image = TF.center_crop(image, list(center_crop_size(tuple(image.shape[1:]), config.input_size)))
    height, width = image.shape[1:]
    scale = DISPLAY_SIZE / max(height, width)
    return TF.resize(image, [max(1, round(height * scale)), max(1, round(width * scale))], antialias=True)


def attention_overlays(image: torch.Tensor, attention: torch.Tensor, words: list[str],
                       config: EncoderConfig) -> list[tuple[Image.Image, str]]:
    """One ``(picture, word)`` per word: the image blended with where the model looked for it.

    ``attention`` is ``(steps, regions)`` from a :class:`~captioner.results.Candidate`
    (its last step, ``<end>``, is shown too when present).
    """
    shown = view_as_model(image, config)
    height, width = shown.shape[1:]
    rows, cols = grid_shape(attention.shape[1], config.input_size)
    maps = attention.float().reshape(-1, 1, rows, cols)
    maps = F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    base = shown.permute(1, 2, 0).numpy().astype(np.float32)
    labels = list(words) + ["<end>"] * max(0, attention.shape[0] - len(words))
    overlays = []
    for weights, word in zip(maps.numpy(), labels):
        weights = weights / max(float(weights.max()), 1e-8)
        blended = 0.45 * base + 0.55 * colorize(weights)
        overlays.append((Image.fromarray(blended.clip(0, 255).astype(np.uint8)), word))
    return overlays
