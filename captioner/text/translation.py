"""``translate-rnn``: many-to-many, a GRU encoder-decoder with Luong attention over subwords.

The encoder is a bidirectional GRU over the English subwords; the decoder is a GRU
whose state attends (``general`` score) over the encoder states at each step. It is
a :class:`~captioner.decoder.StepDecoder`, so translations are written by the same
batched beam search as captions. One embedding table serves the source, the target
and (tied) the output layer: the subword vocabulary is shared by both languages,
which lets the model copy names and words Apertium leaves untranslated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..decoder import DecoderStep, MeanOfDecoders, State, StepDecoder
from ..decoder_weights import decoder_weights_wanted
from ..decoding import DecodingOptions, beam_search
from ..packed_layers import PackedLinear, packed_copy
from ..weights_hash import weights_fingerprint
from .batching import length_batches, pad
from .model_folder import TextModel
from .tokenizer import Encoded

KIND = "translate-rnn"
MAX_PIECE_WORDS = 60
"""Longer sentences are translated in pieces of this many words (the training sentences are shorter)."""
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class TranslatorConfig:
    vocab_size: int
    embed_dim: int = 256
    encoder_dim: int = 192  # per direction
    decoder_dim: int = 384
    dropout: float = 0.2


class SourceStates(NamedTuple):
    """The encoder's view of a batch of sentences: what the decoder starts from and attends over."""

    memory: torch.Tensor  # (B, S, 2*encoder_dim)
    mask: torch.Tensor  # (B, S) True on real subwords
    final: torch.Tensor  # (B, 2*encoder_dim) last states of both directions


class TranslationDecoder(StepDecoder):
    """GRU decoder with Luong ``general`` attention; the output layer is tied to the embedding."""

    image_state = ("memory", "keys", "mask")

    def __init__(self, config: TranslatorConfig) -> None:
        super().__init__()
        memory_dim = 2 * config.encoder_dim
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(config.dropout)
        self.init_hidden = nn.Linear(memory_dim, config.decoder_dim)
        self.rnn = nn.GRU(config.embed_dim, config.decoder_dim, batch_first=True)
        self.keys = nn.Linear(memory_dim, config.decoder_dim, bias=False)
        self.combine = nn.Linear(config.decoder_dim + memory_dim, config.embed_dim)
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.packed_output: PackedLinear | None = None  # set in a packed copy only (packed_for_cpu)

    def init_state(self, source: SourceStates) -> State:
        return {
            "h": torch.tanh(self.init_hidden(source.final)),  # (B, D)
            "memory": source.memory,
            "keys": self.keys(source.memory),  # (B, S, D)
            "mask": source.mask,
        }

    def _attend(self, hidden: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(R, T, V)`` and attention ``(R, T, S)`` for decoder states ``(R, T, D)``."""
        scores = torch.bmm(hidden, state["keys"].transpose(1, 2))  # (R, T, S)
        scores = scores.masked_fill(~state["mask"].unsqueeze(1), float("-inf"))
        attention = scores.softmax(dim=2)
        context = torch.bmm(attention, state["memory"])  # (R, T, 2E)
        combined = self.dropout(torch.tanh(self.combine(torch.cat([hidden, context], dim=2))))  # (R, T, E)
        return self._output(combined), attention

    def _output(self, combined: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., V)``: the output layer, tied to the embedding."""
        if self.packed_output is not None:
            return self.packed_output(combined)
        return F.linear(combined, self.embedding.weight, self.output_bias)

    def packed_for_cpu(self) -> TranslationDecoder:
        """A copy for writing translations on a CPU: :func:`~captioner.packed_layers.packed_copy`, with the
        tied output layer's product packed too (the same translations, 5-10% faster; docs/performance.md).
        Only for inference, and only while this decoder's weights stay as they are."""
        copied = packed_copy(self)
        copied.packed_output = PackedLinear(self.embedding.weight, self.output_bias)
        return copied

    def step(self, tokens: torch.Tensor, state: State) -> DecoderStep:
        embedded = self.embedding(tokens).unsqueeze(1)  # (R, 1, E)
        output, hidden = self.rnn(embedded, state["h"].unsqueeze(0).contiguous())  # (R, 1, D)
        logits, attention = self._attend(output, state)
        return DecoderStep(logits.squeeze(1), {**state, "h": hidden.squeeze(0)}, attention.squeeze(1))

    def forward(self, source: SourceStates, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``tokens (B, T)`` starting with ``<start>`` -> logits ``(B, T, V)``."""
        state = self.init_state(source)
        embedded = self.dropout(self.embedding(tokens))
        output, _ = self.rnn(embedded, state["h"].unsqueeze(0))  # (B, T, D)
        return self._attend(output, state)[0]


class Seq2SeqTranslator(nn.Module):
    """Bidirectional GRU encoder + :class:`TranslationDecoder`, sharing the decoder's embedding."""

    def __init__(self, config: TranslatorConfig) -> None:
        super().__init__()
        self.config = config
        self.decoder = TranslationDecoder(config)
        self.encoder = nn.GRU(config.embed_dim, config.encoder_dim, batch_first=True, bidirectional=True)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> SourceStates:
        """``ids (B, S)`` right-padded with 0, ``lengths (B,)`` >= 1."""
        embedded = self.decoder.dropout(self.decoder.embedding(ids))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, final = self.encoder(packed)  # final: (2, B, E)
        memory, _ = pad_packed_sequence(states, batch_first=True, total_length=ids.size(1))
        mask = torch.arange(ids.size(1), device=ids.device).unsqueeze(0) < lengths.to(ids.device).unsqueeze(1)
        return SourceStates(memory, mask, torch.cat([final[0], final[1]], dim=1))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(ids, lengths), target_in)


@dataclass(frozen=True)
class Translation:
    """One translated text, with word-level attention (target words x source words)."""

    text: str
    source_words: list[str]
    target_words: list[str]
    attention: list[list[float]]  # (target words, source words); each row sums to 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source_words, "target": self.target_words,
            "weights": [[round(w, 4) for w in row] for row in self.attention],
        }


