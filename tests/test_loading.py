"""The parallel image loader, the pixel limit, and streaming, resumable captioning from the CLI."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from captioner import EncoderConfig
from captioner.cli import cli
from captioner.images import load_image, preprocess, preprocess_many
from captioner.batch_loader import BatchLoader
from conftest import random_photo

CONFIG = EncoderConfig(input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), feature_dim=8, spatial=True)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` pixels but holds none: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


@pytest.fixture
def photos(tmp_path):
    paths = []
    for i in range(7):
        path = tmp_path / f"photo{i}.jpg"
        Image.fromarray(random_photo(i, (30 + i, 40))).save(path, quality=95)
        paths.append(str(path))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    paths.insert(3, str(tmp_path / "broken.jpg"))
    return paths


def test_batches_keep_order_and_report_errors_by_position(photos):
    with BatchLoader(CONFIG, num_workers=3) as loader:
        batches = list(loader.batches(photos, batch_size=3))
    assert [len(b.names) for b in batches] == [3, 3, 2]
    assert batches[1].errors.keys() == {0} and batches[1].errors[0].startswith(photos[3] + ": ")
    assert batches[1].loaded == [1, 2] and batches[1].pixels.shape == (2, 3, 32, 32)
    expected = preprocess(load_image(photos[4]), CONFIG)
    assert torch.equal(batches[1].pixels[0], expected)


def test_a_generator_is_read_only_a_few_batches_ahead(photos):
    pulled = []

    def lazily():
        for path in photos:
            pulled.append(path)
            yield path

    with BatchLoader(CONFIG, num_workers=2, prefetch=1) as loader:
        batches = loader.batches(lazily(), batch_size=2)
        next(batches)
        assert len(pulled) <= 2 * 3  # the batch handed out, one prefetched, one being gathered
        assert sum(len(b.names) for b in batches) == len(photos) - 2


def test_device_jpeg_decoding_matches_pillow_and_falls_back_for_bad_files(photos):
    # The CUDA path (decode_jpeg on the device) run on the CPU: same pixels as Pillow, same errors.
    with BatchLoader(CONFIG, decode_jpeg_on_device=True) as device_loader, BatchLoader(CONFIG) as pillow_loader:
        on_device = list(device_loader.batches(photos, batch_size=8))[0]
        pillow = list(pillow_loader.batches(photos, batch_size=8))[0]
    assert on_device.loaded == pillow.loaded and on_device.errors == pillow.errors
    assert (on_device.pixels - pillow.pixels).abs().mean() < 0.02  # both libjpeg; IDCT details may differ


@pytest.mark.parametrize("resize_mode", ["center_crop", "squash"])
def test_images_of_one_size_are_preprocessed_together_as_they_would_be_alone(resize_mode):
    config = EncoderConfig(input_size=(24, 32), mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4), feature_dim=8, spatial=False,
                           resize_mode=resize_mode)
    shapes = [(40, 30), (30, 40), (40, 30), (24, 32), (30, 40), (40, 30)]
    images = [torch.from_numpy(random_photo(i, shape)).permute(2, 0, 1).contiguous() for i, shape in enumerate(shapes)]
    together = preprocess_many(images, config)
    assert len(together) == len(images)
    for image, pixels in zip(images, together):
        assert torch.allclose(pixels, preprocess(image, config), atol=1e-6)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # captioner silences it outside pytest
def test_huge_images_are_refused_from_their_header(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(40_000, 40_000))
    with BatchLoader(CONFIG) as loader:
        (batch,) = loader.batches([str(bomb)], batch_size=1)
    assert batch.errors[0] == f"{bomb}: 1600 megapixels, above the limit of 100 (set CAPTIONER_MAX_PIXELS to change it)"
    bomb.write_bytes(png_header_only(12_000, 10_000))  # under Pillow's own guard: ours refuses it
    with pytest.raises(Exception, match=r"12000x10000 is 120 megapixels, above the limit of 100 \(set CAPTIONER"):
        load_image(str(bomb))
    monkeypatch.setenv("CAPTIONER_MAX_PIXELS", "1000")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(small)
    with pytest.raises(Exception, match="40x40 is 0 megapixels, above the limit of 0.001"):
        load_image(str(small))


def test_cli_streams_to_a_file_and_resumes_without_repeating(tiny_captioner, image_folder, tmp_path):
    model = tiny_captioner.save(tmp_path / "model")
    output = tmp_path / "captions.jsonl"
    first = CliRunner().invoke(cli, ["caption", str(image_folder), "-m", str(model), "-o", str(output),
                                     "--batch-size", "2"])
    assert first.exit_code == 0, first.output
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(lines) == 3 and all(line["caption"] for line in lines)
    assert "captioning" in first.stderr  # the progress bar

    # A run killed mid-write leaves a torn last line; resuming drops it and captions only what is missing.
    kept = output.read_text().splitlines(keepends=True)[:1]
    output.write_text("".join(kept) + '{"image": "torn')
    again = CliRunner().invoke(cli, ["caption", str(image_folder), "-m", str(model), "-o", str(output), "--resume"])
    assert again.exit_code == 0, again.output
    assert "resumed: 1 images were already in" in again.stderr
    final = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(line["image"] for line in final) == sorted(line["image"] for line in lines)
    assert final[0] == lines[0]

    refused = CliRunner().invoke(cli, ["caption", str(image_folder), "-m", str(model), "-o", str(output)])
    assert refused.exit_code == 1 and "already exists; use --resume" in refused.stderr


def test_workers_hand_over_8_bit_images_and_the_consumer_makes_them_float(photos, monkeypatch):
    import threading

    import captioner.batch_loader as batch_loader

    threads = []
    original = batch_loader.preprocess
    monkeypatch.setattr(batch_loader, "preprocess",
                        lambda *args: threads.append(threading.current_thread()) or original(*args))
    with BatchLoader(CONFIG, num_workers=2) as loader:
        item = loader._prepare(photos[0], "photo0")
        assert item.image is not None and item.image.dtype == torch.uint8 and item.image.shape == (3, 32, 32)
        batches = list(loader.batches(photos, batch_size=4))
    assert threads and all(thread is threading.main_thread() for thread in threads)  # one call per batch
    assert len(threads) == len(batches)


def test_a_stacks_batches_are_each_members_own_input(photos):
    from dataclasses import replace

    wide = replace(CONFIG, input_size=(24, 40), mean=(0.4, 0.5, 0.6))
    stack = replace(CONFIG, input_size=(32, 40), members=(CONFIG, wide))
    with BatchLoader(stack, num_workers=2) as loader:
        (batch,) = list(loader.batches(photos[:3], batch_size=3))
    expected = torch.stack([preprocess(load_image(path), stack) for path in photos[:3]])
    assert batch.pixels.shape == (3, 6, 32, 40) and torch.equal(batch.pixels, expected)


def test_for_a_device_the_8_bit_images_move_there_and_become_float_there(photos):
    # The "meta" device stands in for a GPU: no data, but every tensor says where it lives.
    with BatchLoader(CONFIG, device="meta", num_workers=2) as loader:
        batches = list(loader.batches(photos, batch_size=4))
    assert [b.loaded for b in batches] == [[0, 1, 2], [0, 1, 2, 3]]
    assert all(b.pixels.device.type == "meta" and b.pixels.dtype == torch.float32 for b in batches)
    assert batches[1].pixels.shape == (4, 3, 32, 32)
