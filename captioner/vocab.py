"""Caption vocabulary and tokenisation.

Tokenisation: lowercase, then every maximal run of ASCII letters and digits is a
token; everything else (punctuation, apostrophes, hyphens) separates tokens.
"A dog's ball." -> ["a", "dog", "s", "ball"].
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Split a caption into lowercase word tokens."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Token list with the four specials first: ``<pad>=0 <start>=1 <end>=2 <unk>=3``."""

    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        if tuple(self.tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {', '.join(SPECIALS)}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")
        if len(self.tokens) == len(SPECIALS):
            raise ValueError("vocabulary has no words besides the special tokens")
        object.__setattr__(self, "_index", {token: i for i, token in enumerate(self.tokens)})

    pad_id = 0
    start_id = 1
    end_id = 2
    unk_id = 3

    def never_said(self, unk: bool = True) -> list[int]:
        """Tokens a generated caption never contains: ``<pad>``, ``<start>`` and, with ``unk``, ``<unk>``."""
        return [self.pad_id, self.start_id] + ([self.unk_id] if unk else [])

    @classmethod
    def from_words(cls, words: Iterable[str]) -> Vocabulary:
        return cls(SPECIALS + tuple(words))

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 5) -> Vocabulary:
        """Words seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        counts = Counter(token for caption in captions for token in tokenize(caption))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls.from_words(words)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index  # type: ignore[attr-defined]

    def id(self, token: str) -> int:
        return self._index.get(token, self.unk_id)  # type: ignore[attr-defined]

    def encode(self, caption: str, max_length: int | None = None) -> list[int]:
        """``<start> w1 ... wn <end>`` ids, keeping at most ``max_length`` words."""
        words = tokenize(caption)[:max_length]
        return [self.start_id, *(self.id(w) for w in words), self.end_id]

    def decode(self, ids: Sequence[int], tokens: Sequence[str] | None = None) -> list[str]:
        """Words for ``ids``, stopping at ``<end>`` and dropping other specials.

        ``tokens`` is this vocabulary extended with added tokens (open-world words).
        """
        tokens = self.tokens if tokens is None else tokens
        words = []
        for i in ids:
            if i == self.end_id:
                break
            if i >= len(SPECIALS):
                words.append(tokens[i])
        return words

    def to_json(self) -> dict[str, list[str]]:
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict) -> Vocabulary:
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise ValueError('vocabulary JSON must be an object with a "tokens" list')
        if not all(isinstance(t, str) for t in data["tokens"]):
            raise ValueError("vocabulary tokens must all be strings")
        return cls(tuple(data["tokens"]))
