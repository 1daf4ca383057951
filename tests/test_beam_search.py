"""Batched beam search against the one-image reference, the exhaustive optimum, and its rules."""

import itertools

import pytest
import torch

from captioner import DecodingOptions, create_decoder
from captioner.decoding import beam_search, sample
from captioner.decoding.constraints import ban_repeated_ngrams_, constrain
from captioner.encoder import EncoderOutput

from reference_search import reference_beam_search

START, END, UNK = 1, 2, 3
BANNED = (0, 1, UNK)


def random_problem(seed: int, decoder_name: str, vocab_size: int = 9, batch: int = 3, grid: int = 4, dim: int = 6):
    torch.manual_seed(seed)
    hparams = {"embed_dim": 5, "hidden_dim": 7, "dropout": 0.0}
    if decoder_name == "attention_lstm":
        hparams.update(attention_dim=4, memory_dim=6)
    decoder = create_decoder(decoder_name, vocab_size=vocab_size, feature_dim=dim, **hparams).double().eval()
    with torch.no_grad():  # sharpen the output layer so captions end at varied lengths
        decoder.output.weight.mul_(4)
        decoder.output.bias[END] += float(torch.rand(())) * 3 - 2
    grid_features = torch.randn(batch, grid, dim, dtype=torch.float64)
    return decoder, EncoderOutput(pooled=grid_features.mean(1), grid=grid_features)


def one_row(features: EncoderOutput, b: int) -> EncoderOutput:
    return EncoderOutput(features.pooled[b : b + 1], features.grid[b : b + 1])


OPTION_SETS = [
    DecodingOptions(beam_size=3, max_length=8, length_penalty=0.0),
    DecodingOptions(beam_size=4, max_length=7, length_penalty=1.0, min_length=2),
    DecodingOptions(beam_size=2, max_length=9, length_penalty=0.7, no_repeat_ngram_size=2),
    DecodingOptions(beam_size=5, max_length=6, length_penalty=-0.5, no_repeat_ngram_size=1, n_best=3),
    DecodingOptions(beam_size=1, max_length=8, length_penalty=1.0),
    DecodingOptions(beam_size=3, max_length=4, length_penalty=1.0, min_length=4),  # can never finish
]


@pytest.mark.parametrize("decoder_name", ["lstm", "gru", "attention_lstm"])
@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: f"k{o.beam_size}-lp{o.length_penalty}")
def test_batched_beam_search_matches_reference(decoder_name, options):
    for seed in range(8):
        decoder, features = random_problem(seed, decoder_name)
        batched = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)
        for b in range(features.pooled.size(0)):
            expected = reference_beam_search(decoder, one_row(features, b), options, START, END, BANNED)
            got = [(h.token_ids, h.score, h.logprob, h.finished) for h in batched[b]]
            assert [g[0] for g in got] == [e[0] for e in expected], f"seed {seed} image {b}"
            assert [g[3] for g in got] == [e[3] for e in expected]
            assert [g[1] for g in got] == pytest.approx([e[1] for e in expected], abs=1e-9)
            assert [g[2] for g in got] == pytest.approx([e[2] for e in expected], abs=1e-9)


@torch.no_grad()
def exact_logprob(decoder, features, tokens):
    """log P(tokens + <end> | image) by teacher forcing."""
    inputs = torch.tensor([[START, *tokens]])
    logprobs = torch.log_softmax(decoder(features, inputs).double(), dim=-1)[0]
    targets = [*tokens, END]
    return float(sum(logprobs[t, target] for t, target in enumerate(targets)))


@pytest.mark.parametrize("seed", range(5))
def test_large_beam_finds_exhaustive_optimum(seed):
    decoder, features = random_problem(seed, "attention_lstm", vocab_size=7, batch=1)  # 3 words
    words = [4, 5, 6]
    options = DecodingOptions(beam_size=128, max_length=4, length_penalty=0.0, min_length=0)
    scored = sorted(
        ((exact_logprob(decoder, features, list(seq)), list(seq)) for n in range(4) for seq in itertools.product(words, repeat=n)),
        reverse=True,
    )
    hypotheses = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)[0]
    assert hypotheses[0].token_ids == scored[0][1]
    assert hypotheses[0].logprob == pytest.approx(scored[0][0], abs=1e-9)
    assert [h.token_ids for h in hypotheses] == [seq for _, seq in scored[: len(hypotheses)]]


def test_nbest_sorted_and_attention_per_step():
    decoder, features = random_problem(0, "attention_lstm", batch=2)
    options = DecodingOptions(beam_size=4, max_length=8, length_penalty=1.0)
    for hypotheses in beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED):
        assert 1 <= len(hypotheses) <= 4
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
        for h in hypotheses:
            steps = len(h.token_ids) + (1 if h.finished else 0)
            assert h.attention.shape == (steps, 4)
            assert torch.allclose(h.attention.sum(-1), torch.ones(steps, dtype=h.attention.dtype))
            assert UNK not in h.token_ids and 0 not in h.token_ids


