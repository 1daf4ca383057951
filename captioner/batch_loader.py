"""Images to model-ready batches in background threads, a batch or two ahead of the model.

Worker threads read the inputs, a slice of each batch per worker. On the CPU each
worker decodes (Pillow) and resizes its images, still as 8-bit pixels; the thread that
takes the batch turns them into the model's float input, the whole batch at once (a
stack of encoders, whose members each resize an image their own way, gets its float
input from the workers).
(Float conversion in the workers ran each worker's PyTorch ops on thread teams of their
own, which on a small CPU crowded out the model's: 20% of end-to-end speed on 2 cores.)
On CUDA, JPEG files are only read (and their headers checked); an assembling thread
then decodes the whole batch on the GPU with ``torchvision.io.decode_jpeg`` and resizes
it there, while the model works on the batch before. Anything the GPU decoder cannot
read goes through Pillow, which also gives the error message.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from os import PathLike
from typing import Any, cast

import torch
from torchvision.io import ImageReadMode, decode_jpeg

from .encoder import EncoderConfig
from .errors import ImageError, one_line
from .images import check_pixel_limit, describe_input, load_image, preprocess, preprocess_many, resize
from .jpeg_header import read_jpeg_frame

JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class Batch:
    """One batch: every input's name, the pixels of those that loaded, and why the others did not."""

    names: list[str]
    pixels: torch.Tensor | None  # (len(loaded), 3, H, W) float, on the target device
    loaded: list[int]  # positions in ``names`` that have pixels, in order
    errors: dict[int, str]  # position -> one-line error


@dataclass
class Prepared:
    """What a worker made of one input: an 8-bit image, model-ready pixels (decoded on the
    device), raw JPEG bytes for the device decoder, or an error."""

    image: torch.Tensor | None = None  # uint8 (3, H, W), resized to the encoder's input (not for a stack)
    pixels: torch.Tensor | None = None
    jpeg: torch.Tensor | None = None
    error: str | None = None


