"""Bulk captioning on Ray Data (``pip install "captioner[ray]"``): one model per worker, GPU or CPU.

The same code runs on a laptop (a local Ray instance) and on a cluster (``address``
of a running Ray cluster). Files are read as bytes by Ray and decoded by each
worker with captioner's own loader, so a corrupt file becomes one error row
instead of failing its block. ``RayCaptioner`` also accepts the ``image`` column of
``ray.data.read_images(...)`` for pipelines that already decode with Ray.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .images import IMAGE_EXTENSIONS
from .results import ROW_COLUMNS


class RayCaptioner:
    """A callable class for ``Dataset.map_batches``: loads the model once per worker."""

    def __init__(self, model: str | None = None, device: str | None = None, postprocess: tuple[str, ...] = (),
                 decoding: dict[str, Any] | None = None) -> None:
        from .captioner import Captioner

        self.captioner = Captioner.from_pretrained(model, device=device)
        self.postprocess = tuple(postprocess)
        self.decoding = dict(decoding or {})

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        """``{"bytes" or "image", "path"}`` columns in, one ``CaptionResult.to_row()`` per image out."""
        images = batch["bytes"] if "bytes" in batch else batch["image"]
        paths = [str(p) for p in batch["path"]] if "path" in batch else [f"<image #{i}>" for i in range(len(images))]
        inputs = [bytes(image) if isinstance(image, (bytes, bytearray, np.bytes_)) else np.asarray(image)
                  for image in images]
        rows: dict[str, list[Any]] = {column: [] for column in ROW_COLUMNS}
        for result in self.captioner.caption_stream(inputs, batch_size=len(inputs), names=paths,
                                                    postprocess=self.postprocess, **self.decoding):
            for column, value in result.to_row().items():
                rows[column].append(value)
        return rows


@dataclass
class BulkJob:
    """Where the images are, where the captions go, and how the work is spread."""

    inputs: list[str]  # files, folders (searched recursively) or any path Ray's file readers take (s3://...)
    output: str  # a folder: Ray writes one file per block
    output_format: Literal["jsonl", "parquet"] = "jsonl"
    model: str | None = None
    workers: int = 1  # model replicas (actors)
    gpus_per_worker: float = 0.0
    batch_size: int = 64
    postprocess: tuple[str, ...] = ()
    decoding: dict[str, Any] = field(default_factory=dict)
    address: str | None = None  # a Ray cluster ("ray://host:10001" or "auto"); None starts a local instance


def run_bulk(job: BulkJob) -> None:
    """Caption every image of ``job.inputs`` into files in the folder ``job.output``."""
    import ray

    if not ray.is_initialized():
        # Ray's file readers need a CPU beside the workers.
        local: dict[str, Any] = {} if job.address else {"num_cpus": max(os.cpu_count() or 1, job.workers + 1)}
        ray.init(address=job.address, include_dashboard=False, log_to_driver=False, **local)
    dataset = ray.data.read_binary_files(job.inputs, include_paths=True,
                                         file_extensions=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
    device = "cuda" if job.gpus_per_worker > 0 else "cpu"
    captions = dataset.map_batches(
        RayCaptioner,
        fn_constructor_kwargs={"model": job.model, "device": device, "postprocess": tuple(job.postprocess),
                               "decoding": job.decoding},
        batch_size=job.batch_size, batch_format="numpy", concurrency=job.workers,
        num_gpus=job.gpus_per_worker or None,
    )
    if job.output_format == "parquet":
        captions.write_parquet(job.output)
    else:
        captions.write_json(job.output)  # JSON lines, one file per block
