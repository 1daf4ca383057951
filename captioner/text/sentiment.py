"""``sentiment-rnn``: many-to-one, a bidirectional GRU with attention pooling over subwords.

Each subword is read as its embedding plus its word's lexicon priors
(:mod:`.lexicon`). The pooled state gives three class logits (negative, neutral,
positive) and a score in [-1, 1] (the mean human rating / 4); the pooling weights,
summed per word, say which words carried the judgement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .batching import length_batches, pad
from .lexicon import FEATURES, word_features
from .model_folder import TextModel
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

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, features: torch.Tensor) -> SentimentOutput:
        """``ids (B, T)`` right-padded with 0, ``lengths (B,)`` >= 1, ``features (B, T, F)``."""
        embedded = torch.cat([self.dropout(self.embedding(ids)), features], dim=2)  # (B, T, E + F)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=ids.size(1))  # (B, T, 2H)
        mask = torch.arange(ids.size(1), device=ids.device).unsqueeze(0) < lengths.to(ids.device).unsqueeze(1)
        energy = self.attention(states).squeeze(2).masked_fill(~mask, float("-inf"))  # (B, T)
        weights = energy.softmax(dim=1)
        pooled = self.dropout(torch.bmm(weights.unsqueeze(1), states).squeeze(1))  # (B, 2H)
        return SentimentOutput(self.classifier(pooled), torch.tanh(self.regressor(pooled)).squeeze(1), weights)


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
        """One judgement per text, batched by length; an empty text is neutral."""
        inputs = read_inputs(self.tokenizer, texts, self.model.config.lexicon_features)
        neutral = SentimentJudgement("neutral", 0.0, {label: float(label == "neutral") for label in LABELS}, [])
        results = [neutral] * len(texts)
        readable = [i for i, item in enumerate(inputs) if item.ids]
        for positions in length_batches([len(inputs[i].ids) for i in readable]):
            batch = [inputs[readable[p]] for p in positions]
            out = self.model(*collate(batch, self.model.config.lexicon_features, self.device))
            per_word = _sum_per_word(out.weights.cpu(), batch)
            probabilities = out.logits.softmax(dim=1).tolist()
            scores = out.score.tolist()
            for row, position in enumerate(positions):
                p = dict(zip(LABELS, probabilities[row]))
                results[readable[position]] = SentimentJudgement(
                    label=max(p, key=p.__getitem__), score=scores[row], probabilities=p,
                    words=list(zip(batch[row].words, per_word[row])),
                )
        return results


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
