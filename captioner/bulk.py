"""Bulk captioning on Ray Data (``pip install "captioner[ray]"``): one model per worker, GPU or CPU.

The same code runs on a laptop (a local Ray instance) and on a cluster (``address``
of a running Ray cluster). Files are read as bytes by Ray and decoded by each
worker with captioner's own loader, so a corrupt file becomes one error row
instead of failing its block. ``RayCaptioner`` also accepts the ``image`` column of
``ray.data.read_images(...)`` for pipelines that already decode with Ray.

JSON lines output holds, per image, the same object as ``captioner caption --format
jsonl``; Parquet holds the flat table row (:data:`~captioner.results.ROW_COLUMNS`).
Ray's own logging and progress bars are kept off stderr.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import CaptionerError
from .images import IMAGE_EXTENSIONS
from .results import ROW_COLUMNS

JSON_COLUMN = "json"  # RayCaptioner(as_json=True): each result's to_dict() as one JSON string


class RayCaptioner:
    """A callable class for ``Dataset.map_batches``: loads the model once per worker."""

    def __init__(self, model: str | None = None, device: str | None = None, postprocess: tuple[str, ...] = (),
                 decoding: dict[str, Any] | None = None, as_json: bool = False) -> None:
        from .captioner import Captioner

        self.captioner = Captioner.from_pretrained(model, device=device)
        self.postprocess = tuple(postprocess)
        self.decoding = dict(decoding or {})
        self.as_json = as_json

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        """``{"bytes" or "image", "path"}`` columns in; out, one ``CaptionResult.to_row()`` per image, or with
        ``as_json`` the columns ``json`` (its ``to_dict()``, as ``caption --format jsonl`` writes it) and ``error``."""
        images = batch["bytes"] if "bytes" in batch else batch["image"]
        paths = [str(p) for p in batch["path"]] if "path" in batch else [f"<image #{i}>" for i in range(len(images))]
        inputs = [bytes(image) if isinstance(image, (bytes, bytearray, np.bytes_)) else np.asarray(image)
                  for image in images]
        columns = (JSON_COLUMN, "error") if self.as_json else ROW_COLUMNS
        rows: dict[str, list[Any]] = {column: [] for column in columns}
        for result in self.captioner.caption_stream(inputs, batch_size=len(inputs), names=paths,
                                                    postprocess=self.postprocess, **self.decoding):
            row = ({JSON_COLUMN: json.dumps(result.to_dict(), ensure_ascii=False), "error": result.error}
                   if self.as_json else result.to_row())
            for column, value in row.items():
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


@dataclass(frozen=True)
class BulkSummary:
    """What a bulk job did: how many images it captioned, and the error line of each that failed."""

    images: int
    errors: list[str]


def run_bulk(job: BulkJob) -> BulkSummary:
    """Caption every image of ``job.inputs`` into files in the folder ``job.output``: ``*.jsonl`` (one
    ``caption --format jsonl`` object per line) or ``*.parquet``, one file per block."""
    import ray

    from .ray_output import JsonLinesDatasink

    for path in job.inputs:
        if "://" not in path and not os.path.exists(path):
            raise CaptionerError(f"{path}: no such file or folder")

    if not ray.is_initialized():
        # Ray's file readers need a CPU beside the workers.
        local: dict[str, Any] = {} if job.address else {"num_cpus": max(os.cpu_count() or 1, job.workers + 1)}
        ray.init(address=job.address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 **local)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    dataset = ray.data.read_binary_files(job.inputs, include_paths=True,
                                         file_extensions=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
    device = "cuda" if job.gpus_per_worker > 0 else "cpu"
    as_json = job.output_format == "jsonl"
    captions = dataset.map_batches(
        RayCaptioner,
        fn_constructor_kwargs={"model": job.model, "device": device, "postprocess": tuple(job.postprocess),
                               "decoding": job.decoding, "as_json": as_json},
        batch_size=job.batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=job.workers),
        num_gpus=job.gpus_per_worker or None,
    ).materialize()  # captioned once; counted and written from the object store
    if as_json:
        captions.write_datasink(JsonLinesDatasink(job.output, JSON_COLUMN))
    else:
        captions.write_parquet(job.output)
    errors = [row["error"] for row in captions.select_columns(["error"]).iter_rows()]
    return BulkSummary(len(errors), sorted(error for error in errors if error is not None))
