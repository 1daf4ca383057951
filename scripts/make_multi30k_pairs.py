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

With ``--copy-nouns``, ``train-copy.LANG.tsv`` is written too: the training pairs
plus, for each training pair that names one of a few everyday objects once on each
side ("dog" and "Hund"), two copies with that noun replaced on both sides by an
ImageNet class word, written exactly as in English ("koala"; German would capitalise
it, but an identical word is what a subword model learns to copy). Multi30k never
names most of the objects that open-world guidance writes into captions; without
these pairs the model turns an unknown noun into a frequent one ("a koala sitting in
a tree" -> "Ein Mann sitzt in einem Baum."); with them it carries about half (German)
to two thirds (French) of such words over (docs/text-models.md).
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import zlib
from pathlib import Path

from captioner.atomic import atomic_write_text
from captioner.labelset import load_label_set
from captioner.text.corpora import CorpusError, caption_style

SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr")


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise CorpusError(f"{path}: missing (expected a checkout of https://github.com/multi30k/dataset)")
    with gzip.open(path, "rt", encoding="utf-8") as file:
        return [" ".join(line.split()) for line in file]


def pairs_of(multi30k: Path, split: str, language: str) -> list[tuple[str, str]]:
    raw = multi30k / "data" / "task1" / "raw"
    english, translated = read_lines(raw / f"{split}.en.gz"), read_lines(raw / f"{split}.{language}.gz")
    if len(english) != len(translated):
        raise CorpusError(f"{raw}/{split}: {len(english)} English lines but {len(translated)} {language} lines")
    pairs = list(zip(english, translated))
    if split == "train":
        pairs = [(caption_style(en) if zlib.crc32(en.encode()) % 2 else en, target) for en, target in pairs]
    return pairs


ANCHORS = {  # an everyday object and how Multi30k's translators wrote it
    "de": {"dog": "Hund", "ball": "Ball", "car": "Auto", "horse": "Pferd", "bike": "Fahrrad", "boat": "Boot",
           "guitar": "Gitarre", "cat": "Katze", "bird": "Vogel", "building": "Gebäude", "table": "Tisch"},
    "fr": {"dog": "chien", "ball": "ballon", "car": "voiture", "horse": "cheval", "bike": "vélo", "boat": "bateau",
           "guitar": "guitare", "cat": "chat", "bird": "oiseau", "building": "bâtiment", "table": "table"},
}


def copy_noun_pairs(pairs: list[tuple[str, str]], language: str, copies: int = 2, seed: int = 0) -> list[tuple[str, str]]:
    """Pairs whose one anchor noun (once on each side) is replaced on both sides by an ImageNet class word,
    ``copies`` times with different words."""
    rng = random.Random(seed)
    words = sorted({w.word for labels in load_label_set("imagenet-1k").words for w in labels if " " not in w.word})
    made = []
    for english, target in pairs:
        for noun, translated in ANCHORS[language].items():
            source_hits = re.findall(rf"\b{noun}\b", english, flags=re.IGNORECASE)
            target_hits = re.findall(rf"\b{translated}\b", target)
            if len(source_hits) == 1 and len(target_hits) == 1:
                for word in rng.sample(words, copies):
                    made.append((re.sub(rf"\b{noun}\b", word, english, flags=re.IGNORECASE),
                                 re.sub(rf"\b{translated}\b", word, target)))
                break
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("languages", nargs="+", help="Target languages: de, fr (and cs for the 2016 and 2018 sets)")
    parser.add_argument("--multi30k", type=Path, required=True, help="A checkout of github.com/multi30k/dataset")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--copy-nouns", action="store_true",
                        help="Also write train-copy.LANG.tsv: the training pairs plus pairs that carry ImageNet class "
                             "words over (German and French)")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    for language in args.languages:
        for split in SPLITS:
            if not (args.multi30k / "data" / "task1" / "raw" / f"{split}.{language}.gz").is_file():
                continue  # Czech has no 2017 sets
            pairs = pairs_of(args.multi30k, split, language)
            atomic_write_text(args.out / f"{split}.{language}.tsv", "".join(f"{s}\t{t}\n" for s, t in pairs))
            print(f"{split}.{language}.tsv: {len(pairs)} pairs")
            if split == "train" and args.copy_nouns and language in ANCHORS:
                pairs += copy_noun_pairs(pairs, language)
                atomic_write_text(args.out / f"train-copy.{language}.tsv", "".join(f"{s}\t{t}\n" for s, t in pairs))
                print(f"train-copy.{language}.tsv: {len(pairs)} pairs")


if __name__ == "__main__":
    main()
