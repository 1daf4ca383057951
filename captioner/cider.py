"""CIDEr-D (Vedantam et al. 2015, as pycocoevalcap computes it) with idf fixed by a corpus.

pycocoevalcap's scorer takes document frequencies from whatever set it is given; a
training reward and consensus reranking need them from a fixed corpus (the training
captions, one document per photo), computed once here. The formula is pycocoevalcap's:
tf-idf n-gram vectors (n = 1..4), clipped cosine similarity per n, a Gaussian length
penalty (sigma 6), averaged over n and over references, times 10. Captions are packed
into arrays (:class:`Captions`) so that many candidates are scored against many
references in a few numpy operations.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_N = 4
SIGMA = 6.0  # CIDEr-D's Gaussian length penalty

Ngram = tuple[str, ...]


def ngrams(words: Sequence[str]) -> Counter[Ngram]:
    """Counts of the 1- to 4-grams of ``words``."""
    return Counter(tuple(words[i : i + n]) for n in range(1, MAX_N + 1) for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class Captions:
    """Captions as CIDEr-D sees them, packed: the tf-idf of each caption's n-grams and its norms and length."""

    ids: np.ndarray  # (G,) n-gram ids of all captions' n-grams, -1 for n-grams the idf table lacks
    values: np.ndarray  # (G,) term frequency * idf
    rows: np.ndarray  # (G,) which caption each entry belongs to
    norms: np.ndarray  # (R, MAX_N) norm of each caption's n-gram vector, per n
    lengths: np.ndarray  # (R,) words

    def __len__(self) -> int:
        return len(self.lengths)

    @staticmethod
    def join(parts: Sequence[Captions]) -> Captions:
        """One set of the captions of all ``parts``, in order."""
        offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
        return Captions(np.concatenate([p.ids for p in parts]), np.concatenate([p.values for p in parts]),
                        np.concatenate([p.rows + offset for p, offset in zip(parts, offsets)]),
                        np.concatenate([p.norms for p in parts]), np.concatenate([p.lengths for p in parts]))


class CiderD:
    """CIDEr-D with idf fixed by ``documents``, each the tokenised captions of one photo."""

    def __init__(self, documents: Sequence[Sequence[Sequence[str]]]) -> None:
        frequency: Counter[Ngram] = Counter()
        for captions in documents:
            frequency.update({gram for words in captions for gram in ngrams(words)})
        self.ids = {gram: i for i, gram in enumerate(frequency)}
        self.orders = np.array([len(gram) - 1 for gram in frequency], dtype=np.int64)
        self.log_documents = math.log(max(len(documents), 1))
        self.idf = np.array([self.log_documents - math.log(frequency[g]) for g in frequency], dtype=np.float64)
        self._references: dict[int, Captions] = {}

    def score(self, hypothesis: Sequence[str], key: int, references: Sequence[Sequence[str]]) -> float:
        """CIDEr-D of one tokenised caption; ``key`` names its photo, whose packed ``references`` are kept."""
        if key not in self._references:
            self._references[key] = self.pack(references)
        return float(self.consensus(self.pack([hypothesis]), self._references[key])[0])

    def pack(self, captions: Sequence[Sequence[str]]) -> Captions:
        """The tf-idf vectors of tokenised ``captions``."""
        ids, values, rows = [], [], []
        norms = np.zeros((len(captions), MAX_N))
        for row, words in enumerate(captions):
            counts = ngrams(words)
            grams = np.array([self.ids.get(g, -1) for g in counts], dtype=np.int64)
            idf = np.where(grams >= 0, self.idf[np.maximum(grams, 0)], self.log_documents)
            weights = np.array(list(counts.values()), dtype=np.float64) * idf
            orders = np.array([len(g) - 1 for g in counts], dtype=np.int64)
            norms[row] = np.sqrt(np.bincount(orders, weights=weights**2, minlength=MAX_N))
            ids.append(grams)
            values.append(weights)
            rows.append(np.full(len(grams), row))
        empty = [np.zeros(0)]
        return Captions(np.concatenate(ids or empty).astype(np.int64), np.concatenate(values or empty),
                        np.concatenate(rows or empty).astype(np.int64), norms,
                        np.array([len(w) for w in captions], dtype=np.int64))

    def consensus(self, candidates: Captions, references: Captions) -> np.ndarray:
        """``(C,)`` CIDEr-D of each candidate against all of ``references``."""
        if not len(references):
            return np.zeros(len(candidates))
        columns = np.unique(candidates.ids[candidates.ids >= 0])  # (U,) n-grams some candidate has
        hyp = self._dense(candidates, columns)  # (C, U)
        ref = self._dense(references, columns)  # (R, U)
        overlap = np.minimum(hyp[:, None, :], ref[None, :, :]) * ref[None, :, :]  # (C, R, U)
        orders = self.orders[columns]
        per_order = np.stack([overlap[..., orders == n].sum(axis=2) for n in range(MAX_N)], axis=2)  # (C, R, MAX_N)
        denominator = candidates.norms[:, None, :] * references.norms[None, :, :]
        per_order = np.divide(per_order, denominator, out=np.zeros_like(per_order), where=denominator != 0)
        delta = (candidates.lengths[:, None] - references.lengths[None, :]).astype(np.float64)
        penalty = np.exp(-(delta**2) / (2 * SIGMA**2))  # (C, R)
        return 10.0 * (per_order.mean(axis=2) * penalty).mean(axis=1)

    @staticmethod
    def _dense(captions: Captions, columns: np.ndarray) -> np.ndarray:
        """``(R, U)`` the captions' tf-idf on the n-grams ``columns`` (sorted)."""
        dense = np.zeros((len(captions), len(columns)))
        if len(columns):
            where = np.searchsorted(columns, captions.ids).clip(max=len(columns) - 1)
            hit = columns[where] == captions.ids
            dense[captions.rows[hit], where[hit]] = captions.values[hit]
        return dense
