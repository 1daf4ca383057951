import pytest

from captioner import Vocabulary, tokenize


def test_tokenize_lowercases_and_splits_on_punctuation():
    assert tokenize("A dog's ball, in the GRASS.") == ["a", "dog", "s", "ball", "in", "the", "grass"]


def test_build_keeps_frequent_words_most_frequent_first():
    vocab = Vocabulary.build(["a dog", "a cat", "a dog runs", "zebra"], min_count=2)
    assert vocab.tokens == ("<pad>", "<start>", "<end>", "<unk>", "a", "dog")


def test_encode_decode_round_trip_and_unknown_words():
    vocab = Vocabulary.from_words(["a", "dog"])
    ids = vocab.encode("A dog barks")
    assert ids == [vocab.start_id, 4, 5, vocab.unk_id, vocab.end_id]
    assert vocab.decode(ids) == ["a", "dog"]  # specials dropped, stops at <end>
    assert vocab.encode("a dog a dog", max_length=2) == [1, 4, 5, 2]


def test_json_round_trip_and_validation():
    vocab = Vocabulary.from_words(["a", "dog"])
    assert Vocabulary.from_json(vocab.to_json()) == vocab
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary.from_json({"tokens": ["a", "dog"]})
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary.from_words(["a", "a"])
    with pytest.raises(ValueError, match="no words"):
        Vocabulary.from_words([])