def split_for_translation(text: str) -> list[str]:
    """Sentences of ``text``, long ones cut into pieces of at most :data:`MAX_PIECE_WORDS` words."""
    pieces: list[str] = []
    for sentence in SENTENCE_END.split(" ".join(text.split())):
        words = sentence.split()
        pieces.extend(" ".join(words[i : i + MAX_PIECE_WORDS]) for i in range(0, len(words), MAX_PIECE_WORDS))
    return pieces


class TextTranslator(TextModel):
    """A trained :class:`Seq2SeqTranslator` with its tokenizer and languages."""

    kind = KIND
    network = Seq2SeqTranslator
    config_type = TranslatorConfig
    model: Seq2SeqTranslator
    _packed: tuple[tuple, TranslationDecoder] | None = None  # the inference decoder and the weights it is of

    @property
    def target_language(self) -> str:
        return str(self.metadata.get("target", "?"))

    def inference_decoder(self) -> StepDecoder:
        """The decoder as translations are written: on a CPU where ``CAPTIONER_DECODER_WEIGHTS`` is ``packed``
        (the default) its packed copy (:meth:`TranslationDecoder.packed_for_cpu`, built when first needed and
        rebuilt when the weights change); otherwise the decoder itself."""
        decoder = self.model.decoder
        if decoder.training or decoder_weights_wanted(self.device) != "packed":
            return decoder
        key = weights_fingerprint(decoder.parameters())
        if self._packed is None or self._packed[0] != key:
            self._packed = (key, decoder.packed_for_cpu())
        return self._packed[1]

    @torch.inference_mode()
    def translate(self, texts: Sequence[str], beam_size: int = 4,
                  ensemble_with: Sequence[TextTranslator] = ()) -> list[Translation]:
        """Translate each text (sentence by sentence), batched by length, with beam search.

        With ``ensemble_with``, translators of the same subwords join in: each step of the
        search follows the mean of all their log-probabilities (an ensemble), and the
        translations come without attention.
        """
        for other in ensemble_with:
            if other.tokenizer.to_str() != self.tokenizer.to_str():
                raise ValueError("ensemble_with: every translator must share this one's subwords "
                                 "(train it with --tokenizer-from)")
        pieces: list[str] = []
        owner: list[int] = []
        for index, text in enumerate(texts):
            for piece in split_for_translation(text):
                pieces.append(piece)
                owner.append(index)
        parts: list[list[Translation]] = [[] for _ in texts]
        translations = self._translate_pieces(pieces, beam_size, [self, *ensemble_with])
        for index, piece, translation in zip(owner, pieces, translations):
            parts[index].append(_ending_as(piece, translation))
        return [_join(p) for p in parts]

    def _translate_pieces(self, pieces: list[str], beam_size: int, members: list[TextTranslator]) -> list[Translation]:
        encoded = self.tokenizer.encode(pieces)
        decoders = [member.inference_decoder() for member in members]
        decoder = decoders[0] if len(members) == 1 else MeanOfDecoders(decoders)
        results: list[Translation | None] = [None] * len(pieces)
        for batch in length_batches([len(e.ids) for e in encoded], max_tokens=8_192, max_rows=256):
            ids, lengths = pad([encoded[i].ids for i in batch])
            options = DecodingOptions(beam_size=beam_size, max_length=int(1.5 * ids.size(1)) + 10, n_best=1)
            sources = [m.model.encode(ids.to(m.device), lengths) for m in members]
            best = beam_search(
                decoder, sources[0] if len(members) == 1 else sources, options,
                start_id=self.tokenizer.start_id, end_id=self.tokenizer.end_id,
                banned_ids=(self.tokenizer.pad_id, self.tokenizer.start_id),
            )
            for index, hypotheses in zip(batch, best):
                results[index] = self._word_level(encoded[index], hypotheses[0].token_ids, hypotheses[0].attention)
        return [r for r in results if r is not None]

    def _word_level(self, source: Encoded, token_ids: list[int], attention: torch.Tensor | None) -> Translation:
        """The translation's text and its attention summed over source words, averaged over target words."""
        text = self.tokenizer.decode(token_ids)
        target = self.tokenizer.words_of(token_ids)
        if attention is None or not token_ids:
            return Translation(text, source.words, target.words, [])
        grid = attention[: len(token_ids), : len(source.ids)].float()  # (T, S): the <end> step dropped
        by_source = torch.zeros(grid.size(0), len(source.words)).index_add_(1, torch.tensor(source.word_index), grid)
        rows = torch.zeros(len(target.words), len(source.words)).index_add_(0, torch.tensor(target.word_index), by_source)
        counts = torch.bincount(torch.tensor(target.word_index), minlength=len(target.words)).clamp(min=1)
        return Translation(text, source.words, target.words, (rows / counts.unsqueeze(1)).tolist())


