"""Colour words checked against the photo's pixels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image, ImageOps

from captioner import Captioner
from captioner.colours import BINS, COLOURS, colour_shares, unseen_colour_words

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
CHROMATIC = {word for word, bins in COLOURS.items() if not set(bins) <= {"black", "white", "gray"}}


def solid(*rgb: float, width: int = 8) -> torch.Tensor:
    """One photo ``(1, 3, 8, width)`` of a single colour."""
    return torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, 8, width)


@pytest.mark.parametrize(("rgb", "colour"), [
    ((0.0, 0.0, 0.0), "black"), ((1.0, 1.0, 1.0), "white"), ((0.5, 0.5, 0.5), "gray"),
    ((0.9, 0.1, 0.1), "red"), ((0.1, 0.7, 0.2), "green"), ((0.1, 0.3, 0.9), "blue"),
    ((0.95, 0.85, 0.1), "yellow"), ((0.45, 0.28, 0.12), "brown"), ((0.5, 0.1, 0.6), "purple"),
    ((0.95, 0.6, 0.7), "pink"),
])
def test_a_plain_colour_falls_in_its_bin(rgb, colour):
    shares = dict(zip(BINS, colour_shares(solid(*rgb))[0].tolist()))
    assert shares[colour] == 1
    achromatic = {"black", "white", "gray"}
    far = set(BINS) - achromatic if colour in achromatic else {"black", "white"}  # neighbours may overlap
    assert all(shares[name] == 0 for name in far - {colour}), shares


def test_shares_are_per_image_fractions_of_pixels():
    half = torch.cat([solid(0, 0, 0), solid(1, 1, 1)], dim=3)  # left black, right white
    shares = colour_shares(torch.cat([half, solid(0.9, 0.1, 0.1, width=16)]))
    assert shares[0, BINS.index("black")] == 0.5 and shares[0, BINS.index("white")] == 0.5
    assert shares[1, BINS.index("red")] == 1 and shares[1, BINS.index("black")] == 0


def test_colour_words_the_photo_does_not_show_are_unseen_and_other_words_never():
    tokens = ["<pad>", "a", "black", "white", "grey", "dog", "silver", "red"]
    shares = colour_shares(torch.cat([solid(0, 0, 0), solid(0.8, 0.8, 0.8)]))
    unseen = unseen_colour_words(shares, tokens, threshold=0.01)
    words = [{tokens[i] for i in row.nonzero().flatten().tolist()} for row in unseen]
    assert words[0] == {"white", "grey", "silver", "red"}  # a black photo shows black only
    assert words[1] == {"black", "red"}  # light gray: gray, white and silver (gray or white) are there


def test_encoded_features_carry_the_photos_colours(tiny_captioner):
    features = tiny_captioner.encode(torch.rand(3, 3, 32, 32))
    assert features.colours is not None and features.colours.shape == (3, len(BINS))
    assert torch.equal(features.rows(slice(1, 2)).colours, features.colours[1:2])


@pytest.fixture(scope="module")
def default_model():
    return Captioner.from_pretrained(device="cpu")


def test_the_shipped_model_says_no_hue_of_a_black_and_white_photo(default_model):
    assert default_model.decoding.colour_threshold > 0
    photos = [ImageOps.grayscale(Image.open(EXAMPLES / f"{name}.jpg")).convert("RGB")
              for name in ("cat", "coffee", "astronaut")]
    unchecked = [set(r.text.split()) for r in default_model.caption(photos, colour_threshold=0)]
    assert any(words & CHROMATIC for words in unchecked)  # the decoder alone sees a brown cat, red shirts
    for result in default_model.caption(photos):
        assert result.ok and not set(result.text.split()) & CHROMATIC, result.text
