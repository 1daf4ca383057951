"""Every kind of image file people feed in: each gets a caption or a one-line error naming it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from captioner import EncoderConfig, ImageError
from captioner.images import load_image, preprocess
from conftest import random_photo

SQUASH = EncoderConfig(input_size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3, feature_dim=8, spatial=True)
CROP = EncoderConfig(input_size=(32, 48), mean=(0.5,) * 3, std=(0.5,) * 3, feature_dim=8, spatial=True,
                     resize_mode="center_crop")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


PHOTO = Image.fromarray(random_photo(0, (24, 32)))
JPEG = encoded(PHOTO, "JPEG", quality=90)


def test_modes_become_rgb_with_the_right_colours():
    gray = load_image(encoded(Image.new("L", (5, 4), 200), "PNG"))
    assert gray.shape == (3, 4, 5) and gray.unique().tolist() == [200]
    cmyk = load_image(encoded(Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "JPEG"))  # red in CMYK
    assert cmyk[0].float().mean() > 200 and cmyk[1:].float().mean() < 60
    sixteen = Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16))  # mid-grey, 16 bits
    assert load_image(encoded(sixteen, "PNG")).unique().tolist() == [128]
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent: white, not red or black
    assert load_image(encoded(rgba, "PNG")).unique().tolist() == [255]
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.info["transparency"] = 1
    assert load_image(encoded(palette, "PNG", transparency=1)).unique().tolist() == [255]


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    first = load_image(buffer.getvalue())
    assert first[0].float().mean() > 200 and first[2].float().mean() < 50


def test_exif_orientation_is_applied():
    tall = Image.new("RGB", (20, 10), (0, 0, 0))
    exif = tall.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    assert load_image(encoded(tall, "JPEG", exif=exif)).shape == (3, 20, 10)


@pytest.mark.parametrize("size", [(1, 1), (1, 5000), (5000, 1), (3, 4000)])
@pytest.mark.parametrize("config", [SQUASH, CROP], ids=["squash", "center_crop"])
def test_tiny_and_extreme_aspect_ratios(size, config):
    image = load_image(encoded(Image.new("RGB", size, (10, 200, 30)), "PNG"))
    pixels = preprocess(image, config)
    assert pixels.shape == (3, *config.input_size) and torch.isfinite(pixels).all()


@pytest.mark.parametrize("fmt", ["WEBP", "AVIF", "TIFF", "BMP"])
def test_other_formats_pillow_reads(fmt):
    if fmt in ("WEBP", "AVIF") and not features.check(fmt.lower()):
        pytest.skip(f"this Pillow has no {fmt} support")
    assert load_image(encoded(PHOTO, fmt)).shape == (3, 24, 32)


@pytest.mark.parametrize("data, reason", [
    (b"", "not a readable image"),
    (JPEG[: len(JPEG) // 2], "truncated"),
    (b"just some text, not a photo\n", "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ""),
])
def test_broken_files_get_one_line_errors_naming_them(tmp_path, data, reason):
    path = tmp_path / "holiday.jpg"
    path.write_bytes(data)
    with pytest.raises(ImageError) as raised:
        load_image(str(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message


def test_a_batch_of_everything_finishes_the_good_ones(tiny_captioner, tmp_path):
    files = {"good.jpg": JPEG, "empty.jpg": b"", "text.png": b"hello", "gray.png": encoded(Image.new("L", (9, 9)), "PNG"),
             "half.jpg": JPEG[:200], "wide.png": encoded(Image.new("RGB", (4000, 2)), "PNG")}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    results = {r.image.rsplit("/", 1)[-1]: r for r in tiny_captioner.caption([str(tmp_path / n) for n in files],
                                                                           max_length=4)}
    assert {n for n, r in results.items() if r.ok} == {"good.jpg", "gray.png", "wide.png"}
    assert all(r.error.startswith(str(tmp_path / n)) for n, r in results.items() if not r.ok)


SEEDS = [JPEG, encoded(PHOTO, "PNG"), encoded(PHOTO, "GIF"), encoded(PHOTO, "WEBP"), encoded(PHOTO, "BMP")]


@st.composite
def damaged_images(draw):
    """Valid files with bytes flipped, cut or inserted, and plain random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=2048))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position:]
            if not data:
                break
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@settings(max_examples=1000, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(damaged_images())
def test_no_bytes_crash_or_hang_the_loader(data):
    try:
        image = load_image(data, "fuzz.bin")
    except ImageError as error:
        assert str(error).startswith("fuzz.bin: ") and "\n" not in str(error)
        return
    assert image.dtype == torch.uint8 and image.shape[0] == 3
    assert preprocess(image, SQUASH).shape == (3, 32, 32)
