"""Ensembles: decoders sharing an encoder and vocabulary, decoded as one model."""

import pytest
import torch
from click.testing import CliRunner

from captioner import Captioner, ModelLoadError
from captioner.cli import cli
from captioner.ensembling import ensemble_models
from captioner.images import load_image, preprocess
from captioner.testing import random_photo

HPARAMS = {"embed_dim": 16, "hidden_dim": 24, "attention_dim": 12, "memory_dim": 12}
PHOTOS = [random_photo(seed) for seed in range(4)]


def save_model(folder, vocab, seed, encoder=None, decoder="attention_lstm"):
    torch.manual_seed(seed)
    captioner = Captioner(encoder or "tiny_cnn", decoder, vocab, device="cpu",
                          decoder_hparams=HPARAMS if decoder == "attention_lstm" else {"embed_dim": 16, "hidden_dim": 24})
    with torch.no_grad():  # sharper, different predictions per member, so an ensemble has something to average
        captioner.decoder.output.weight.mul_(20)
    captioner.save(folder, dtype=torch.float32)
    return captioner


@pytest.fixture
def members(tmp_path, vocab):
    first = save_model(tmp_path / "a", vocab, seed=0)
    save_model(tmp_path / "b", vocab, seed=1, encoder=first.encoder)
    save_model(tmp_path / "c", vocab, seed=2, encoder=first.encoder, decoder="gru")
    return [tmp_path / name for name in "abc"]


def test_each_step_is_the_mean_of_the_members_log_probabilities(members):
    ensemble = ensemble_models(members)
    models = [Captioner.from_pretrained(folder, device="cpu") for folder in members]
    pixels = torch.stack([preprocess(load_image(p), models[0].encoder_config) for p in PHOTOS[:2]])
    features = models[0].encode(pixels)
    tokens = torch.tensor([1, 1])
    with torch.no_grad():
        expected = torch.stack([
            m.decoder.step(tokens, m.decoder.init_state(features)).logits.log_softmax(-1) for m in models
        ]).mean(0)
        out = ensemble.decoder.step(tokens, ensemble.decoder.init_state(features))
    assert torch.allclose(out.logits, expected, atol=1e-5)
    assert out.attention is None  # the GRU member has no attention to average


def test_an_ensemble_of_one_model_with_itself_captions_as_that_model(members):
    single = Captioner.from_pretrained(members[0], device="cpu")
    twice = ensemble_models([members[0], members[0]])
    assert [r.text for r in twice.caption(PHOTOS, beam_size=3)] == [r.text for r in single.caption(PHOTOS, beam_size=3)]
    assert twice.caption(PHOTOS[0]).candidates[0].attention is not None  # both members attend: the mean is shown


def test_ensemble_saves_loads_and_flattens(members, tmp_path):
    ensemble = ensemble_models(members[:2])
    ensemble.save(tmp_path / "ab", dtype=torch.float32)
    loaded = Captioner.from_pretrained(tmp_path / "ab", device="cpu")
    assert [r.text for r in loaded.caption(PHOTOS)] == [r.text for r in ensemble.caption(PHOTOS)]
    assert loaded.metadata["ensemble_of"] == [str(members[0]), str(members[1])]
    bigger = ensemble_models([tmp_path / "ab", members[2]])
    assert [m.registered_name for m in bigger.decoder.members] == ["attention_lstm", "attention_lstm", "gru"]


def test_members_must_share_the_vocabulary_and_the_encoder(members, tmp_path, vocab):
    save_model(tmp_path / "other-encoder", vocab, seed=5)
    with pytest.raises(ModelLoadError, match="other-encoder: its encoder .* differs"):
        ensemble_models([members[0], tmp_path / "other-encoder"])
    first = Captioner.from_pretrained(members[0], device="cpu")
    save_model(tmp_path / "other-words", type(vocab).from_words(["a", "cat"]), seed=0, encoder=first.encoder)
    with pytest.raises(ModelLoadError, match="other-words: its vocabulary differs"):
        ensemble_models([members[0], tmp_path / "other-words"])


def test_cli_ensemble(members, tmp_path):
    result = CliRunner().invoke(cli, ["ensemble", *map(str, members), "-o", str(tmp_path / "e"),
                                      "--set", "beam_size=2"])
    assert result.exit_code == 0, result.output
    assert "ensembled 3 decoders" in result.output
    assert Captioner.from_pretrained(tmp_path / "e", device="cpu").decoding.beam_size == 2
    result = CliRunner().invoke(cli, ["ensemble", str(members[0]), "-o", str(tmp_path / "f")])
    assert result.exit_code == 1 and "at least two" in result.output