def _ending_as(source: str, translation: Translation) -> Translation:
    """``translation`` without the full stop a model adds where ``source`` ends without one (a caption):
    in Multi30k's validation set 46 of the 48 French and 47 of the 48 German translations of sentences
    without one have none (the test sets vary: the model cards count them), and a caption stays a caption."""
    text, words = translation.text, translation.target_words
    if source.rstrip().endswith((".", "!", "?")) or not text.endswith(".") or text.endswith("..") or not words:
        return translation
    last = words[-1][:-1]
    if last:
        return replace(translation, text=text[:-1], target_words=[*words[:-1], last])
    return replace(translation, text=text[:-1].rstrip(), target_words=words[:-1], attention=translation.attention[:-1])


def _join(parts: list[Translation]) -> Translation:
    """One translation from the translations of a text's pieces (attention kept block by block)."""
    if len(parts) == 1:
        return parts[0]
    source = [w for p in parts for w in p.source_words]
    target = [w for p in parts for w in p.target_words]
    grid: list[list[float]] = []
    offset = 0
    for p in parts:
        for row in p.attention:
            grid.append([0.0] * offset + row + [0.0] * (len(source) - offset - len(row)))
        offset += len(p.source_words)
    if len(grid) != len(target):
        grid = []
    return Translation(" ".join(p.text for p in parts), source, target, grid)
