"""Word-level priors for the sentiment RNN, from VADER's lexicon (shipped with ``vaderSentiment``).

Each word gets four numbers: its human-rated valence / 4, whether it negates
("not", "n't", "never"), how much it boosts or dampens the next word ("very",
"slightly"), and whether it is shouted (all capitals). The RNN reads them beside
the word's embedding and learns when context overrides them, which a lexicon alone
cannot ("not bad at all").
"""

from __future__ import annotations

from functools import lru_cache

FEATURES = 4
CONTRACTED_NOT = {"'t", "n't", "t"}  # "wasn't" is read as "wasn" + "'t"


@lru_cache(maxsize=1)
def _vader() -> tuple[dict[str, float], frozenset[str], dict[str, float]]:
    from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer().lexicon, frozenset(NEGATE), BOOSTER_DICT


def word_features(words: list[str]) -> list[list[float]]:
    """``FEATURES`` numbers per word (see the module docstring)."""
    lexicon, negations, boosters = _vader()
    features = []
    for word in words:
        lower = word.lower()
        shouted = word.isupper() and len(word) > 1
        features.append([
            lexicon.get(lower, 0.0) / 4,
            1.0 if lower in negations or lower in CONTRACTED_NOT else 0.0,
            boosters.get(lower, 0.0) / 0.293,  # VADER's B_INCR: +1 boosts, -1 dampens
            1.0 if shouted else 0.0,
        ])
    return features
