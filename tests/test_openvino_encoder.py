"""The encoder compiled by OpenVINO gives the features and captions eager PyTorch gives."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from captioner import Captioner, EncoderConfig, FeatureMapEncoder
from captioner.encoder_stack import EncoderStack
from captioner.openvino_encoder import OpenVINOEncoder, openvino_wanted

from conftest import TINY_CONFIG, make_tiny_encoder

pytest.importorskip("openvino")


def classifying_encoder(seed: int) -> FeatureMapEncoder:
    """The tiny CNN with a classifier head, so every field of the output is there."""
    torch.manual_seed(seed)
    config = EncoderConfig(**{**TINY_CONFIG.to_dict(), "classes": "tiny-3"})
    encoder = make_tiny_encoder()
    return FeatureMapEncoder(encoder.trunk, config, classifier=nn.Linear(8, 3)).eval()


def assert_same_output(expected, got) -> None:
    for field in ("pooled", "grid", "class_logits"):
        want, have = getattr(expected, field), getattr(got, field)
        assert (want is None) == (have is None), field
        if want is not None:
            assert have.dtype == torch.float32 and have.shape == want.shape, field
            assert torch.allclose(have, want, atol=1e-5), field
    assert (expected.members is None) == (got.members is None)
    for want, have in zip(expected.members or (), got.members or (), strict=True):
        assert_same_output(want, have)


@pytest.mark.parametrize("batch", [1, 3])
def test_compiled_features_match_eager_pytorch_for_any_batch(tmp_path, batch):
    encoder = classifying_encoder(0)
    compiled = OpenVINOEncoder(encoder, (3, 32, 32), cache_dir=tmp_path)
    pixels = torch.randn(batch, 3, 32, 32)
    with torch.no_grad():
        assert_same_output(encoder(pixels), compiled(pixels))


def test_a_stack_keeps_every_members_output(tmp_path):
    stack = EncoderStack([classifying_encoder(1), classifying_encoder(2)]).eval()
    pixels = torch.randn(2, 6, 32, 32)  # two members side by side
    compiled = OpenVINOEncoder(stack, (6, 32, 32), cache_dir=tmp_path)
    with torch.no_grad():
        expected = stack(pixels)
    got = compiled(pixels)
    assert len(got.members) == 2
    assert_same_output(expected, got)


def test_the_converted_model_is_cached_per_weights(tmp_path, monkeypatch):
    import openvino

    encoder = classifying_encoder(0)
    OpenVINOEncoder(encoder, (3, 32, 32), cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the cache has this encoder")

    monkeypatch.setattr(openvino, "convert_model", no_conversion)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert_same_output(encoder(pixels), OpenVINOEncoder(encoder, (3, 32, 32), cache_dir=tmp_path)(pixels))
    monkeypatch.undo()

    with torch.no_grad():
        encoder.classifier.weight.mul_(2)  # other weights: another entry, not the stale one
    compiled = OpenVINOEncoder(encoder, (3, 32, 32), cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    with torch.no_grad():
        assert_same_output(encoder(pixels), compiled(pixels))


def test_mixed_precision_runs_the_compiled_encoder_in_bfloat16_or_close_to_it(tiny_captioner):
    pixels = torch.rand(3, 3, 32, 32)
    tiny_captioner.openvino, tiny_captioner.mixed_precision = True, False
    exact = tiny_captioner.encode(pixels)
    tiny_captioner.mixed_precision = True  # bfloat16 where the CPU has it; OpenVINO may keep float32 elsewhere
    mixed = tiny_captioner.encode(pixels)
    assert mixed.pooled.dtype == torch.float32
    assert torch.allclose(mixed.pooled, exact.pooled, rtol=0.05, atol=0.05)


def test_an_unreadable_cached_model_is_converted_again_and_replaced(tmp_path):
    encoder = classifying_encoder(0)
    OpenVINOEncoder(encoder, (3, 32, 32), cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*/encoder.xml")
    cached.write_text("<net truncated")
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert_same_output(encoder(pixels), OpenVINOEncoder(encoder, (3, 32, 32), cache_dir=tmp_path)(pixels))
    assert cached.read_text().startswith("<?xml")  # the cache holds a whole model again


def test_pixels_of_another_shape_are_refused_by_name(tmp_path):
    compiled = OpenVINOEncoder(classifying_encoder(0), (3, 32, 32), cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"\(3, 64, 64\).*\(3, 32, 32\)"):
        compiled(torch.randn(1, 3, 64, 64))


def test_a_captioner_writes_the_same_captions_with_and_without_openvino(vocab):
    torch.manual_seed(0)
    captioner = Captioner("tiny_cnn", "attention_lstm", vocab, device="cpu",
                          decoder_hparams={"embed_dim": 16, "hidden_dim": 24, "attention_dim": 12, "memory_dim": 12})
    images = torch.rand(4, 3, 32, 32)
    captioner.openvino = True
    compiled = [r.text for r in captioner.caption(images, max_length=6)]
    assert captioner.compiled_encoder((3, 32, 32)) is not None
    captioner.openvino = False
    assert captioner.compiled_encoder((3, 32, 32)) is None
    assert [r.text for r in captioner.caption(images, max_length=6)] == compiled

    captioner.openvino = True
    with torch.no_grad():
        captioner.encoder.trunk[0].weight.mul_(-1)  # e.g. fine-tuning: the compiled copy is rebuilt
    reference = captioner.inference_encoder()(images.contiguous(memory_format=torch.channels_last))
    assert_same_output(reference, captioner.encode(images))
    captioner.model.train()
    assert captioner.compiled_encoder((3, 32, 32)) is None  # training never uses it


def test_an_encoder_openvino_cannot_compile_runs_in_pytorch_with_one_warning(tiny_captioner, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing converted yet

    def cannot_export(*args, **kwargs):
        raise RuntimeError("data-dependent control flow")

    monkeypatch.setattr(torch.export, "export", cannot_export)
    tiny_captioner.openvino = True
    images = torch.rand(2, 3, 32, 32)
    with pytest.warns(UserWarning, match="runs in PyTorch: OpenVINO could not compile it.*data-dependent"):
        first = tiny_captioner.caption(images, max_length=4)
    assert all(r.ok for r in first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_captioner.caption(images, max_length=4)  # no second warning


def test_openvino_is_wanted_on_a_cpu_unless_turned_off(monkeypatch):
    monkeypatch.delenv("CAPTIONER_OPENVINO", raising=False)
    assert openvino_wanted(torch.device("cpu"))
    assert not openvino_wanted(torch.device("cuda"))
    monkeypatch.setenv("CAPTIONER_OPENVINO", "0")
    assert not openvino_wanted(torch.device("cpu"))


def test_warming_up_compiles_the_encoder_before_the_first_photo(tiny_captioner, monkeypatch):
    import captioner.captioner as captioner_module

    built = []
    real = captioner_module.OpenVINOEncoder
    monkeypatch.setattr(captioner_module, "OpenVINOEncoder", lambda *args, **kw: built.append(args[1]) or real(*args, **kw))
    tiny_captioner.openvino = True
    tiny_captioner.warm_up()
    height, width = tiny_captioner.encoder_config.input_size
    assert built == [(3, height, width)]
    tiny_captioner.caption(torch.rand(3, 50, 40), max_length=4)
    assert len(built) == 1  # the photo found it compiled
