"""A Flickr8k-style folder for sequence-level knowledge distillation (Kim & Rush 2016): every photo's
human captions, and for the training photos also the teacher's captions.

    python scripts/make_distillation_data.py ../shared/data/flickr8k TEACHER.jsonl OUT [--teacher-captions 2]

TEACHER.jsonl is ``captioner caption --format jsonl`` output of the teacher (``flickr8k-ensemble``) on
the training photos, with ``--n-best``; its best ``--teacher-captions`` distinct captions per photo are
added. The images and split lists are linked, not copied.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from captioner.data import load_dataset


def teacher_captions(path: Path, per_photo: int) -> dict[str, list[str]]:
    """Photo file name -> its best ``per_photo`` distinct teacher captions (rows with an error are skipped)."""
    captions = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "error" in row:
            continue
        distinct = list(dict.fromkeys(candidate["caption"] for candidate in row["nbest"]))
        captions[Path(row["image"]).name] = distinct[:per_photo]
    return captions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("flickr", type=Path)
    parser.add_argument("teacher", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--teacher-captions", type=int, default=2)
    args = parser.parse_args()
    dataset = load_dataset(args.flickr)
    taught = teacher_captions(args.teacher, args.teacher_captions)
    training = {image.name for name in ("train", "rest") for image in dataset.splits.get(name, [])}
    args.output.mkdir(parents=True, exist_ok=True)
    for link, target in (("images", dataset.splits["train"][0].path.parent), ("splits", args.flickr / "splits")):
        if not (args.output / link).exists():
            (args.output / link).symlink_to(target.resolve())
    rows = added = 0
    with (args.output / "captions.txt").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "caption"])
        for image in (image for split in dataset.splits.values() for image in split):
            extra = taught.get(image.name, []) if image.name in training else []
            for caption in (*image.captions, *extra):
                writer.writerow([image.name, caption])
                rows += 1
            added += len(extra)
    missing = len(training - set(taught))
    print(f"wrote {rows} captions ({added} from the teacher) to {args.output / 'captions.txt'}"
          + (f" (no teacher caption for {missing} training photos)" if missing else ""))


if __name__ == "__main__":
    main()
