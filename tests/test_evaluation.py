"""pycocoevalcap metrics, with and without Java."""

import pytest

from captioner import evaluation
from captioner.evaluation import score_captions

REFERENCES = {
    "1": ["A dog runs on the grass .", "A brown dog running across a lawn ."],
    "2": ["Two people sit on a bench .", "A couple sitting on a park bench ."],
}


@pytest.mark.skipif(not evaluation.java_available(), reason="java is not installed")
def test_all_metrics_with_java():
    perfect = score_captions(REFERENCES, {"1": "a dog runs on the grass", "2": "two people sit on a bench"})
    assert set(perfect.values) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE_L", "CIDEr"}
    assert perfect.values["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    worse = score_captions(REFERENCES, {"1": "a cat sleeps", "2": "two people sit"})
    assert all(worse.values[name] < perfect.values[name] for name in perfect.values)
    assert not perfect.notes


def test_without_java_meteor_is_skipped_with_a_note(monkeypatch):
    monkeypatch.setattr(evaluation, "java_available", lambda: False)
    scores = score_captions(REFERENCES, {"1": "A dog runs on the grass!", "2": "two people sit on a bench"})
    assert "METEOR" not in scores.values and scores.values["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert scores.notes == ["java not found: METEOR skipped, PTB tokenizer replaced by captioner's tokenizer"]
    assert "note: java not found" in scores.table()


def test_missing_hypothesis_is_an_error():
    with pytest.raises(ValueError, match="no hypothesis"):
        score_captions(REFERENCES, {"1": "a dog"})
