"""Saving and loading model folders, and the clear errors for broken ones."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from captioner import Captioner, ModelLoadError
from conftest import random_photo


@pytest.fixture
def saved(tmp_path, tiny_captioner):
    return tiny_captioner, tiny_captioner.save(tmp_path / "model")


def test_round_trip_gives_identical_captions(saved):
    captioner, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "vocab.json"]
    loaded = Captioner.from_pretrained(folder, device="cpu")
    images = [random_photo(seed) for seed in range(3)]
    expected = [r.to_dict() for r in captioner.caption(images, beam_size=3, max_length=6)]
    assert [r.to_dict() for r in loaded.caption(images, beam_size=3, max_length=6)] == expected
    config = json.loads((folder / "config.json").read_text())
    assert config["format_version"] == 1 and config["vocab"] == "vocab.json"
    assert config["encoder"]["name"] == "tiny_cnn" and config["encoder"]["config"]["input_size"] == [32, 32]


def test_fp16_weights_halve_the_file_and_still_load(tmp_path, tiny_captioner):
    folder = tiny_captioner.save(tmp_path / "half", dtype=torch.float16)
    assert {t.dtype for t in load_file(folder / "model.safetensors").values()} == {torch.float16}
    loaded = Captioner.from_pretrained(folder, device="cpu")
    assert next(loaded.model.parameters()).dtype == torch.float32
    assert loaded.caption(random_photo(0), max_length=5).text is not None


def test_decoding_defaults_travel_with_the_model(tmp_path, tiny_captioner):
    tiny_captioner.decoding = tiny_captioner.decoding.updated(beam_size=5, length_penalty=0.4)
    loaded = Captioner.from_pretrained(tiny_captioner.save(tmp_path / "m"), device="cpu")
    assert loaded.decoding.beam_size == 5 and loaded.decoding.length_penalty == 0.4


def edit_config(folder, change):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def test_missing_folder_and_config(tmp_path):
    with pytest.raises(ModelLoadError, match="no such folder"):
        Captioner.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        Captioner.from_pretrained(tmp_path / "empty")


def test_malformed_config(saved):
    _, folder = saved
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        Captioner.from_pretrained(folder)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["decoder"].pop("hparams"), "missing 'hparams'"),
        (lambda c: c.update(format_version=99), "newer than this captioner"),
        (lambda c: c.update(format="something-else"), "expected 'captioner-model'"),
        (lambda c: c["encoder"].update(name="vit_giant"), r"unknown encoder 'vit_giant'; installed encoders: .*efficientnet_lite0"),
        (lambda c: c["decoder"].update(name="transformer"), r"unknown decoder 'transformer'; installed decoders: .*attention_lstm"),
        (lambda c: c["decoder"].update(vocab_size=99), "has 14 tokens but config.json says .* 99"),
        (lambda c: c["decoder"]["hparams"].update(hidden_dim=30), "weights do not match"),
        (lambda c: c["encoder"]["config"].update(colour="blue"), "encoder config is invalid"),
    ],
)
def test_invalid_config_fields(saved, change, message):
    _, folder = saved
    edit_config(folder, change)
    with pytest.raises(ModelLoadError, match=message):
        Captioner.from_pretrained(folder)


def test_wrong_shapes_and_missing_tensors(saved):
    _, folder = saved
    tensors = load_file(folder / "model.safetensors")
    name = next(n for n in tensors if n.startswith("decoder.") and n.endswith("weight"))
    tensors[name] = torch.zeros(3, 3)
    dropped = next(n for n in tensors if n.startswith("encoder."))
    del tensors[dropped]
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(ModelLoadError) as caught:
        Captioner.from_pretrained(folder)
    assert f"missing {dropped}" in str(caught.value) and f"{name} has shape (3, 3)" in str(caught.value)


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled!')",))


def test_pickle_is_never_loaded(saved):
    _, folder = saved
    (folder / "model.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ModelLoadError, match="not a valid safetensors file"):
        Captioner.from_pretrained(folder)


def test_vocab_file_problems(saved):
    _, folder = saved
    (folder / "vocab.json").write_text(json.dumps({"tokens": ["a", "b"]}))
    with pytest.raises(ModelLoadError, match="vocab.json: vocabulary must start with"):
        Captioner.from_pretrained(folder)
    (folder / "vocab.json").unlink()
    with pytest.raises(ModelLoadError, match="vocab.json: missing"):
        Captioner.from_pretrained(folder)


def test_unknown_shipped_name_lists_what_is_shipped():
    with pytest.raises(ModelLoadError, match=r"no shipped model of that name \(shipped: "):
        Captioner.from_pretrained("no-such-model")


def test_average_of_models_is_the_mean_of_their_weights(tmp_path, vocab):
    from click.testing import CliRunner

    from captioner.cli import cli

    folders = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = Captioner("tiny_cnn", "gru", vocab, device="cpu", decoder_hparams={"hidden_dim": 8, "embed_dim": 8})
        folders.append(model.save(tmp_path / f"m{seed}"))
    result = CliRunner().invoke(cli, ["average", *map(str, folders), "-o", str(tmp_path / "avg"), "--dtype", "float32",
                                      "--set", "length_penalty=0.7"])
    assert result.exit_code == 0, result.output
    a, b, avg = (load_file(folder / "model.safetensors") for folder in (*folders, tmp_path / "avg"))
    for name in a:
        torch.testing.assert_close(avg[name], (a[name] + b[name]) / 2)
    averaged = Captioner.from_pretrained(tmp_path / "avg")
    assert averaged.decoding.length_penalty == 0.7 and len(averaged.metadata["averaged_from"]) == 2
    other_vocab = Captioner("tiny_cnn", "gru", ["x", "y"], decoder_hparams={"hidden_dim": 8, "embed_dim": 8})
    other = other_vocab.save(tmp_path / "other")
    bad = CliRunner().invoke(cli, ["average", str(folders[0]), str(other), "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "cannot average" in bad.stderr