class BatchLoader:
    """Loads batches of images in ``num_workers`` threads, ``prefetch`` batches ahead of the consumer."""

    def __init__(self, config: EncoderConfig, device: torch.device | str = "cpu", num_workers: int | None = None,
                 prefetch: int = 2, decode_jpeg_on_device: bool | None = None) -> None:
        self.config = config
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:  # the assembling thread's current device may differ
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.prefetch = max(1, prefetch)
        self.device_jpeg = self.device.type == "cuda" if decode_jpeg_on_device is None else decode_jpeg_on_device
        self.num_workers = num_workers or default_workers()
        self._pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="captioner-load")
        self._assembler = ThreadPoolExecutor(1, thread_name_prefix="captioner-assemble")  # batches in order

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)  # first: an assembly waiting on a read then ends
        self._assembler.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BatchLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batches(self, items: Iterable[Any], batch_size: int, names: Iterable[str] | None = None) -> Iterator[Batch]:
        """Batches of ``items`` in order; ``items`` may be a generator (nothing is read ahead of ``prefetch``)."""
        named = zip(items, names) if names is not None else ((x, describe_input(x, i)) for i, x in enumerate(items))
        pending: deque[Future[tuple[list[str], list[Prepared]]]] = deque()
        while True:
            chunk = list(itertools.islice(named, max(1, batch_size)))
            if chunk:
                step = -(-len(chunk) // self.num_workers)  # one slice of the batch per worker
                reads = [self._pool.submit(self._prepare_many, chunk[i : i + step]) for i in range(0, len(chunk), step)]
                pending.append(self._assembler.submit(self._assemble, [name for _, name in chunk], reads))
            if pending and (len(pending) > self.prefetch or not chunk):
                yield self._finish(pending.popleft().result())
            elif not chunk:
                return

    def _prepare_many(self, named: list[tuple[Any, str]]) -> list[Prepared]:
        return [self._prepare(item, name) for item, name in named]

    def _prepare(self, item: Any, name: str) -> Prepared:
        try:
            if self.device_jpeg and isinstance(item, (str, PathLike)) and \
                    os.path.splitext(item)[1].lower() in JPEG_SUFFIXES:
                with open(item, "rb") as file:
                    data = bytearray(file.read())
                frame = read_jpeg_frame(data)  # the header only: size checks before decoding
                if frame is not None and frame.common:
                    check_pixel_limit((frame.width, frame.height), name)
                    return Prepared(jpeg=torch.frombuffer(data, dtype=torch.uint8))
                return self._prepared(load_image(bytes(data), name))
            return self._prepared(load_image(item, name))
        except ImageError as error:
            return Prepared(error=str(error))
        except OSError as error:
            return Prepared(error=f"{name}: {one_line(error) or type(error).__name__}")

    def _prepared(self, image: torch.Tensor) -> Prepared:
        """An 8-bit image resized (and cropped) to the encoder's input. A stack's members each
        resize it their own way, into one float input: its workers make that input whole."""
        if self.config.members:
            return Prepared(pixels=preprocess(image, self.config))
        return Prepared(image=resize(image, self.config))

    def _decode_on_device(self, data: list[torch.Tensor], names: list[str], items: list[Prepared]) -> None:
        """Fill ``pixels`` of JPEG items from one batched device decode (one at a time if that fails)."""
        try:
            decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device, apply_exif_orientation=True)
        except RuntimeError:
            decoded = []
            for raw in data:
                try:
                    decoded.append(decode_jpeg(raw, mode=ImageReadMode.RGB, device=self.device,
                                               apply_exif_orientation=True))
                except RuntimeError:
                    decoded.append(None)
        images, readable = [], []
        for item, image, raw, name in zip(items, decoded, data, names):
            item.jpeg = None
            if image is None:  # the device decoder refused it: Pillow reads it or says why
                try:
                    image = load_image(bytes(raw.numpy()), name)
                except ImageError as error:
                    item.error = str(error)
                    continue
            images.append(image)
            readable.append(item)
        for item, pixels in zip(readable, preprocess_many(images, self.config)):
            item.pixels = pixels

    def _assemble(self, names: list[str], reads: list[Future[list[Prepared]]]) -> tuple[list[str], list[Prepared]]:
        """A batch's inputs once read: JPEGs decoded on the device, and for a device what the
        workers made moved there (one pinned copy per kind and size, which overlaps with the
        GPU's work)."""
        prepared = [p for read in reads for p in read.result()]
        jpegs = {i: p.jpeg for i, p in enumerate(prepared) if p.jpeg is not None}
        if jpegs:
            self._decode_on_device(list(jpegs.values()), [names[i] for i in jpegs], [prepared[i] for i in jpegs])
        if self.device.type != "cpu":
            for kind in ("image", "pixels"):
                on_host: dict[tuple[int, ...], list[Prepared]] = {}
                for item in prepared:
                    tensor = getattr(item, kind)
                    if tensor is not None and tensor.device.type == "cpu":
                        on_host.setdefault(tuple(tensor.shape), []).append(item)
                for items in on_host.values():
                    moved = torch.stack([getattr(item, kind) for item in items])
                    if self.device.type == "cuda":
                        moved = moved.pin_memory()
                    moved = moved.to(self.device, non_blocking=True)
                    for row, item in enumerate(items):
                        setattr(item, kind, moved[row])
        return names, prepared

    def _finish(self, assembled: tuple[list[str], list[Prepared]]) -> Batch:
        """The batch as the model takes it, made in the consumer's thread: the 8-bit images
        preprocessed together, in order with any pixels the device decoded."""
        names, prepared = assembled
        errors = {i: p.error for i, p in enumerate(prepared) if p.error is not None}
        loaded = [i for i, p in enumerate(prepared) if p.image is not None or p.pixels is not None]
        images = [p.image for p in prepared if p.image is not None]
        if images and len(images) == len(loaded) and len({tuple(image.shape) for image in images}) == 1:
            return Batch(names, preprocess(torch.stack(images), self.config), loaded, errors)  # the usual batch
        for item, pixels in zip([p for p in prepared if p.image is not None], preprocess_many(images, self.config)):
            item.pixels = pixels
        stacked = torch.stack([cast(torch.Tensor, prepared[i].pixels) for i in loaded]) if loaded else None
        return Batch(names, stacked, loaded, errors)
