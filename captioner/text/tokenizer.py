"""Byte-level BPE subwords (Hugging Face ``tokenizers``): every string encodes, nothing is ``<unk>``.

Words a model never saw are spelled out in smaller pieces (down to single bytes),
so a translator can copy a name through and a classifier still reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from ..atomic import atomic_write_text

PAD, START, END = "<pad>", "<start>", "<end>"
SPECIAL_TOKENS = (PAD, START, END)  # ids 0, 1, 2
WORD_START = "\u0120"  # how byte-level BPE writes the space before a word ("Ġ")


@dataclass(frozen=True)
class Encoded:
    """One text as subword ids, with the word each id belongs to and the words themselves."""

    ids: list[int]
    word_index: list[int]  # (T,) index into ``words`` of each id
    words: list[str]  # the text's words and punctuation marks, as written


class SubwordTokenizer:
    """A trained byte-level BPE tokenizer; ``<pad>``, ``<start>``, ``<end>`` are ids 0, 1, 2."""

    pad_id, start_id, end_id = 0, 1, 2

    def __init__(self, tokenizer: Tokenizer) -> None:
        for expected, token in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(token) != expected:
                raise ValueError(f"tokenizer: {token} must have id {expected}")
        self._tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> SubwordTokenizer:
        """Learn ``vocab_size`` subwords (specials and the 256 bytes included) from ``texts``."""
        tokenizer = Tokenizer(models.BPE())
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=True)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer)
        return cls(tokenizer)

    @classmethod
    def from_file(cls, path: Path) -> SubwordTokenizer:
        return cls(Tokenizer.from_file(str(path)))

    def to_str(self) -> str:
        """The tokenizer as JSON text (what :meth:`save` writes)."""
        return self._tokenizer.to_str()

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.to_str())

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Subword ids of each text (no specials added), with their words."""
        encoded = []
        for text, encoding in zip(texts, self._tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            spans: dict[int, tuple[int, int]] = {}
            word_ids = cast(list[int], encoding.word_ids)  # no specials were added: every subword has a word
            for word, (start, end) in zip(word_ids, encoding.offsets):
                first, last = spans.get(word, (start, end))
                spans[word] = (min(first, start), max(last, end))
            order = sorted(spans)
            position = {word: i for i, word in enumerate(order)}
            encoded.append(Encoded(
                ids=list(encoding.ids),
                word_index=[position[word] for word in word_ids],
                words=[text[slice(*spans[word])] for word in order],
            ))
        return encoded

    def words_of(self, ids: Sequence[int]) -> Encoded:
        """Generated ids grouped into words: a subword that starts with a space starts a word."""
        word_index: list[int] = []
        groups: list[list[int]] = []
        for token_id in ids:
            token = self._tokenizer.id_to_token(token_id) or ""
            if not groups or token.startswith(WORD_START):
                groups.append([])
            groups[-1].append(token_id)
            word_index.append(len(groups) - 1)
        return Encoded(list(ids), word_index, [self.decode(group) for group in groups])

    def decode(self, ids: Sequence[int]) -> str:
        """Text of subword ids (specials dropped)."""
        return self._tokenizer.decode(list(ids), skip_special_tokens=True).strip()
