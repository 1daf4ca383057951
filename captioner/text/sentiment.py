"""``sentiment-rnn``: many-to-one, a bidirectional GRU with attention pooling over subwords.

Each subword is read as its embedding plus its word's lexicon priors
(:mod:`.lexicon`). The pooled state gives three class logits (negative, neutral,
positive) and a score in [-1, 1] (the mean human rating / 4); the pooling weights,
summed per word, say which words carried the judgement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .batching import length_batches, pad
from .lexicon import FEATURES, word_features
from .model_folder import TextModel
from .review import ReviewConfig, ReviewHead, ReviewReading, split_sentences
from .tokenizer import SubwordTokenizer

KIND = "sentiment-rnn"
LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class SentimentConfig:
    vocab_size: int
    embed_dim: int = 128
    hidden_dim: int = 128
    dropout: float = 0.3
    lexicon_features: int = FEATURES  # per-word lexicon priors read beside the embedding (0: none)
    review_hidden: int = 0  # a review head of this size (0: none; every text is read whole, as one sentence)
    review_bag: int = 64  # the review head's subword embedding size
    review_words: int = 100  # with a review head, texts of more words are read as reviews, sentence by sentence
    review_band: float = 0.0  # a review is neutral when |compound| is below this (calibrated on reviews)


@dataclass(frozen=True)
class SentimentInput:
    """One text as the model reads it: subword ids, their words, and each subword's word features."""

    ids: list[int]
    word_index: list[int]
    words: list[str]
    features: list[list[float]]  # (T, lexicon_features)


class SentimentOutput(NamedTuple):
    logits: torch.Tensor  # (B, 3) over LABELS
    score: torch.Tensor  # (B,) in [-1, 1]
    weights: torch.Tensor  # (B, T) attention over subwords, 0 on padding


