"""Reading a JPEG's frame header without decoding it, and how the GPU loader uses it."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from captioner.batch_loader import BatchLoader
from captioner.jpeg_header import read_jpeg_frame
from conftest import random_photo
from test_loading import CONFIG


def jpeg(mode: str = "RGB", size: tuple[int, int] = (37, 23), **options) -> bytes:
    """A JPEG that Pillow writes: ``size`` is (width, height)."""
    image = Image.fromarray(random_photo(0, (size[1], size[0]))).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize(("mode", "options", "components", "marker"), [
    ("RGB", {}, 3, 0xC0),
    ("L", {}, 1, 0xC0),
    ("RGB", {"progressive": True}, 3, 0xC2),
    ("CMYK", {}, 4, 0xC0),
])
def test_frame_headers_of_the_jpegs_pillow_writes(mode, options, components, marker):
    frame = read_jpeg_frame(jpeg(mode, **options))
    assert frame is not None
    assert (frame.width, frame.height, frame.components, frame.precision, frame.marker) == (37, 23, components, 8, marker)
    assert frame.common == (components != 4)


def test_segments_before_the_frame_are_skipped_whatever_their_content():
    data = jpeg(icc_profile=b"\xff\xc0\x00\x11\x08\xff\xff" * 3000)  # an APP2 segment of frame-like bytes
    assert data.count(b"\xff\xc0") > 1  # the marker's bytes appear before the real frame header
    frame = read_jpeg_frame(data)
    assert frame is not None and (frame.width, frame.height) == (37, 23)
    with_fill = data[:2] + b"\xff\xff" + data[2:]  # fill bytes before a marker are allowed
    assert read_jpeg_frame(with_fill) == frame


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"\xff\xd8\xff\xe0 not really a jpeg",
                                  b"\xff\xd8\xff\xda\x00\x02", b"\xff\xd8\xff\xc0\x00\x11\x08"])
def test_anything_else_has_no_frame(data):
    assert read_jpeg_frame(data) is None


def test_truncated_after_the_frame_header_still_has_one():
    data = jpeg()
    sof = data.index(b"\xff\xc0")
    assert read_jpeg_frame(data[: sof + 10]) is not None
    assert read_jpeg_frame(data[: sof + 9]) is None


def test_device_loader_sends_uncommon_jpegs_to_pillow_and_checks_sizes_from_the_header(tmp_path, monkeypatch):
    paths = {}
    for name, data in {"rgb": jpeg(), "grey": jpeg("L"), "cmyk": jpeg("CMYK"), "huge": jpeg(size=(50, 40))}.items():
        paths[name] = tmp_path / f"{name}.jpg"
        paths[name].write_bytes(data)
    monkeypatch.setenv("CAPTIONER_MAX_PIXELS", "1999")  # 50x40 is over, 37x23 under
    loader = BatchLoader(CONFIG, decode_jpeg_on_device=True)
    with loader:
        prepared = {name: loader._prepare(str(path), name) for name, path in paths.items()}
        (on_device,) = loader.batches([str(p) for p in paths.values()], batch_size=4)
    assert prepared["rgb"].jpeg is not None and prepared["grey"].jpeg is not None
    assert prepared["cmyk"].jpeg is None and prepared["cmyk"].image is not None  # 8-bit, for Pillow's path
    assert prepared["huge"].error == "huge: 50x40 is 0 megapixels, above the limit of 0.001999 " \
                                     "(set CAPTIONER_MAX_PIXELS to change it)"
    with BatchLoader(CONFIG) as pillow_loader:
        (pillow,) = pillow_loader.batches([str(p) for p in paths.values()], batch_size=4)
    assert on_device.loaded == pillow.loaded == [0, 1, 2] and set(on_device.errors) == {3}
    assert torch.allclose(on_device.pixels, pillow.pixels, atol=0.1)
