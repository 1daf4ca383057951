import json

import torch
from click.testing import CliRunner

import captioner
from captioner.cli import cli
from captioner.training import TrainConfig, train


def test_the_plugin_registers_its_encoder_and_decoder():
    assert "tiny_cnn_tutorial" in captioner.list_encoders()
    assert "tiny_gru_tutorial" in captioner.list_decoders()
    assert captioner.get_encoder_config("tiny_cnn_tutorial").feature_dim == 32


def test_features_and_steps_have_the_documented_shapes():
    encoder = captioner.create_encoder("tiny_cnn_tutorial")
    features = encoder(torch.rand(2, 3, 64, 64))
    assert features.pooled.shape == (2, 32) and features.grid.shape == (2, 16, 32)
    decoder = captioner.create_decoder("tiny_gru_tutorial", vocab_size=10, feature_dim=32, hidden_dim=16)
    step = decoder.step(torch.tensor([1, 1]), decoder.init_state(features))
    assert step.logits.shape == (2, 10) and step.state["h"].shape == (2, 16)


def test_train_save_load_and_caption_from_the_cli(tiny_flickr, tmp_path):
    run = tmp_path / "run"
    best = train(TrainConfig(data=str(tiny_flickr), output=str(run), encoder="tiny_cnn_tutorial",
                             decoder="tiny_gru_tutorial", decoder_hparams={"hidden_dim": 32}, min_word_count=1,
                             epochs=2, batch_size=4, val_beam_size=1, warmup_steps=1), progress=False)
    config = json.loads((best / "config.json").read_text())
    assert config["encoder"]["name"] == "tiny_cnn_tutorial"
    assert config["decoder"] == {**config["decoder"], "name": "tiny_gru_tutorial",
                                 "hparams": {"embed_dim": 32, "hidden_dim": 32}}
    model = captioner.Captioner.from_pretrained(best, device="cpu")
    assert model.caption(str(tiny_flickr / "images" / "img0.jpg")).text
    out = CliRunner().invoke(cli, ["caption", "--model", str(best), str(tiny_flickr / "images")])
    assert out.exit_code == 0, out.output
    assert len(out.stdout.splitlines()) == 8 and all("\t" in line for line in out.stdout.splitlines())
