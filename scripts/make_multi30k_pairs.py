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

With ``--copy-names`` as well, ``train-names.LANG.tsv`` is written: those pairs plus
pairs that teach the model to copy words it has never seen, whatever their letters.
Made-up words (:func:`made_up_word`: "zorblax", "mireth") replace the subject person
("A man" and "Un homme" become "Zorblax") and, in separate pairs, an everyday object,
on both sides. Without them a name comes out cut or changed ("a man named Zorblax"
-> "Un homme nommé Zor", "Oksana" -> "Oana").
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


SUBJECTS = {  # a sentence's opening person and how Multi30k's translators wrote it
    "de": {"man": "Ein Mann", "woman": "Eine Frau", "boy": "Ein Junge", "girl": "Ein Mädchen", "person": "Eine Person"},
    "fr": {"man": "Un homme", "woman": "Une femme", "boy": "Un garçon", "girl": "Une fille", "person": "Une personne"},
}
ONSETS = ("b", "br", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p", "pl", "qu", "r", "s",
          "sh", "st", "t", "th", "tr", "v", "w", "z")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou", "y")
CODAS = ("", "", "", "b", "k", "l", "m", "n", "r", "s", "th", "x")


def made_up_word(rng: random.Random) -> str:
    """A pronounceable word of two or three syllables that is in no dictionary, as a rule ("zorblax")."""
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.choice((2, 2, 3))))


def made_up_words(count: int, known: set[str], seed: int = 0) -> list[str]:
    """``count`` different :func:`made_up_word` words, none of them in ``known``."""
    rng = random.Random(seed)
    words: dict[str, None] = {}  # a set that keeps its order
    while len(words) < count:
        word = made_up_word(rng)
        if word not in known:
            words[word] = None
    return list(words)


def copy_noun_pairs(pairs: list[tuple[str, str]], language: str, copies: int = 2, seed: int = 0,
                    words: list[str] | None = None) -> list[tuple[str, str]]:
    """Pairs whose one anchor noun (once on each side) is replaced on both sides by an ImageNet class word
    (or one of ``words``), ``copies`` times with different words."""
    rng = random.Random(seed)
    if words is None:
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


def name_pairs(pairs: list[tuple[str, str]], language: str, names: list[str], seed: int = 0) -> list[tuple[str, str]]:
    """Pairs that open with a person ("A man ...", "Un homme ...") with that person replaced on both sides
    by one of ``names``, capitalised ("Zorblax ...")."""
    rng = random.Random(seed)
    made = []
    for english, target in pairs:
        for noun, translated in SUBJECTS[language].items():
            opening = re.match(rf"an? {noun}\b", english, flags=re.IGNORECASE)
            if opening and target.startswith(translated + " "):
                name = rng.choice(names).capitalize()
                made.append((name + english[opening.end():], name + target[len(translated):]))
                break
    return made


def made_up_pairs(pairs: list[tuple[str, str]], language: str, seed: int = 0) -> list[tuple[str, str]]:
    """Made-up names for the opening person (:func:`name_pairs`) and made-up words for an everyday object
    (:func:`copy_noun_pairs`), one pair per pair that has either; no made-up word is an English word of ``pairs``."""
    known = {word.lower() for english, _ in pairs for word in re.findall(r"\w+", english)}
    words = made_up_words(5_000, known, seed)
    return name_pairs(pairs, language, words, seed) + copy_noun_pairs(pairs, language, copies=1, seed=seed + 1, words=words)


def write_pairs(path: Path, pairs: list[tuple[str, str]]) -> None:
    atomic_write_text(path, "".join(f"{source}\t{target}\n" for source, target in pairs))
    print(f"{path.name}: {len(pairs)} pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("languages", nargs="+", help="Target languages: de, fr (and cs for the 2016 and 2018 sets)")
    parser.add_argument("--multi30k", type=Path, required=True, help="A checkout of github.com/multi30k/dataset")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--copy-nouns", action="store_true",
                        help="Also write train-copy.LANG.tsv: the training pairs plus pairs that carry ImageNet class "
                             "words over (German and French)")
    parser.add_argument("--copy-names", action="store_true",
                        help="With --copy-nouns, also write train-names.LANG.tsv: those pairs plus pairs that carry "
                             "made-up names and words over")
    args = parser.parse_args()
    if args.copy_names and not args.copy_nouns:
        parser.error("--copy-names needs --copy-nouns")

    args.out.mkdir(parents=True, exist_ok=True)
    for language in args.languages:
        for split in SPLITS:
            if not (args.multi30k / "data" / "task1" / "raw" / f"{split}.{language}.gz").is_file():
                continue  # Czech has no 2017 sets
            pairs = pairs_of(args.multi30k, split, language)
            write_pairs(args.out / f"{split}.{language}.tsv", pairs)
            if split == "train" and args.copy_nouns and language in ANCHORS:
                copies = pairs + copy_noun_pairs(pairs, language)
                write_pairs(args.out / f"train-copy.{language}.tsv", copies)
                if args.copy_names:
                    write_pairs(args.out / f"train-names.{language}.tsv", copies + made_up_pairs(pairs, language))


if __name__ == "__main__":
    main()
