"""Where an attention decoder looked: one heat map over the image per generated word, on one shared scale."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from html import escape

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image

from ..encoder import EncoderConfig
from ..images import center_crop_size
from ..results import Candidate

# Dark blue -> cyan -> green -> yellow -> red, sampled at even steps.
COLORMAP = np.array([[48, 18, 59], [40, 160, 230], [60, 220, 90], [250, 210, 40], [220, 40, 20]], dtype=np.float32)
DISPLAY_SIZE = 192


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
        image = TF.center_crop(image, list(center_crop_size((image.shape[1], image.shape[2]), config.input_size)))
    height, width = image.shape[1:]
    scale = DISPLAY_SIZE / max(height, width)
    return TF.resize(image, [max(1, round(height * scale)), max(1, round(width * scale))], antialias=True)


@dataclass(frozen=True)
class AttentionMaps:
    """What heat maps are drawn from: the photo as the encoder saw it (display size) and the attention per word.

    Small enough to keep per visitor, so the page draws the maps only when they are looked at.
    """

    picture: torch.Tensor  # RGB uint8 (3, h, w), at most DISPLAY_SIZE a side
    attention: torch.Tensor  # (steps, regions): one row per word, the last may be <end>
    words: list[str]
    grid: tuple[int, int]

    @classmethod
    def of(cls, image: torch.Tensor, candidate: Candidate, config: EncoderConfig) -> AttentionMaps | None:
        """The maps of ``candidate`` over ``image``; ``None`` for decoders without attention.

        For an encoder stack the attention is over its first member's grid, so that member's config places it.
        """
        if candidate.attention is None:
            return None
        config = config.members[0] if config.members else config
        attention = candidate.attention.float().cpu()
        return cls(view_as_model(image, config), attention, list(candidate.words),
                   grid_shape(attention.shape[1], config.input_size))

    @property
    def labels(self) -> list[str]:
        return self.words + ["<end>"] * max(0, self.attention.shape[0] - len(self.words))

    @property
    def scale(self) -> float:
        """The colour scale's top: the largest share of one word's attention on one region, over all words."""
        return max(float(self.attention.max()), 1e-8)

    def overlays(self) -> list[tuple[Image.Image, str]]:
        """One ``(picture, word)`` per word: the photo blended with where the model looked, all on one scale."""
        height, width = self.picture.shape[1:]
        maps = self.attention.reshape(-1, 1, *self.grid)
        maps = F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
        base = self.picture.permute(1, 2, 0).numpy().astype(np.float32)
        pictures = []
        for weights, word in zip(maps.numpy(), self.labels):
            blended = 0.45 * base + 0.55 * colorize(weights / self.scale)
            pictures.append((Image.fromarray(blended.clip(0, 255).astype(np.uint8)), word))
        return pictures


def data_uri(picture: Image.Image) -> str:
    """A small JPEG inlined in a ``data:`` URI."""
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def legend_html(scale: float) -> str:
    stops = ", ".join(f"rgb({r:.0f},{g:.0f},{b:.0f})" for r, g, b in COLORMAP)
    return (
        '<div class="heatmap-legend"><span>0%</span>'
        f'<span class="heatmap-bar" style="background: linear-gradient(to right, {stops})"></span>'
        f'<span>{scale:.0%}</span></div>'
        '<p class="heatmap-note">One colour scale for every word: the colour is the share of that word\'s attention '
        f'on a region of the photo, from none (dark blue) to {scale:.0%} (red, the most any word put on one region). '
        'Words are the model\'s English ones.</p>'
    )


def heatmaps_html(maps: AttentionMaps | None) -> str:
    """A grid of captioned heat maps that wraps to any width, with the legend of their shared scale."""
    if maps is None:
        return ""
    figures = "".join(
        f'<figure><img src="{data_uri(picture)}" alt="where the model looked for {escape(word)}">'
        f'<figcaption>{escape(word)}</figcaption></figure>'
        for picture, word in maps.overlays()
    )
    return f'{legend_html(maps.scale)}<div class="heatmaps">{figures}</div>'
