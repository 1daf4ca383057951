"""What ``captioner data check`` says about a downloaded caption dataset: its splits, and every image
file that is missing or cannot be read, before hours of training find out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .readers import CaptionDataset, load_dataset

SPLIT_ORDER = ("train", "val", "test", "rest")


@dataclass(frozen=True)
class SplitReport:
    """One split: how many images and captions, the fewest and most captions per image."""

    name: str
    images: int
    captions: int
    fewest: int
    most: int


@dataclass
class DatasetReport:
    """The splits of a dataset, and its image files that are missing or unreadable (path: reason)."""

    source: Path
    splits: list[SplitReport] = field(default_factory=list)
    bad_images: dict[str, str] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """One line per problem that would stop or spoil training; empty when the dataset is ready."""
        lines = [f"{path}: {reason}" for path, reason in self.bad_images.items()]
        names = {split.name for split in self.splits}
        if "train" not in names:
            lines.append(f"{self.source}: no train split (a Flickr folder needs Flickr_8k.trainImages.txt)")
        lines += [f"{self.source}: split {s.name!r} has an image with no captions" for s in self.splits if not s.fewest]
        return lines


def image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as a photo (it is missing, or not an image PIL can read), or None."""
    if not path.is_file():
        return "no such file"
    try:
        with Image.open(path) as image:
            image.verify()  # the header and structure, without decoding every pixel
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        return f"not a readable image ({error})"
    return None


def check_dataset(source: str | Path, images: str | Path | None = None, split: str = "train") -> DatasetReport:
    """Read ``source`` as ``captioner train --data`` does (raising :class:`DatasetError` where it would),
    then look at every image file of every split."""
    dataset: CaptionDataset = load_dataset(source, images, split)
    report = DatasetReport(Path(source))
    for name in sorted(dataset.splits, key=lambda n: (SPLIT_ORDER.index(n) if n in SPLIT_ORDER else 9, n)):
        members = dataset.splits[name]
        counts = [len(image.captions) for image in members] or [0]
        report.splits.append(SplitReport(name, len(members), sum(counts), min(counts), max(counts)))
        for image in members:
            problem = image_problem(image.path)
            if problem is not None:
                report.bad_images[str(image.path)] = problem
    return report
