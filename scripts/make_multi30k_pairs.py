"""Make English -> LANG sentence pairs from Multi30k's human translations (Elliott et al. 2016).

    python scripts/make_multi30k_pairs.py --multi30k PATH/TO/multi30k-dataset --out runs/multi30k de fr

PATH/TO/multi30k-dataset is a checkout of https://github.com/multi30k/dataset; the
files read are ``data/task1/raw/SPLIT.{en,LANG}.gz``. Every split is written as
``out/SPLIT.LANG.tsv`` (``source<TAB>target``): ``train`` to train on, ``val`` to
choose with, the ``test_*`` sets only to report.

Half of the training pairs (fixed by a hash of the English) get their English in the
captioner's own style, first letter lower-cased and the final full stop dropped
("a dog runs through the snow"), so the model translates captions as written and
still writes proper German or French sentences. The other splits are left as people
wrote them.
"""

from __future__ import annotations

import argparse
import gzip
import zlib
from pathlib import Path

from captioner.atomic import atomic_write_text
from captioner.text.corpora import CorpusError

SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr")


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise CorpusError(f"{path}: missing (expected a checkout of https://github.com/multi30k/dataset)")
    with gzip.open(path, "rt", encoding="utf-8") as file:
        return [" ".join(line.split()) for line in file]


def caption_style(english: str) -> str:
    """``"A dog runs through the snow."`` -> ``"a dog runs through the snow"``: as captions are written."""
    text = english[:1].lower() + english[1:]
    return text[:-1].rstrip() if text.endswith(".") else text


def pairs_of(multi30k: Path, split: str, language: str) -> list[tuple[str, str]]:
    raw = multi30k / "data" / "task1" / "raw"
    english, translated = read_lines(raw / f"{split}.en.gz"), read_lines(raw / f"{split}.{language}.gz")
    if len(english) != len(translated):
        raise CorpusError(f"{raw}/{split}: {len(english)} English lines but {len(translated)} {language} lines")
    pairs = list(zip(english, translated))
    if split == "train":
        pairs = [(caption_style(en) if zlib.crc32(en.encode()) % 2 else en, target) for en, target in pairs]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("languages", nargs="+", help="Target languages: de, fr (and cs for the 2016 and 2018 sets)")
    parser.add_argument("--multi30k", type=Path, required=True, help="A checkout of github.com/multi30k/dataset")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    for language in args.languages:
        for split in SPLITS:
            if not (args.multi30k / "data" / "task1" / "raw" / f"{split}.{language}.gz").is_file():
                continue  # Czech has no 2017 sets
            pairs = pairs_of(args.multi30k, split, language)
            atomic_write_text(args.out / f"{split}.{language}.tsv", "".join(f"{s}\t{t}\n" for s, t in pairs))
            print(f"{split}.{language}.tsv: {len(pairs)} pairs")


if __name__ == "__main__":
    main()
