"""Shared pieces of the benchmarks: the image set, timing, memory and table printing."""

from __future__ import annotations

import platform
import random
import resource
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from captioner.model_catalog import shipped_assets_dir

FLICKR8K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "flickr8k"


def benchmark_images(count: int, folder: str | None = None) -> tuple[list[str], str]:
    """``count`` JPEG files (repeated if the folder has fewer) and a description of where they came from.

    Default: the Flickr8k validation photos when ``../shared`` has them, else JPEGs
    cropped from the shipped example photos into a temporary folder.
    """
    if folder is None and (FLICKR8K / "splits" / "Flickr_8k.devImages.txt").is_file():
        names = (FLICKR8K / "splits" / "Flickr_8k.devImages.txt").read_text().split()
        files = [str(FLICKR8K / "images" / name) for name in names]
        source = f"Flickr8k validation photos (224x224 JPEG) from {FLICKR8K}"
    elif folder is not None:
        files = sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        source = f"images in {folder}"
    else:
        files, source = synthetic_jpegs(min(count, 200)), "JPEG crops (224x224) of the shipped example photos"
    if not files:
        raise SystemExit(f"no images found for the benchmark ({source})")
    return [files[i % len(files)] for i in range(count)], source


def synthetic_jpegs(count: int) -> list[str]:
    examples = sorted((shipped_assets_dir("examples") or Path(".")).glob("*.jpg"))
    folder = Path(tempfile.mkdtemp(prefix="captioner-bench-"))
    rng = random.Random(0)
    paths = []
    for i in range(count):
        with Image.open(examples[i % len(examples)]) as photo:
            side = rng.randint(min(photo.size) // 2, min(photo.size))
            left, top = rng.randint(0, photo.width - side), rng.randint(0, photo.height - side)
            crop = photo.convert("RGB").crop((left, top, left + side, top + side)).resize((224, 224))
            crop.save(folder / f"crop{i:04d}.jpg", quality=90)
        paths.append(str(folder / f"crop{i:04d}.jpg"))
    return paths


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpus": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


@dataclass
class Table:
    """A printed table: a title, column names and rows."""

    title: str
    columns: list[str]
    rows: list[list]

    def render(self) -> str:
        cells = [self.columns] + [[format_cell(v) for v in row] for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [f"\n{self.title}", "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |",
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |" for row in cells[1:]]
        return "\n".join(lines)


def format_cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)
