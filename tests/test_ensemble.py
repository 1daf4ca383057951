"""Ensembles: decoders sharing a vocabulary, decoded as one model (their encoders stacked if they differ)."""

import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_CONFIG, tiny_trunk

from captioner import Captioner, FeatureMapEncoder, ModelLoadError, hookimpl
from captioner.cli import cli
from captioner.encoder_stack import EncoderStack
from captioner.ensembling import ensemble_models
from captioner.images import load_image, preprocess
from captioner.testing import random_photo
from captioner.training import TrainConfig, Trainer
from captioner.training.trainer import TrainingError

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


def test_members_must_share_the_vocabulary(members, tmp_path, vocab):
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


WIDE_CONFIG = replace(TINY_CONFIG, input_size=(48, 48), std=(0.3, 0.3, 0.3))  # a 6x6 grid


class WideEncoderPlugin:
    @hookimpl
    def register_encoders(self, register):
        register("tiny_cnn_wide", lambda pretrained=True, weights=None: FeatureMapEncoder(tiny_trunk(), WIDE_CONFIG),
                 config=WIDE_CONFIG)


@pytest.fixture
def mixed(members, tmp_path, vocab, captioner_plugin):
    """Members a and b share an encoder; d reads a larger one; e the first kind with other weights."""
    captioner_plugin(WideEncoderPlugin(), "tiny-wide-encoder")
    save_model(tmp_path / "d", vocab, seed=3, encoder="tiny_cnn_wide")
    save_model(tmp_path / "e", vocab, seed=4)
    return [members[0], members[1], tmp_path / "d", tmp_path / "e"]


def test_members_with_different_encoders_read_their_own_features(mixed):
    ensemble = ensemble_models(mixed)
    assert isinstance(ensemble.encoder, EncoderStack) and len(ensemble.encoder.encoders) == 3  # a and b share one
    assert ensemble.decoder.config.sources == (0, 0, 1, 2)
    assert ensemble.encoder_config.input_size == (48, 48)
    models = [Captioner.from_pretrained(folder, device="cpu") for folder in mixed]
    pixels = torch.stack([preprocess(load_image(p), ensemble.encoder_config) for p in PHOTOS[:2]])
    features = ensemble.encode(pixels)
    tokens = torch.tensor([1, 1])
    with torch.no_grad():
        expected = torch.stack([
            m.decoder.step(tokens, m.decoder.init_state(features.members[s])).logits.log_softmax(-1)
            for m, s in zip(models, ensemble.decoder.config.sources)
        ]).mean(0)
        out = ensemble.decoder.step(tokens, ensemble.decoder.init_state(features))
    assert torch.allclose(out.logits, expected, atol=1e-5)
    own_pixels = torch.stack([preprocess(load_image(p), models[2].encoder_config) for p in PHOTOS[:2]])
    assert torch.allclose(features.members[1].grid, models[2].encode(own_pixels).grid, atol=1e-5)  # d as trained
    assert out.attention.shape == (2, 16)  # a's and b's mean over the first encoder's 4x4 regions
    options = ensemble.decoding.updated(beam_size=2)
    assert ensemble.caption(PHOTOS[:2], beam_size=2)[1].text == ensemble.decode(features, options)[1][0].text
    with pytest.raises(ValueError, match="one value of 0 or more per member"):
        type(ensemble.decoder)(10, 8, [{"decoder": "gru", "hparams": {}}] * 2, sources=[0, -1])


def test_a_stacked_ensemble_saves_loads_and_flattens(mixed, tmp_path):
    ensemble = ensemble_models([mixed[0], mixed[2]])
    ensemble.save(tmp_path / "ad", dtype=torch.float32)
    encoder = json.loads((tmp_path / "ad" / "config.json").read_text())["encoder"]
    assert encoder["name"] == "stack" and encoder["members"] == ["tiny_cnn", "tiny_cnn_wide"]
    assert [m["input_size"] for m in encoder["config"]["members"]] == [[32, 32], [48, 48]]
    loaded = Captioner.from_pretrained(tmp_path / "ad", device="cpu")
    assert [r.text for r in loaded.caption(PHOTOS, beam_size=2)] == [r.text for r in ensemble.caption(PHOTOS, beam_size=2)]
    attention = loaded.caption(PHOTOS[0]).candidates[0].attention
    assert attention is not None and attention.shape[1] == 16  # over the first encoder's 4x4 regions
    bigger = ensemble_models([tmp_path / "ad", mixed[3], mixed[0]])
    assert len(bigger.encoder.encoders) == 3 and bigger.decoder.config.sources == (0, 1, 2, 0)


def test_a_stack_in_a_model_folder_is_checked(mixed, tmp_path):
    ensemble_models([mixed[0], mixed[2]]).save(tmp_path / "ad", dtype=torch.float32)
    path = tmp_path / "ad" / "config.json"
    config = json.loads(path.read_text())
    config["encoder"]["members"] = ["tiny_cnn"]
    path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="'members' must name each of the 2 encoders"):
        Captioner.from_pretrained(tmp_path / "ad", device="cpu")
    config["encoder"]["members"] = ["tiny_cnn", "tiny_cnn_wide"]
    config["encoder"]["config"]["classes"] = "imagenet-1k"
    path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="encoder config does not follow from its members' configs"):
        Captioner.from_pretrained(tmp_path / "ad", device="cpu")
    config["encoder"]["config"]["classes"] = None
    config["encoder"]["config"]["members"][1]["input_size"] = [64, 64]
    path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="encoder config is invalid .*must hold every member's input"):
        Captioner.from_pretrained(tmp_path / "ad", device="cpu")


def test_a_stacked_ensemble_is_not_trained_further(mixed, tmp_path, tiny_flickr):
    ensemble_models([mixed[0], mixed[2]]).save(tmp_path / "ad", dtype=torch.float32)
    config = TrainConfig(data=str(tiny_flickr), output=str(tmp_path / "run"), init_from=str(tmp_path / "ad"),
                         min_word_count=1, epochs=1, batch_size=4, cache_dir=str(tmp_path / "cache"), device="cpu",
                         num_workers=0)
    with pytest.raises(TrainingError, match="its encoders are a stack, formed from trained models"):
        Trainer(config)
