"""CIDEr-D of sampled captions against their references, for self-critical training.

pycocoevalcap's scorer takes document frequencies from whatever batch it is given; a
reward needs them from the whole training corpus, computed once here. The formula is
pycocoevalcap's CIDEr-D: tf-idf n-gram vectors (n = 1..4), clipped cosine similarity,
a Gaussian length penalty (sigma 6), averaged over references, times 10.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

Ngrams = Counter  # n-gram tuple -> count


def ngram_counts(words: Sequence[str], n: int = 4) -> Ngrams:
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


class CiderD:
    """CIDEr-D with document frequencies from ``corpus`` (a list of reference lists)."""

    def __init__(self, corpus: list[list[list[str]]], n: int = 4, sigma: float = 6.0) -> None:
        self.n, self.sigma = n, sigma
        self.document_frequency: Counter = Counter()
        for references in corpus:
            self.document_frequency.update({g for ref in references for g in ngram_counts(ref, n)})
        self.log_corpus_size = math.log(float(len(corpus)))
        self._reference_vectors: dict[int, list] = {}

    def _vector(self, counts: Ngrams):
        vec: list[dict[tuple[str, ...], float]] = [{} for _ in range(self.n)]
        norm = [0.0] * self.n
        for gram, tf in counts.items():
            k = len(gram) - 1
            weight = tf * (self.log_corpus_size - math.log(max(1.0, self.document_frequency[gram])))
            vec[k][gram] = weight
            norm[k] += weight * weight
        return vec, [math.sqrt(x) for x in norm]

    def _references(self, key: int, references: list[list[str]]):
        if key not in self._reference_vectors:
            self._reference_vectors[key] = [(*self._vector(ngram_counts(r, self.n)), len(r)) for r in references]
        return self._reference_vectors[key]

    def score(self, hypothesis: Sequence[str], key: int, references: list[list[str]]) -> float:
        """CIDEr-D of one hypothesis; ``key`` identifies the image (reference vectors are cached)."""
        vec, norm = self._vector(ngram_counts(hypothesis, self.n))
        total = 0.0
        for ref_vec, ref_norm, ref_length in self._references(key, references):
            penalty = math.exp(-((len(hypothesis) - ref_length) ** 2) / (2 * self.sigma**2))
            for k in range(self.n):
                if norm[k] == 0 or ref_norm[k] == 0:
                    continue
                overlap = sum(min(w, ref_vec[k].get(g, 0.0)) * ref_vec[k].get(g, 0.0) for g, w in vec[k].items())
                total += overlap / (norm[k] * ref_norm[k]) * penalty
        return total / self.n / len(references) * 10.0
