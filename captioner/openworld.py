"""Open-world scores: do captions name the object that labelled photos show?

A labels file has one JSON object per line: ``{"image": "n01818515.jpg", "label":
"macaw", "names": ["bird", "macaw", "parrot"]}``; ``names`` are the words that count
as naming the object (``../shared/data/imagenet-sample`` is such a set). Scores:

* named: the share of captions with one of the image's names as whole words,
  singular or plural; for all photos, dog photos ("dog" among the names) and the rest;
* placed: of the named, the share where the name sits where a noun goes: the word
  before it comes before common nouns, and the word after it (or the end) follows
  them, at least ``MIN_SLOT_COUNT`` times in a reference caption corpus;
* "dog" said for photos that are not of a dog (the shipped model's favourite error);
* distinct captions, and the most common three-word opening with its share.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import CaptionerError

MIN_SLOT_COUNT = 20
COMMON_NOUNS = 40  # how many of the corpus' most frequent nouns define the noun slots
END = "</s>"


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: str
    names: tuple[str, ...]

    @property
    def is_dog(self) -> bool:
        return "dog" in self.names


def read_labels(labels_file: str | Path, images: str | Path | None = None) -> list[LabelledImage]:
    """Labelled photos from a JSON-lines file; images are found in ``images`` (default: ``images/`` beside it)."""
    labels_path = Path(labels_file)
    folder = Path(images) if images is not None else labels_path.parent / "images"
    labelled = []
    try:
        lines = labels_path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise CaptionerError(f"{labels_path}: cannot read ({error.strerror or error})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            labelled.append(LabelledImage(folder / row["image"], str(row["label"]), tuple(row["names"])))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise CaptionerError(f"{labels_path}:{number}: not a labels line ({error})") from None
    return labelled


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def find_name(caption_words: list[str], name: str) -> tuple[int, int] | None:
    """Where ``name`` (or its plural) stands in the caption, as a word span."""
    name_words = words(name)
    if not name_words:
        return None
    for form in (name_words, [*name_words[:-1], name_words[-1] + "s"], [*name_words[:-1], name_words[-1] + "es"]):
        for i in range(len(caption_words) - len(form) + 1):
            if caption_words[i : i + len(form)] == form:
                return i, i + len(form)
    return None


@dataclass(frozen=True)
class NounSlots:
    """Words that come before and after common nouns in a caption corpus."""

    before: frozenset[str]
    after: frozenset[str]

    @classmethod
    def learn(cls, captions: Iterable[str], is_noun) -> NounSlots:
        """From reference captions, with ``is_noun(word)`` telling nouns (e.g. ``LabelSet.is_noun``)."""
        tokenized = [words(c) for c in captions]
        frequency = Counter(w for c in tokenized for w in c if is_noun(w))
        common = {w for w, _ in frequency.most_common(COMMON_NOUNS)}
        before: Counter[str] = Counter()
        after: Counter[str] = Counter()
        for caption in tokenized:
            padded = [*caption, END]
            for i, word in enumerate(caption):
                if word in common:
                    if i > 0:
                        before[padded[i - 1]] += 1
                    after[padded[i + 1]] += 1
        keep = lambda counts: frozenset(w for w, n in counts.items() if n >= MIN_SLOT_COUNT)  # noqa: E731
        return cls(keep(before), keep(after))

    def holds(self, caption_words: list[str], span: tuple[int, int]) -> bool:
        i, j = span
        following = caption_words[j] if j < len(caption_words) else END
        return i > 0 and caption_words[i - 1] in self.before and following in self.after


@dataclass
class OpenWorldScores:
    images: int = 0
    named: int = 0
    dogs: int = 0
    dogs_named: int = 0
    placed: int | None = None
    dog_said: int = 0
    distinct: int = 0
    opening: tuple[str, int] = ("", 0)

    def table(self) -> str:
        others = self.images - self.dogs
        lines = [
            f"named          {self.named}/{self.images} = {self.named / max(1, self.images):.3f}"
            f" (dogs {self.dogs_named}/{self.dogs}, others {self.named - self.dogs_named}/{others})",
            "placed         " + (f"{self.placed}/{self.named} = {self.placed / max(1, self.named):.3f}"
                                 if self.placed is not None else "not measured (needs --slots-from)"),
            f"'dog' said     {self.dog_said} of {others} photos without a dog = {self.dog_said / max(1, others):.3f}",
            f"distinct       {self.distinct}/{self.images}",
            f"top opening    '{self.opening[0]}' {self.opening[1]}/{self.images} = {self.opening[1] / max(1, self.images):.3f}",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "images": self.images, "named": self.named, "named_share": self.named / max(1, self.images),
            "dogs": self.dogs, "dogs_named": self.dogs_named, "placed": self.placed,
            "placed_share": None if self.placed is None else self.placed / max(1, self.named),
            "dog_said_without_dog": self.dog_said, "distinct": self.distinct,
            "top_opening": self.opening[0], "top_opening_count": self.opening[1],
        }


def score_open_world(images: list[LabelledImage], captions: list[str], slots: NounSlots | None = None) -> OpenWorldScores:
    """Scores of ``captions`` (one per image, in order)."""
    scores = OpenWorldScores(images=len(images), placed=0 if slots is not None else None)
    for image, caption in zip(images, captions):
        caption_words = words(caption)
        span = next((s for name in image.names if (s := find_name(caption_words, name))), None)
        scores.dogs += image.is_dog
        if span is not None:
            scores.named += 1
            scores.dogs_named += image.is_dog
            if slots is not None and slots.holds(caption_words, span):
                scores.placed += 1  # type: ignore[operator]
        if not image.is_dog and {"dog", "dogs"} & set(caption_words):
            scores.dog_said += 1
    scores.distinct = len(set(captions))
    openings = Counter(" ".join(words(c)[:3]) for c in captions)
    scores.opening = openings.most_common(1)[0] if openings else ("", 0)
    return scores
