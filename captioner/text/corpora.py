"""Reading the text corpora the text models train on, and their fixed splits."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import CaptionerError

HUTTO_FILES = {
    "tweets": "tweets_GroundTruth.txt",
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "product": "amazonReviewSnippets_GroundTruth.txt",
    "editorial": "nytEditorialSnippets_GroundTruth.txt",
}
NEUTRAL_BAND = 0.5
"""A mean human rating (-4..4) within this distance of 0 counts as neutral."""


class CorpusError(CaptionerError):
    """A corpus file is missing or not in the expected format."""


@dataclass(frozen=True)
class RatedSentence:
    """One Hutto and Gilbert (2014) sentence with its mean human rating (-4 to 4)."""

    domain: str
    id: str
    rating: float
    text: str

    @property
    def label(self) -> str:
        return label_for_rating(self.rating)

    @property
    def split(self) -> str:
        """``train`` (80%), ``valid`` (10%) or ``test`` (10%), fixed by a hash of domain and id."""
        bucket = zlib.crc32(f"{self.domain}/{self.id}".encode()) % 10
        return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def label_for_rating(rating: float) -> str:
    if rating >= NEUTRAL_BAND:
        return "positive"
    if rating <= -NEUTRAL_BAND:
        return "negative"
    return "neutral"


def read_hutto(folder: Path) -> list[RatedSentence]:
    """Every sentence of the four ``*_GroundTruth.txt`` files (``id<TAB>rating<TAB>text``)."""
    sentences = []
    for domain, name in HUTTO_FILES.items():
        path = folder / name
        if not path.is_file():
            raise CorpusError(f"{path}: missing (expected the Hutto and Gilbert 2014 ground-truth files)")
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("\t", 2)
            try:
                sentences.append(RatedSentence(domain, parts[0].strip(), float(parts[1]), parts[2].strip()))
            except (IndexError, ValueError):
                raise CorpusError(f"{path}:{number}: expected id<TAB>rating<TAB>sentence") from None
    return sentences


@dataclass(frozen=True)
class Review:
    """One full-length review, its side and the split it belongs to."""

    id: str
    positive: bool
    rating: int  # the reviewer's stars, 1-10
    text: str
    split: str  # train, valid or test


IMDB_NAME = re.compile(r"(\d+)_(\d+)\.txt")


def read_imdb(folder: Path) -> list[Review]:
    """Maas et al. (2011) reviews laid out as ``SPLIT/{pos,neg}/ID_RATING.txt``, on one line each.

    ``test`` stays test (its films are not in the training half); every other folder
    (``train``, and ``val`` where a copy split it off) is split by ``crc32("pos/ID") % 10``:
    0 valid, else train.
    """
    reviews = []
    for path in sorted(folder.glob("*/*/*.txt")):
        match, side = IMDB_NAME.fullmatch(path.name), path.parent.name
        if match is None or side not in ("pos", "neg"):
            continue
        review_id = f"{side}/{match[1]}"
        split = "test" if path.parent.parent.name == "test" else \
            "valid" if zlib.crc32(review_id.encode()) % 10 == 0 else "train"
        text = " ".join(path.read_text(encoding="utf-8", errors="replace").replace("<br />", " ").split())
        reviews.append(Review(review_id, side == "pos", int(match[2]), text, split))
    if not reviews:
        raise CorpusError(f"{folder}: no SPLIT/pos/ID_RATING.txt or SPLIT/neg/ID_RATING.txt reviews")
    return reviews


def lower_cased(text: str) -> str:
    """A text as tokenised, lower-cased corpora write it: ``"Good, but dull."`` -> ``"good , but dull ."``."""
    return " ".join(re.sub(r'([.,!?;:()"])', r" \1 ", text.lower()).split())


def caption_style(text: str) -> str:
    """A sentence as the captioner writes captions: ``"A dog runs through the snow."`` -> ``"a dog runs through the snow"``."""
    text = text[:1].lower() + text[1:]
    return text[:-1].rstrip() if text.endswith(".") else text


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """Parallel sentences from a ``source<TAB>target`` file (as ``make_translation_pairs.py`` writes)."""
    if not path.is_file():
        raise CorpusError(f"{path}: missing")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        source, tab, target = line.partition("\t")
        if not tab or not source.strip() or not target.strip():
            raise CorpusError(f"{path}:{number}: expected source<TAB>target")
        pairs.append((source.strip(), target.strip()))
    return pairs
