"""Shared fixtures: a tiny CNN encoder plugin and tiny captioners built from registered parts."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from captioner import Captioner, EncoderConfig, FeatureMapEncoder, Vocabulary, hookimpl
from captioner.plugins import register_plugin, unregister_plugin
from captioner.testing import random_photo  # noqa: F401  (tests import it from here)

pytest_plugins = ["captioner.testing"]

TINY_CONFIG = EncoderConfig(input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), feature_dim=8, spatial=True)
WORDS = "a dog cat runs on the grass in red ball".split()


def tiny_trunk() -> nn.Sequential:
    """Two convolutions: ``(B, 3, 32, 32) -> (B, 8, 4, 4)``."""
    return nn.Sequential(
        nn.Conv2d(3, 4, kernel_size=4, stride=4), nn.ReLU(), nn.Conv2d(4, 8, kernel_size=2, stride=2), nn.ReLU()
    )


def make_tiny_encoder(pretrained: bool = True, weights=None) -> FeatureMapEncoder:
    return FeatureMapEncoder(tiny_trunk(), TINY_CONFIG)


class TinyEncoderPlugin:
    @hookimpl
    def register_encoders(self, register):
        register("tiny_cnn", make_tiny_encoder, config=TINY_CONFIG)


@pytest.fixture(scope="session", autouse=True)
def float32_encoders():
    """Encoders in float32 whatever the CPU (bfloat16 autocast on AMX CPUs would change numbers
    from machine to machine); the tests of bfloat16 itself turn it back on."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAPTIONER_BFLOAT16", "0")
        yield


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """What captioner caches (e.g. encoders compiled by OpenVINO) goes to a folder of the test run's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def tiny_encoder_plugin():
    name = register_plugin(TinyEncoderPlugin(), "tiny-test-encoder")
    yield
    unregister_plugin(name)


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary.from_words(WORDS)


@pytest.fixture(params=["lstm", "gru", "attention_lstm"])
def tiny_captioner(request, vocab) -> Captioner:
    torch.manual_seed(0)
    hparams = {"embed_dim": 16, "hidden_dim": 24}
    if request.param == "attention_lstm":
        hparams.update(attention_dim=12, memory_dim=12)
    return Captioner("tiny_cnn", request.param, vocab, device="cpu", decoder_hparams=hparams)


@pytest.fixture
def image_folder(tmp_path):
    """A folder with three small JPEG/PNG images (one nested) and a non-image file."""
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    Image.fromarray(random_photo(1)).save(folder / "one.jpg")
    Image.fromarray(random_photo(2)).save(folder / "two.png")
    Image.fromarray(random_photo(3)).save(folder / "nested" / "three.jpeg")
    (folder / "notes.txt").write_text("not an image")
    return folder
