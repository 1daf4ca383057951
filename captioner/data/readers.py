"""Readers for the caption dataset formats people have.

Every reader returns a :class:`CaptionDataset`: named splits (``train``, ``val``,
``test``, and ``rest`` for images in no split list / Karpathy's ``restval``) of
images with their reference captions.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CaptionerError


class DatasetError(CaptionerError):
    """A dataset file is missing or not in the expected format."""


@dataclass(frozen=True)
class CaptionedImage:
    """One image file and its reference captions."""

    path: Path
    captions: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class CaptionDataset:
    """Images with captions, by split name."""

    splits: dict[str, list[CaptionedImage]] = field(default_factory=dict)

    def split(self, name: str) -> list[CaptionedImage]:
        if name not in self.splits:
            raise DatasetError(f"dataset has no split {name!r}; it has: {', '.join(sorted(self.splits)) or 'none'}")
        return self.splits[name]

    def select(self, names: list[str]) -> list[CaptionedImage]:
        """The images of several splits, in order."""
        return [image for name in names for image in self.split(name)]


# -- Flickr8k / Flickr30k ----------------------------------------------------------------

FLICKR_CAPTION_FILES = ("captions.txt", "Flickr8k.token.txt", "results_20130124.token", "Flickr30k.token.txt")
FLICKR_IMAGE_DIRS = ("images", "Images", "Flicker8k_Dataset", "Flickr8k_Dataset", "flickr30k_images", "flickr30k-images")
FLICKR_SPLIT_FILES = {
    "train": ("Flickr_8k.trainImages.txt", "Flickr_30k.trainImages.txt", "trainImages.txt"),
    "val": ("Flickr_8k.devImages.txt", "Flickr_30k.devImages.txt", "devImages.txt"),
    "test": ("Flickr_8k.testImages.txt", "Flickr_30k.testImages.txt", "testImages.txt"),
}


def _find(root: Path, names: tuple[str, ...], subdirs: tuple[str, ...] = ("", "splits", "text", "Flickr8k_text")) -> Path | None:
    for sub in subdirs:
        for name in names:
            candidate = root / sub / name
            if candidate.exists():
                return candidate
    return None


def _read_flickr_captions(path: Path) -> dict[str, list[str]]:
    captions: dict[str, list[str]] = defaultdict(list)
    if path.suffix == ".txt" and path.name == "captions.txt":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header != ["image", "caption"]:
                raise DatasetError(f"{path}: expected a CSV header 'image,caption', found {header}")
            for row in reader:
                if len(row) != 2:
                    raise DatasetError(f"{path}: line {reader.line_num} has {len(row)} fields, expected 2")
                captions[row[0]].append(row[1].strip())
        return captions
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        key, sep, caption = line.partition("\t")
        if not sep:
            raise DatasetError(f"{path}: line {number} is not 'image.jpg#N<TAB>caption'")
        captions[key.split("#")[0]].append(caption.strip())
    return captions


def read_flickr(root: str | Path) -> CaptionDataset:
    """A Flickr8k/30k folder: ``captions.txt`` (CSV) or ``*.token.txt``, an image folder, split lists."""
    root = Path(root)
    caption_file = _find(root, FLICKR_CAPTION_FILES)
    if caption_file is None:
        raise DatasetError(f"{root}: no Flickr caption file ({', '.join(FLICKR_CAPTION_FILES)})")
    image_dir = _find(root, FLICKR_IMAGE_DIRS, ("",))
    if image_dir is None:
        raise DatasetError(f"{root}: no image folder ({', '.join(FLICKR_IMAGE_DIRS)})")
    captions = _read_flickr_captions(caption_file)
    dataset = CaptionDataset()
    assigned: set[str] = set()
    for split, names in FLICKR_SPLIT_FILES.items():
        split_file = _find(root, names)
        if split_file is None:
            continue
        files = [line.strip() for line in split_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        missing = [name for name in files if name not in captions]
        if missing:
            raise DatasetError(f"{split_file}: {len(missing)} images have no captions, e.g. {missing[0]}")
        dataset.splits[split] = [CaptionedImage(image_dir / name, tuple(captions[name])) for name in files]
        assigned.update(files)
    rest = sorted(name for name in captions if name not in assigned)
    if rest:
        dataset.splits["rest"] = [CaptionedImage(image_dir / name, tuple(captions[name])) for name in rest]
    return dataset


# -- COCO --------------------------------------------------------------------------------

def read_coco(annotations: str | Path, image_dir: str | Path, split: str = "train") -> CaptionDataset:
    """A COCO captions file (``captions_train2017.json``) and its image folder, as one split."""
    annotations = Path(annotations)
    return _coco(_load_json(annotations), annotations, Path(image_dir), split)


def _coco(data, annotations: Path, image_dir: Path, split: str) -> CaptionDataset:
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DatasetError(f"{annotations}: not a COCO captions file (needs 'images' and 'annotations')")
    by_id = {image["id"]: image["file_name"] for image in data["images"]}
    captions: dict[int, list[str]] = defaultdict(list)
    for annotation in data["annotations"]:
        if annotation["image_id"] not in by_id:
            raise DatasetError(f"{annotations}: annotation {annotation.get('id')} names unknown image {annotation['image_id']}")
        captions[annotation["image_id"]].append(annotation["caption"].strip())
    images = [CaptionedImage(image_dir / by_id[i], tuple(captions[i])) for i in sorted(by_id) if captions[i]]
    return CaptionDataset({split: images})


# -- Karpathy splits ---------------------------------------------------------------------

def read_karpathy(dataset_json: str | Path, image_root: str | Path) -> CaptionDataset:
    """Karpathy's ``dataset_coco.json`` / ``dataset_flickr8k.json``; ``restval`` becomes ``rest``."""
    dataset_json = Path(dataset_json)
    return _karpathy(_load_json(dataset_json), dataset_json, Path(image_root))


def _karpathy(data, dataset_json: Path, image_root: Path) -> CaptionDataset:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"{dataset_json}: not a Karpathy split file (needs an 'images' list)")
    dataset = CaptionDataset()
    for image in data["images"]:
        split = "rest" if image["split"] == "restval" else image["split"]
        path = image_root / image.get("filepath", "") / image["filename"]
        captions = tuple(s["raw"].strip() for s in image["sentences"])
        dataset.splits.setdefault(split, []).append(CaptionedImage(path, captions))
    return dataset


def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from None


def load_dataset(source: str | Path, images: str | Path | None = None, split: str = "train") -> CaptionDataset:
    """Read any supported format: a Flickr folder, a COCO captions JSON or a Karpathy JSON.

    JSON formats need ``images``: the image folder (COCO) or the image root (Karpathy).
    """
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    if source.is_dir():
        return read_flickr(source)
    if images is None:
        raise DatasetError(f"{source}: a JSON caption file needs the image folder too (--images)")
    data = _load_json(source)
    if isinstance(data, dict) and "annotations" in data:
        return _coco(data, source, Path(images), split)
    return _karpathy(data, source, Path(images))