class SentimentRNN(nn.Module):
    """Embedding -> bidirectional GRU -> attention pooling -> label logits and a score."""

    def __init__(self, config: SentimentConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_dim
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = nn.GRU(config.embed_dim + config.lexicon_features, hidden, batch_first=True, bidirectional=True)
        self.attention = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.classifier = nn.Linear(2 * hidden, len(LABELS))
        self.regressor = nn.Linear(2 * hidden, 1)
        review = ReviewConfig(2 * hidden + len(LABELS) + 1, config.vocab_size, config.review_bag, config.review_hidden)
        self.review = ReviewHead(review) if config.review_hidden else None

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, features: torch.Tensor) -> SentimentOutput:
        """``ids (B, T)`` right-padded with 0, ``lengths (B,)`` >= 1, ``features (B, T, F)``."""
        pooled, weights = self.encode(ids, lengths, features)
        pooled = self.dropout(pooled)
        return SentimentOutput(self.classifier(pooled), torch.tanh(self.regressor(pooled)).squeeze(1), weights)

    def sentence_features(self, pooled: torch.Tensor) -> torch.Tensor:
        """What the review head reads of each sentence ``(B, 2H + 4)``: pooled state, class probabilities, score."""
        score = torch.tanh(self.regressor(pooled))
        return torch.cat([pooled, self.classifier(pooled).softmax(dim=1), score], dim=1)

    def encode(
        self, ids: torch.Tensor, lengths: torch.Tensor, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention-pooled state ``(B, 2H)`` and the attention ``(B, T)``."""
        embedded = torch.cat([self.dropout(self.embedding(ids)), features], dim=2)  # (B, T, E + F)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=ids.size(1))  # (B, T, 2H)
        mask = torch.arange(ids.size(1), device=ids.device).unsqueeze(0) < lengths.to(ids.device).unsqueeze(1)
        energy = self.attention(states).squeeze(2).masked_fill(~mask, float("-inf"))  # (B, T)
        weights = energy.softmax(dim=1)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1), weights  # (B, 2H), (B, T)


@dataclass(frozen=True)
class SentimentJudgement:
    """What ``sentiment-rnn`` says about one text."""

    label: str
    score: float  # in [-1, 1], like VADER's compound
    probabilities: dict[str, float]
    words: list[tuple[str, float]]  # each word with its share of the attention (summing to 1)

    def to_dict(self) -> dict[str, Any]:
        """The ``sentiment`` post-processor's fields (label, compound, per-class) plus ``words``."""
        return {
            "label": self.label,
            "compound": round(self.score, 4),
            **{label: round(p, 4) for label, p in self.probabilities.items()},
            "words": [[word, round(weight, 4)] for word, weight in self.words],
        }


class SentimentClassifier(TextModel):
    """A trained :class:`SentimentRNN` with its tokenizer; judges any number of texts of any length."""

    kind = KIND
    network = SentimentRNN
    config_type = SentimentConfig
    model: SentimentRNN

    @torch.inference_mode()
    def judge(self, texts: Sequence[str]) -> list[SentimentJudgement]:
        """One judgement per text, batched by length; an empty text is neutral. With a review head, a text
        of more than ``review_words`` words is judged as a review: sentence by sentence, then as a whole."""
        config = self.model.config
        long = [self.model.review is not None and len(t.split()) > config.review_words for t in texts]
        results = dict(zip([i for i, is_long in enumerate(long) if not is_long],
                           self._judge_sentences([t for t, is_long in zip(texts, long) if not is_long])))
        if any(long):
            results |= zip([i for i, is_long in enumerate(long) if is_long],
                           self._judge_reviews([t for t, is_long in zip(texts, long) if is_long]))
        return [results[i] for i in range(len(texts))]

    @torch.inference_mode()
    def review_readings(self, texts: Sequence[str], chunk: int = 256) -> list[ReviewReading]:
        """What the review head reads of each text, sentence by sentence (a text may have no sentence)."""
        readings = []
        for start in range(0, len(texts), chunk):
            readings += [self._review_reading(review) for review in self._read_reviews(texts[start : start + chunk])]
        return readings

    def _review_reading(self, sentences: list[_Reading]) -> ReviewReading:
        size = 2 * self.model.config.hidden_dim + len(LABELS) + 1
        features = torch.stack([r.features for r in sentences]) if sentences else torch.zeros(0, size)
        return ReviewReading(features, [r.ids for r in sentences])

    def _read(self, texts: Sequence[str]) -> list[_Reading | None]:
        """Each text's sentence features and per-word attention (``None`` for a text with no subword)."""
        inputs = read_inputs(self.tokenizer, texts, self.model.config.lexicon_features)
        readings: list[_Reading | None] = [None] * len(texts)
        readable = [i for i, item in enumerate(inputs) if item.ids]
        for positions in length_batches([len(inputs[i].ids) for i in readable]):
            batch = [inputs[readable[p]] for p in positions]
            pooled, weights = self.model.encode(*collate(batch, self.model.config.lexicon_features, self.device))
            features = self.model.sentence_features(pooled).cpu()
            per_word = _sum_per_word(weights.cpu(), batch)
            for row, position in enumerate(positions):
                item = batch[row]
                readings[readable[position]] = _Reading(features[row], item.ids, list(zip(item.words, per_word[row])))
        return readings

    def _read_reviews(self, texts: Sequence[str]) -> list[list[_Reading]]:
        """Each text's readable sentences, read in batches across texts."""
        sentences = [split_sentences(text) for text in texts]
        flat = iter(self._read([s for review in sentences for s in review]))
        return [[r for r in (next(flat) for _ in review) if r is not None] for review in sentences]

    def _judge_sentences(self, texts: Sequence[str]) -> list[SentimentJudgement]:
        results = []
        for reading in self._read(texts):
            if reading is None:
                results.append(NEUTRAL)
                continue
            p = dict(zip(LABELS, reading.features[-len(LABELS) - 1 : -1].tolist()))
            results.append(SentimentJudgement(max(p, key=p.__getitem__), float(reading.features[-1]), p, reading.words))
        return results

    def _judge_reviews(self, texts: Sequence[str], chunk: int = 64) -> list[SentimentJudgement]:
        """Reviews ``chunk`` at a time: each sentence read by the sentence model, weighed by the review head."""
        head, band = self.model.review, self.model.config.review_band
        assert head is not None
        results = []
        for start in range(0, len(texts), chunk):
            readings = self._read_reviews(texts[start : start + chunk])
            logits, weights = head([self._review_reading(review) for review in readings])
            for review, logit, shares in zip(readings, logits.tolist(), weights.cpu().tolist()):
                compound = math.tanh(logit / 2)  # 2 * P(positive) - 1
                label = "neutral" if abs(compound) < band else "positive" if compound > 0 else "negative"
                p = {"negative": (1 - compound) / 2, "neutral": 0.0, "positive": (1 + compound) / 2}
                words = [(word, share * weight) for r, share in zip(review, shares) for word, weight in r.words]
                results.append(SentimentJudgement(label, compound, p, words))
        return results


@dataclass(frozen=True)
class _Reading:
    """One sentence as the sentence model read it."""

    features: torch.Tensor  # (2H + 4,) pooled state, class probabilities, score
    ids: list[int]
    words: list[tuple[str, float]]


NEUTRAL = SentimentJudgement("neutral", 0.0, {label: float(label == "neutral") for label in LABELS}, [])


def read_inputs(tokenizer: SubwordTokenizer, texts: Sequence[str], lexicon_features: int) -> list[SentimentInput]:
    """What the model reads for each text."""
    inputs = []
    for e in tokenizer.encode(texts):
        per_word = word_features(e.words) if lexicon_features else []
        features = [per_word[w][:lexicon_features] for w in e.word_index] if lexicon_features else []
        inputs.append(SentimentInput(e.ids, e.word_index, e.words, features))
    return inputs


def collate(
    inputs: Sequence[SentimentInput], lexicon_features: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded ids ``(B, T)``, lengths ``(B,)`` and features ``(B, T, F)`` (ids and features on ``device``)."""
    ids, lengths = pad([i.ids for i in inputs])
    features = torch.zeros(ids.size(0), ids.size(1), lexicon_features)
    for row, item in enumerate(inputs):
        if item.features:
            features[row, : len(item.ids)] = torch.tensor(item.features)
    return ids.to(device), lengths, features.to(device)


def _sum_per_word(weights: torch.Tensor, batch: Sequence[SentimentInput]) -> list[list[float]]:
    """Subword weights ``(B, T)`` summed over each text's words, one list per text."""
    counts = [len(item.words) for item in batch]
    offsets = torch.tensor([0, *counts[:-1]]).cumsum(0)
    index, _ = pad([item.word_index for item in batch])
    index = index + offsets.unsqueeze(1)
    mask = torch.arange(weights.size(1)).unsqueeze(0) < torch.tensor([len(item.ids) for item in batch]).unsqueeze(1)
    sums = torch.zeros(sum(counts)).index_add_(0, index[mask], weights[mask].float()).tolist()
    return [sums[start : start + count] for start, count in zip(offsets.tolist(), counts)]