def test_never_empty_when_no_beam_can_finish():
    decoder, features = random_problem(1, "lstm")
    options = DecodingOptions(beam_size=3, max_length=5, min_length=5)
    for hypotheses in beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED):
        assert hypotheses and not hypotheses[0].finished
        assert len(hypotheses[0].token_ids) == 5


def test_beam_of_one_equals_greedy():
    decoder, features = random_problem(2, "gru")
    options = DecodingOptions(beam_size=1, max_length=10, length_penalty=0.0)
    beam = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)
    greedy = sample(decoder, features, options.updated(method="greedy"), start_id=START, end_id=END, banned_ids=BANNED)
    assert [b[0].token_ids for b in beam] == [g[0].token_ids for g in greedy]
    assert [b[0].logprob for b in beam] == pytest.approx([g[0].logprob for g in greedy])


def test_sampling_is_seeded_and_respects_top_k():
    decoder, features = random_problem(3, "lstm", batch=4)
    options = DecodingOptions(method="sample", max_length=8, seed=7, top_k=2, temperature=1.5)
    first = sample(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)
    second = sample(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)
    assert [h[0].token_ids for h in first] == [h[0].token_ids for h in second]
    other = sample(decoder, features, options.updated(seed=8, top_k=0, top_p=0.9), start_id=START, end_id=END,
                   banned_ids=BANNED)
    assert all(len(h) == 1 for h in other)
    # top_k=1 sampling is greedy decoding
    top1 = sample(decoder, features, options.updated(top_k=1), start_id=START, end_id=END, banned_ids=BANNED)
    greedy = sample(decoder, features, options.updated(method="greedy"), start_id=START, end_id=END, banned_ids=BANNED)
    assert [h[0].token_ids for h in top1] == [h[0].token_ids for h in greedy]


def test_tokens_that_would_repeat_an_ngram_are_ruled_out_in_place():
    sequences = torch.tensor([[4, 5, 4], [4, 5, 6], [4, 5, 4]])
    logprobs = torch.log_softmax(torch.randn(3, 8), dim=1)
    original = logprobs.clone()
    blocked = ban_repeated_ngrams_(logprobs, sequences, 2)
    assert blocked is logprobs
    assert torch.isinf(blocked).nonzero().tolist() == [[0, 5], [2, 5]]  # "4 5" seen, last token is 4
    assert torch.equal(blocked[1], original[1])  # nothing to repeat: untouched, bit for bit
    assert torch.equal(blocked[0, :5], original[0, :5]) and torch.equal(blocked[0, 6:], original[0, 6:])
    unigrams = ban_repeated_ngrams_(original.clone(), sequences, 1)
    assert torch.isinf(unigrams[1]).nonzero().flatten().tolist() == [4, 5, 6]
    repeats = torch.tensor([[3, 3, 3, 3]])  # the same follower matched several times, and once not
    assert torch.isinf(ban_repeated_ngrams_(torch.zeros(1, 8), repeats, 2)).nonzero().tolist() == [[0, 3]]
    assert torch.equal(ban_repeated_ngrams_(original.clone(), sequences[:, :1], 3), original)  # too short


def test_a_row_with_every_token_ruled_out_may_still_end():
    logprobs = torch.log_softmax(torch.tensor([[0.5, 1.0, 2.0, 0.1, 0.3], [0.2, 0.4, 1.5, 0.7, 0.9]]), dim=1)
    expected_end = logprobs[0, 2].item()
    sequences = torch.tensor([[3, 4], [3, 3]])  # row 0 has said every token that is not banned
    out = constrain(logprobs, sequences, step=1, min_length=1, no_repeat_ngram_size=1, end_id=2, banned_ids=(0, 1))
    assert out[0].tolist() == [float("-inf")] * 2 + [expected_end] + [float("-inf")] * 2  # stuck: it may end
    assert torch.isinf(out[1, [0, 1, 2, 3]]).all() and torch.isfinite(out[1, 4])  # too short to end, 4 still open


def test_no_repeat_ngram_in_captions():
    decoder, features = random_problem(4, "lstm", vocab_size=6)  # two words only: repeats are likely
    options = DecodingOptions(beam_size=3, max_length=10, no_repeat_ngram_size=2, min_length=6)
    for hypotheses in beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED):
        for h in hypotheses:
            bigrams = list(zip(h.token_ids, h.token_ids[1:]))
            assert len(bigrams) == len(set(bigrams))


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match="beam_size"):
        DecodingOptions(beam_size=0)
    with pytest.raises(ValueError, match="top_p"):
        DecodingOptions(top_p=0)
