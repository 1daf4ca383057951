"""Reading a long text as a reader would: sentence by sentence, the verdict found by attention.

Most sentences of a 700-word review are plot; the verdict sits in a few of them. The
sentence model judges each sentence (:func:`split_sentences`), and :class:`ReviewHead`,
a small bidirectional GRU over the sentences' judgements, weighs them by attention
into one positive-or-negative verdict. Beside each judgement it reads the sentence's
mean subword embedding, learnt from reviews: the words reviewers give verdicts in
("waste", "recommend", "7/10") that rated sentences rarely hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SPACED_PUNCTUATION = re.compile(r"\s+(?=[.,!?;:)])|(?<=\()\s+")  # "good , but" as tokenised corpora write it
MAX_SENTENCE_WORDS = 60


def split_sentences(text: str, max_words: int = MAX_SENTENCE_WORDS) -> list[str]:
    """The text's sentences (split after ``.``, ``!`` or ``?``), each cut into pieces of at most ``max_words``;
    punctuation spaced out from its word is put back against it ("good , but" -> "good, but")."""
    pieces = []
    for sentence in SENTENCE_END.split(SPACED_PUNCTUATION.sub("", text.strip())):
        words = sentence.split()
        pieces += [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)]
    return pieces


@dataclass(frozen=True)
class ReviewConfig:
    input_dim: int  # per sentence: the sentence model's pooled state, class probabilities and score
    vocab_size: int
    bag_dim: int = 64  # the sentence's mean subword embedding, learnt from reviews
    hidden_dim: int = 64
    dropout: float = 0.2


@dataclass(frozen=True)
class ReviewReading:
    """One review as the head reads it: a judgement per sentence and each sentence's subword ids."""

    sentences: torch.Tensor  # (S, input_dim)
    subwords: list[list[int]]  # S non-empty lists


class ReviewHead(nn.Module):
    """Per sentence, its judgement and mean subword embedding -> bidirectional GRU -> attention -> one logit."""

    def __init__(self, config: ReviewConfig) -> None:
        super().__init__()
        hidden = config.hidden_dim
        self.dropout = nn.Dropout(config.dropout)
        self.bag = nn.EmbeddingBag(config.vocab_size, config.bag_dim, mode="mean")
        self.rnn = nn.GRU(config.input_dim + config.bag_dim, hidden, batch_first=True, bidirectional=True)
        self.attention = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.output = nn.Linear(2 * hidden, 1)

    def forward(self, reviews: list[ReviewReading]) -> tuple[torch.Tensor, torch.Tensor]:
        """The positive-vs-negative logit ``(B,)`` and the attention over sentences ``(B, S)``."""
        device = self.output.weight.device
        counts = torch.tensor([len(r.sentences) for r in reviews])
        mask = torch.arange(int(counts.max())).unsqueeze(0) < counts.unsqueeze(1)  # (B, S)
        sentences = torch.zeros(*mask.shape, reviews[0].sentences.size(1), device=device)
        sentences[mask.to(device)] = torch.cat([r.sentences for r in reviews]).to(device)
        subwords = [ids for r in reviews for ids in r.subwords]
        offsets = torch.tensor([0, *(len(ids) for ids in subwords[:-1])]).cumsum(0)
        flat = torch.tensor([i for ids in subwords for i in ids])
        bags = torch.zeros(*mask.shape, self.bag.embedding_dim, device=device)
        bags[mask.to(device)] = self.bag(flat.to(device), offsets.to(device))
        inputs = self.dropout(torch.cat([sentences, bags], dim=2))
        packed = pack_padded_sequence(inputs, counts, batch_first=True, enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=inputs.size(1))
        energy = self.attention(states).squeeze(2).masked_fill(~mask.to(device), float("-inf"))
        weights = energy.softmax(dim=1)
        pooled = self.dropout(torch.bmm(weights.unsqueeze(1), states).squeeze(1))
        return self.output(pooled).squeeze(1), weights


def calibrate_band(compounds: list[float], positive: list[bool], least: int = 20, step: float = 0.01) -> float:
    """The widest neutral band ``|compound| < band`` in which the model's side is right no more often than wrong.

    There the side it would give is a coin toss, so it says neutral; reviews that take
    a side count neutral as wrong, so the band stays as narrow as the data allow. A band
    is judged once it holds ``least`` reviews (fewer say nothing).
    """
    band = 0.0
    for k in range(1, int(1 / step)):
        inside = [(c > 0) == p for c, p in zip(compounds, positive) if abs(c) < k * step]
        if len(inside) < least:
            continue
        if sum(inside) > len(inside) / 2:
            break
        band = k * step
    return band
