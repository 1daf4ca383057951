"""sentiment-rnn on whole reviews: sentences split, judged one by one and weighed by a review head,
on tiny models trained here."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from captioner.text.corpora import RatedSentence, lower_cased, read_imdb
from captioner.text.review import MAX_SENTENCE_WORDS, calibrate_band, split_sentences
from captioner.text.sentiment import SentimentClassifier, SentimentConfig, SentimentRNN
from captioner.text.tokenizer import SubwordTokenizer
from captioner.text.training import ReviewTrainingConfig, TextTrainingConfig, train_review_head, train_sentiment

NOUNS = "dog cat film show book song".split()
PLOT = "walked ran sat talked slept".split()


def sentences(n: int, seed: int) -> list[RatedSentence]:
    rng = random.Random(seed)
    words = {2.5: "lovely great".split(), -2.5: "awful boring".split(), 0.0: PLOT}
    rated = []
    for i in range(n):
        rating = (2.5, -2.5, 0.0)[i % 3]
        rated.append(RatedSentence("test", str(i), rating, f"the {rng.choice(NOUNS)} {rng.choice(words[rating])} today"))
    return rated


def review(rng: random.Random, positive: bool, length: int = 10) -> str:
    """Plot sentences with one verdict among them."""
    plot = [f"the {rng.choice(NOUNS)} {rng.choice(PLOT)} today." for _ in range(length)]
    plot.insert(rng.randrange(length + 1), f"the film was {'lovely' if positive else 'awful'} today.")
    return " ".join(plot)


@pytest.fixture(scope="module")
def reviewer() -> tuple[SentimentClassifier, SentimentClassifier]:
    """A tiny sentence model, and the same with a review head trained on tiny reviews."""
    train = sentences(300, seed=1)
    tokenizer = SubwordTokenizer.train([s.text for s in train] + ["the film was today."], vocab_size=300)
    config = SentimentConfig(tokenizer.vocab_size, embed_dim=16, hidden_dim=16, dropout=0.0)
    sentence_model = train_sentiment(train, sentences(60, seed=2), tokenizer, config,
                                     TextTrainingConfig(epochs=12, batch_tokens=256, learning_rate=1e-2, warmup_steps=5),
                                     log=lambda _: None)
    model = SentimentRNN(replace(config, review_hidden=8, review_bag=8, review_words=20))
    model.load_state_dict(sentence_model.model.state_dict(), strict=False)
    with_head = SentimentClassifier(model, tokenizer)
    rng = random.Random(3)
    texts = [(review(rng, i % 2 == 0), i % 2 == 0) for i in range(160)]
    readings = with_head.review_readings([t for t, _ in texts])
    data = [(reading, positive) for reading, (_, positive) in zip(readings, texts)]
    assert model.review is not None
    train_review_head(model.review, data[:120], data[120:],
                      ReviewTrainingConfig(epochs=15, batch_sentences=128, learning_rate=1e-2, warmup_steps=5),
                      log=lambda _: None)
    return sentence_model, SentimentClassifier(model.eval(), tokenizer)


def test_sentences_are_split_and_long_ones_cut():
    assert split_sentences("It was fine. Really?  Yes!no") == ["It was fine.", "Really?", "Yes!no"]
    long = " ".join(["word"] * (MAX_SENTENCE_WORDS + 5)) + ". End."
    assert [len(s.split()) for s in split_sentences(long)] == [MAX_SENTENCE_WORDS, 5, 1]
    assert split_sentences("") == []


def test_review_head_finds_the_verdict_among_plot(reviewer):
    _, with_head = reviewer
    rng = random.Random(7)
    sides = [i % 2 == 0 for i in range(40)]
    texts = [review(rng, positive, length=14) for positive in sides]  # longer than any it was trained on
    judgements = with_head.judge(texts)
    assert sum(j.label == ("positive" if p else "negative") for j, p in zip(judgements, sides)) >= 36
    for judgement, text in zip(judgements[:5], texts):
        assert [w for w, _ in judgement.words] == with_head.tokenizer.encode([text])[0].words
        assert sum(w for _, w in judgement.words) == pytest.approx(1.0, abs=1e-4)
        words = [w for w, _ in judgement.words]
        verdict = next(i for i, w in enumerate(words) if w in ("lovely", "awful"))  # "the film was lovely today ."
        top = max(range(len(words)), key=lambda i: judgement.words[i][1])
        assert verdict - 3 <= top <= verdict + 2  # the verdict's sentence carried the judgement
        assert judgement.probabilities["positive"] + judgement.probabilities["negative"] == pytest.approx(1.0)


def test_short_texts_are_judged_by_the_sentence_model_alone(reviewer):
    sentence_model, with_head = reviewer
    texts = ["the dog lovely today", "the cat awful today", "the book sat today", ""]
    for a, b in zip(sentence_model.judge(texts), with_head.judge(texts)):
        assert a == b
    alone = with_head.judge([review(random.Random(1), True)])[0]
    mixed = with_head.judge(["the dog sat today", review(random.Random(1), True)])[1]
    assert mixed.score == pytest.approx(alone.score, abs=1e-5)


def test_review_band_makes_unsure_reviews_neutral(reviewer, tmp_path):
    _, with_head = reviewer
    text = review(random.Random(5), False)
    score = with_head.judge([text])[0].score
    with_head.save(tmp_path / "model")
    loaded = SentimentClassifier.load(tmp_path / "model")
    assert loaded.judge([text])[0].score == pytest.approx(score, abs=0.02)  # float16 on disk
    loaded.model.config = replace(loaded.model.config, review_band=abs(score) + 0.01)
    assert loaded.judge([text])[0].label == "neutral"


def test_band_is_as_wide_as_the_side_is_a_coin_toss():
    compounds = [i / 500 - 1 for i in range(1_001)]  # -1 to 1 in steps of 0.002
    truth = [(c > 0) != (abs(c) < 0.1) for c in compounds]  # always wrong inside 0.1, right outside
    band = calibrate_band(compounds, truth)
    assert band == pytest.approx(0.2, abs=0.011)  # inside 0.2: half right, half wrong
    assert calibrate_band(compounds, [c > 0 for c in compounds]) == 0.0  # always right: no band
    assert calibrate_band(compounds[:10], truth[:10]) == 0.0  # too few to say


def test_imdb_reviews_are_read_and_split(tmp_path):
    for split, side, name, text in [("train", "pos", "1_9.txt", "Great.<br /><br />Loved it."),
                                    ("val", "neg", "2_1.txt", "Bad."), ("test", "neg", "3_2.txt", "Dull."),
                                    ("train", "pos", "notes.txt", "ignored")]:
        (tmp_path / split / side).mkdir(parents=True, exist_ok=True)
        (tmp_path / split / side / name).write_text(text)
    reviews = {r.id: r for r in read_imdb(tmp_path)}
    assert set(reviews) == {"pos/1", "neg/2", "neg/3"}
    assert reviews["pos/1"].text == "Great. Loved it." and reviews["pos/1"].rating == 9 and reviews["pos/1"].positive
    assert reviews["neg/3"].split == "test" and {reviews["pos/1"].split, reviews["neg/2"].split} <= {"train", "valid"}


def test_reviews_can_be_written_as_tokenised_corpora_write_them():
    assert lower_cased('Good, but DULL. I said "No!" (twice)') == 'good , but dull . i said " no ! " ( twice )'
    spaced = lower_cased("Plot: a man (Bob), sad. Verdict? Great!")
    assert spaced == "plot : a man ( bob ) , sad . verdict ? great !"
    assert split_sentences(spaced) == ["plot: a man (bob), sad.", "verdict?", "great!"]  # read as if written
