"""Make the English -> LANG sentence pairs the translate-rnn models train on, by distilling Apertium.

    python scripts/make_translation_pairs.py --flickr8k ../shared/data/flickr8k \
        --hutto ../shared/data/sentiment-hutto2014 --out runs/translation-pairs es ca

English side, training: the Flickr8k training captions (human-written), the shipped
captioner's captions of the training photos (n-best 3, what users will mostly
translate), the Hutto and Gilbert sentences, and "a WORD" for every word the
open-world captioner may add for an ImageNet class. Validation: the shipped
captioner's best caption of each validation photo, and the human validation captions.
Each is translated with `apertium -u eng-LANG` (needs the Debian packages apertium
and the pair); Apertium is needed only here, never when the model runs.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from captioner import Captioner
from captioner.atomic import atomic_write_text
from captioner.data import read_flickr
from captioner.errors import PostProcessError
from captioner.labelset import load_label_set
from captioner.text.corpora import read_hutto
from captioner_plugins.translate import installed_pairs, run_apertium

CHUNK = 1_000
SECONDS_PER_LINE = 0.05  # Apertium does ~300 lines/s; a chunk that takes far longer has a line it chokes on


def apertium(mode: str, texts: list[str]) -> list[str]:
    """Translate one text per line, as the ``translate`` post-processor does.

    A chunk that times out or comes back with another number of lines is split in
    halves, down to the line Apertium chokes on, which gets an empty translation (and
    is left out of the pairs).
    """
    try:
        return run_apertium(mode, texts, timeout_s=10 + SECONDS_PER_LINE * len(texts))
    except (subprocess.TimeoutExpired, PostProcessError):  # too slow, or its lines out do not match the lines in
        if len(texts) == 1:
            print(f"apertium {mode} failed on: {texts[0][:100]!r}")
            return [""]
        half = len(texts) // 2
        return apertium(mode, texts[:half]) + apertium(mode, texts[half:])


def translate(language: str, texts: list[str]) -> list[str]:
    mode = installed_pairs()[("en", language)]
    return [line for start in range(0, len(texts), CHUNK) for line in apertium(mode, texts[start : start + CHUNK])]


def own_captions(captioner: Captioner, paths: list[Path], n_best: int) -> list[str]:
    results = captioner.caption(paths, batch_size=64, n_best=n_best)
    return [c.text for r in results if r.ok for c in r.candidates[:n_best]]


def unique(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(" ".join(t.split()) for t in texts if t.strip()))


def english_sides(flickr8k: Path, hutto: Path, out: Path) -> dict[str, list[str]]:
    """The English of each set, made once (captioning takes minutes) and kept in ``out/NAME.en.txt``."""
    names = ("train", "valid-captioner", "valid-human")
    if all((out / f"{name}.en.txt").is_file() for name in names):
        return {name: (out / f"{name}.en.txt").read_text(encoding="utf-8").splitlines() for name in names}
    flickr = read_flickr(flickr8k)
    captioner = Captioner.from_pretrained()
    train_photos, val_photos = flickr.split("train"), flickr.split("val")
    label_words = sorted({w.word for words in load_label_set("imagenet-1k").words for w in words})
    english = {
        "train": unique(
            [c for image in train_photos for c in image.captions]
            + own_captions(captioner, [image.path for image in train_photos], n_best=3)
            + [s.text for s in read_hutto(hutto)]
            + [f"a {word}" for word in label_words]
        ),
        "valid-captioner": own_captions(captioner, [image.path for image in val_photos], n_best=1),
        "valid-human": [" ".join(c.split()) for image in val_photos for c in image.captions],
    }
    for name, texts in english.items():
        atomic_write_text(out / f"{name}.en.txt", "\n".join(texts) + "\n")
    return english


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("languages", nargs="+", help="Target languages (ISO 639-1) with an Apertium pair from English")
    parser.add_argument("--flickr8k", type=Path, required=True)
    parser.add_argument("--hutto", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    english = english_sides(args.flickr8k, args.hutto, args.out)
    for language in args.languages:
        for name, texts in english.items():
            if (args.out / f"{name}.{language}.tsv").is_file():
                continue  # made by an earlier run (written atomically)
            translated = translate(language, texts)
            rows = [f"{s}\t{t}" for s, t in zip(texts, translated) if t]
            atomic_write_text(args.out / f"{name}.{language}.tsv", "\n".join(rows) + "\n")
            print(f"{name}.{language}.tsv: {len(rows)} pairs")


if __name__ == "__main__":
    main()
