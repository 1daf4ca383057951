"""Label sets: what an encoder's classifier classes are called, and which words name them.

A label set is a JSON file in ``captioner/resources`` made by a script from WordNet
(``scripts/make_label_words.py`` for ``imagenet-1k``). Per class it holds the label,
the words that name the class nearest first (its own lemmas, then its hypernyms',
each with its WordNet distance and synset) and all its ancestor synsets; its lexicon
maps single words to the synset they name ("puppy" -> dog), so that any caption
vocabulary can be matched against what the classifier can confirm or rule out; its
nouns are the words for classes and hypernyms that are mostly used as nouns; its
people are the words that say a person is there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .errors import CaptionerError


@dataclass(frozen=True)
class ClassWord:
    """A word naming a class: ``distance`` 0 is the class's own, 1 its hypernym, ...;
    ``depth`` is its synset's distance below WordNet's root ("device" 6, "dog" 13)."""

    word: str
    distance: int
    synset: str
    depth: int


@dataclass(frozen=True)
class LabelSet:
    """The classes of one classifier and the words for them."""

    name: str
    wnids: tuple[str, ...]
    labels: tuple[str, ...]
    heads: tuple[str | None, ...]  # per class, the head of a compound label naming a hypernym ("mask")
    words: tuple[tuple[ClassWord, ...], ...]  # per class, nearest first
    ancestors: tuple[tuple[str, ...], ...]  # per class, its own synset included
    lexicon: dict[str, str]  # word -> synset it names
    nouns: frozenset[str]  # words for classes and hypernyms used mostly as nouns
    people: frozenset[str] = frozenset()  # words that say a person is there ("skier", "crowd", "she")

    def __len__(self) -> int:
        return len(self.wnids)

    @classmethod
    def from_json(cls, data: dict) -> LabelSet:
        classes = data["classes"]
        return cls(
            name=data["name"],
            wnids=tuple(c["wnid"] for c in classes),
            labels=tuple(c["label"] for c in classes),
            heads=tuple(c["head"] for c in classes),
            words=tuple(tuple(ClassWord(*entry) for entry in c["words"]) for c in classes),
            ancestors=tuple(tuple(c["ancestors"]) for c in classes),
            lexicon=dict(data["lexicon"]),
            nouns=frozenset(data["nouns"]),
            people=frozenset(data.get("people", ())),
        )

    def classes_under(self) -> dict[str, list[int]]:
        """synset -> indices of the classes it covers (itself or an ancestor of them)."""
        covered: dict[str, list[int]] = {}
        for index, ancestors in enumerate(self.ancestors):
            for synset in ancestors:
                covered.setdefault(synset, []).append(index)
        return covered

    def synset_named_by(self, word: str) -> str | None:
        """The synset a vocabulary word names, singular or plural ("dogs" -> dog), or None."""
        for candidate in (word, *singular_forms(word)):
            if candidate in self.lexicon:
                return self.lexicon[candidate]
        return None


    def names_people(self, word: str) -> bool:
        """Whether a word, singular or plural, says a person is there ("skiers": yes, "skis": no)."""
        return any(candidate in self.people for candidate in (word, *singular_forms(word)))

    def is_noun(self, word: str) -> bool:
        """Whether a word, singular or plural, is one of the label set's nouns ("fences": yes, "rides": no)."""
        return any(candidate in self.nouns for candidate in (word, *singular_forms(word)))


def singular_forms(word: str) -> list[str]:
    """Regular singular forms a plural may come from (irregular ones are in the lexicon)."""
    forms = []
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    return forms


@cache
def load_label_set(name: str) -> LabelSet:
    """The label set ``name`` shipped in ``captioner/resources`` (read once)."""
    try:
        text = resources.files("captioner.resources").joinpath(f"{name}.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaptionerError(f"unknown label set {name!r} (no captioner/resources/{name}.json)") from None
    return LabelSet.from_json(json.loads(text))
