"""The three built-in decoders honour the shared step interface."""

import pytest
import torch

from captioner import EncoderOutput, create_decoder, list_decoders

HPARAMS = {"embed_dim": 8, "hidden_dim": 10}


def make(name: str, vocab_size: int = 12, feature_dim: int = 6):
    hparams = dict(HPARAMS, attention_dim=5, memory_dim=6) if name == "attention_lstm" else dict(HPARAMS)
    return create_decoder(name, vocab_size=vocab_size, feature_dim=feature_dim, **hparams).eval()


def features(batch: int = 3, regions: int = 4, dim: int = 6) -> EncoderOutput:
    grid = torch.randn(batch, regions, dim)
    return EncoderOutput(grid.mean(1), grid)


def test_builtin_decoders_are_registered():
    assert {"lstm", "gru", "attention_lstm"} <= set(list_decoders())


@pytest.mark.parametrize("name", ["lstm", "gru", "attention_lstm"])
def test_teacher_forcing_equals_step_by_step(name):
    torch.manual_seed(0)
    decoder, feats = make(name), features()
    tokens = torch.randint(4, 12, (3, 5))
    forward = decoder(feats, tokens)
    state, steps = decoder.init_state(feats), []
    for t in range(tokens.size(1)):
        out = decoder.step(tokens[:, t], state)
        steps.append(out.logits)
        state = out.state
    assert forward.shape == (3, 5, 12)
    torch.testing.assert_close(forward, torch.stack(steps, 1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "gru", "attention_lstm"])
def test_reorder_state_follows_rows(name):
    torch.manual_seed(1)
    decoder, feats = make(name), features()
    state = decoder.init_state(feats)
    index = torch.tensor([2, 2, 0])
    tokens = torch.tensor([5, 6, 7])
    out = decoder.step(tokens, decoder.reorder_state(state, index))
    for row, source in enumerate(index.tolist()):
        alone = decoder.step(tokens[row : row + 1], decoder.reorder_state(state, torch.tensor([source])))
        torch.testing.assert_close(out.logits[row], alone.logits[0], rtol=1e-5, atol=1e-6)


def test_attention_weights_are_a_distribution_over_regions():
    torch.manual_seed(2)
    decoder, feats = make("attention_lstm"), features(regions=7)
    out = decoder.step(torch.tensor([1, 1, 1]), decoder.init_state(feats))
    assert out.attention.shape == (3, 7)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(3))


def test_hparams_rebuild_the_same_decoder():
    decoder = make("gru")
    assert decoder.hparams["rnn"] == "gru" and decoder.hparams["hidden_dim"] == 10
    rebuilt = create_decoder("gru", vocab_size=12, feature_dim=6, **decoder.hparams)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in decoder.state_dict().items()}
    # the registered name decides the cell type, whatever the options say
    assert create_decoder("lstm", vocab_size=12, feature_dim=6, rnn="gru").hparams["rnn"] == "lstm"


def test_attention_step_without_autograd_agrees_with_the_training_step():
    """Inference takes the attention energies' tanh another way (faster on a CPU): the same step, to float precision."""
    torch.manual_seed(3)
    decoder, feats = make("attention_lstm"), features(regions=7)
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.mul_(4)  # energies far into tanh's flat tails, and through zero
    state, tokens = decoder.init_state(feats), torch.tensor([1, 2, 3])
    trained = decoder.step(tokens, state)  # the parameters need gradients: torch.tanh
    with torch.inference_mode():
        inferred = decoder.step(tokens, state)
    torch.testing.assert_close(inferred.logits, trained.logits.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(inferred.attention, trained.attention.detach(), rtol=1e-5, atol=1e-6)
