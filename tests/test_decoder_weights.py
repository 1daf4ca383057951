"""The decoder's copies for a CPU's search: packed float32 weights by default, int8 on request."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from captioner import Captioner
from captioner.decoder_weights import decoder_weights_wanted, int8_copy
from captioner.errors import CaptionerError
from captioner.packed_layers import PackedLinear, packing_available


def first_steps_logits(captioner: Captioner, decoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``(3, B, V)``: three greedy steps' logits, teacher-forced on the same tokens for any decoder."""
    features = captioner.encode(images)
    tokens = torch.tensor([[captioner.vocab.start_id] * images.size(0), [4] * images.size(0), [5] * images.size(0)])
    with torch.inference_mode():
        state, logits = decoder.init_state(features), []
        for step_tokens in tokens:
            step = decoder.step(step_tokens, state)
            logits.append(step.logits)
            state = step.state
    return torch.stack(logits)


def test_the_int8_copy_steps_as_the_decoder_does_and_leaves_it_alone(tiny_captioner):
    decoder = tiny_captioner.decoder
    before = {name: p.clone() for name, p in decoder.state_dict().items()}
    images = torch.rand(3, 3, 32, 32)
    copy = int8_copy(decoder)
    assert copy is not decoder and not copy.training
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in copy.modules())
    expected = first_steps_logits(tiny_captioner, decoder, images)
    got = first_steps_logits(tiny_captioner, copy, images)
    assert torch.allclose(got, expected, atol=0.05), (got - expected).abs().max()
    assert not torch.equal(got, expected)  # the int8 layers really ran
    assert all(torch.equal(before[name], p) for name, p in decoder.state_dict().items())


def test_captions_with_int8_weights_score_close_to_float32(tiny_captioner):
    images = torch.rand(4, 3, 32, 32)
    tiny_captioner.decoder_weights = "float32"
    reference = tiny_captioner.caption(images, max_length=6)
    tiny_captioner.decoder_weights = "int8"
    assert tiny_captioner.inference_decoder() is not tiny_captioner.decoder
    int8 = tiny_captioner.caption(images, max_length=6)
    for a, b in zip(reference, int8):
        assert b.ok and b.candidates[0].score == pytest.approx(a.candidates[0].score, abs=0.05)


def test_the_copy_is_kept_rebuilt_when_the_weights_change_and_never_used_in_training(tiny_captioner):
    tiny_captioner.decoder_weights = "int8"
    copy = tiny_captioner.inference_decoder()
    assert tiny_captioner.inference_decoder() is copy
    with torch.no_grad():
        next(tiny_captioner.decoder.parameters()).mul_(-1)  # e.g. fine-tuning
    assert tiny_captioner.inference_decoder() is not copy
    tiny_captioner.model.train()
    assert tiny_captioner.inference_decoder() is tiny_captioner.decoder
    tiny_captioner.model.eval()
    tiny_captioner.decoder_weights = "float32"
    assert tiny_captioner.inference_decoder() is tiny_captioner.decoder


def test_weights_are_chosen_by_an_environment_variable_on_a_cpu_only(monkeypatch):
    monkeypatch.delenv("CAPTIONER_DECODER_WEIGHTS", raising=False)
    assert decoder_weights_wanted(torch.device("cpu")) == ("packed" if packing_available() else "float32")
    assert decoder_weights_wanted(torch.device("cuda")) == "float32"
    monkeypatch.setenv("CAPTIONER_DECODER_WEIGHTS", "float32")
    assert decoder_weights_wanted(torch.device("cpu")) == "float32"
    monkeypatch.setenv("CAPTIONER_DECODER_WEIGHTS", "int8")
    assert decoder_weights_wanted(torch.device("cpu")) == "int8"
    assert decoder_weights_wanted(torch.device("cuda")) == "float32"
    monkeypatch.setenv("CAPTIONER_DECODER_WEIGHTS", "int4")
    with pytest.raises(CaptionerError, match=r"CAPTIONER_DECODER_WEIGHTS='int4': expected one of packed, float32, int8"):
        decoder_weights_wanted(torch.device("cpu"))


def test_a_decoder_whose_copy_cannot_step_keeps_float32_weights_with_one_warning(tiny_captioner, monkeypatch):
    import captioner.captioner as captioner_module

    class ReadsAWeightTensor(nn.Module):  # as a plugin's step that indexes ``self.output.weight`` would fail
        def init_state(self, features):
            raise TypeError("'method' object is not subscriptable")

    monkeypatch.setattr(captioner_module, "weights_copy", lambda decoder, weights: ReadsAWeightTensor())
    tiny_captioner.decoder_weights = "int8"
    images = torch.rand(2, 3, 32, 32)
    with pytest.warns(UserWarning, match="float32 weights: its int8 copy failed a step.*not subscriptable"):
        first = tiny_captioner.caption(images, max_length=4)
    assert all(r.ok for r in first)
    assert tiny_captioner.inference_decoder() is tiny_captioner.decoder
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_captioner.caption(images, max_length=4)  # no second warning


needs_packing = pytest.mark.skipif(not packing_available(), reason="this PyTorch has no oneDNN")


@needs_packing
def test_the_packed_copy_steps_as_the_decoder_does_to_rounding(tiny_captioner):
    images = torch.rand(3, 3, 32, 32)
    tiny_captioner.decoder_weights = "packed"
    copy = tiny_captioner.inference_decoder()
    assert copy is not tiny_captioner.decoder and any(isinstance(m, PackedLinear) for m in copy.modules())
    expected = first_steps_logits(tiny_captioner, tiny_captioner.decoder, images)
    torch.testing.assert_close(first_steps_logits(tiny_captioner, copy, images), expected, rtol=1e-5, atol=1e-5)
    tiny_captioner.decoder_weights = "float32"
    reference = tiny_captioner.caption(images, max_length=6)
    tiny_captioner.decoder_weights = "packed"
    for a, b in zip(reference, tiny_captioner.caption(images, max_length=6)):
        assert b.text == a.text and b.candidates[0].score == pytest.approx(a.candidates[0].score, abs=1e-4)
