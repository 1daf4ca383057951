"""Which colours a photo shows: colour words a caption may say, read from the pixels.

The decoder learned its colours from Flickr8k, where "a black and white dog" opens
thousands of captions, so on other photos it writes "a black and white elephant" or
"a black and white triceratops". The photo itself says which colours are there: each
pixel is put by its hue, saturation and value (HSV) in one or two of the wide colour
:data:`BINS`, and a colour word (:data:`COLOURS`) is said only where at least
``colour_threshold`` of the photo's pixels fall in one of its bins
(:class:`~captioner.decoding.DecodingOptions`). A black dog on grass keeps "black"; an
elephant photo with no white in it loses "white".

The bins are deliberately wide (a brown dog's fur in shadow counts as black too):
the aim is to stop colours that are not in the photo at all, not to name them finely.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# Each colour word of captions and the bins that show it ("orange" is left out: it is also a fruit).
COLOURS: dict[str, tuple[str, ...]] = {
    "black": ("black",),
    "white": ("white",),
    "gray": ("gray",), "grey": ("gray",), "silver": ("gray", "white"),
    "brown": ("brown",), "tan": ("brown", "orange", "yellow"),
    "red": ("red",), "pink": ("pink", "red"), "purple": ("purple", "pink"),
    "yellow": ("yellow",), "gold": ("yellow", "brown"), "green": ("green",),
    "blue": ("blue",),
}
BINS = ("black", "white", "gray", "brown", "orange", "yellow", "red", "pink", "purple", "green", "blue")


def colour_shares(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, len(BINS))``: the share of each image's pixels in each colour bin, for RGB
    images ``(B, 3, H, W)`` in [0, 1]. A pixel may fall in two neighbouring bins."""
    rgb = rgb.float().clamp(0, 1)
    value, _ = rgb.max(dim=1)  # (B, H, W)
    chroma = value - rgb.min(dim=1).values
    saturation = torch.where(value > 0, chroma / value.clamp_min(1e-6), torch.zeros_like(value))
    hue = _hue_degrees(rgb, value, chroma)
    dark, bright = value < 0.3, value > 0.7
    pale = saturation < 0.25
    chromatic = ~pale & ~dark

    def hues(low: float, high: float) -> torch.Tensor:
        return chromatic & ((hue >= low) & (hue < high) if low < high else (hue >= low) | (hue < high))

    bins = {
        "black": value < 0.25,
        "white": bright & pale,
        "gray": pale & (value >= 0.2) & (value <= 0.8),
        "brown": ~pale & (value >= 0.15) & (value < 0.7) & (hue >= 10) & (hue < 50),
        "orange": hues(15, 45) & (value >= 0.6),
        "yellow": hues(40, 70) & (value >= 0.5),
        "red": hues(340, 15),
        "pink": (hues(300, 15) & (saturation < 0.6) & (value >= 0.6)) | hues(300, 340),
        "purple": hues(255, 310),
        "green": hues(65, 170),
        "blue": hues(170, 260),
    }
    return torch.stack([bins[name].flatten(1).float().mean(dim=1) for name in BINS], dim=1)


def _hue_degrees(rgb: torch.Tensor, value: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(dim=1)
    safe = chroma.clamp_min(1e-6)
    hue = torch.where(value == r, ((g - b) / safe) % 6, torch.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4))
    return hue * 60  # (B, H, W) in [0, 360)


def unseen_colour_words(shares: torch.Tensor, tokens: Sequence[str], threshold: float) -> torch.Tensor:
    """``(B, V)``: the tokens that are colour words none of whose bins has ``threshold``
    of an image's pixels (``shares`` from :func:`colour_shares`)."""
    unseen = torch.zeros(shares.size(0), len(tokens), dtype=torch.bool, device=shares.device)
    for token_id, token in enumerate(tokens):
        if token in COLOURS:
            seen = torch.stack([shares[:, BINS.index(name)] for name in COLOURS[token]], dim=1).amax(dim=1)
            unseen[:, token_id] = seen < threshold
    return unseen
