"""Encoder stacks: several encoders run on one batch, each on the photo prepared as it was trained to see it."""

from dataclasses import replace

import pytest
import torch
from conftest import TINY_CONFIG, tiny_trunk
from torch import nn

from captioner import EncoderConfig, FeatureMapEncoder
from captioner.encoder_stack import EncoderStack, stack_config
from captioner.images import preprocess
from captioner.testing import random_photo

SMALL = replace(TINY_CONFIG, classes="tiny-3")
LARGE = replace(SMALL, input_size=(48, 40), mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4), resize_mode="center_crop")


def encoder(config, seed):
    torch.manual_seed(seed)
    return FeatureMapEncoder(tiny_trunk(), config, nn.Linear(config.feature_dim, 3)).eval()


def test_the_stack_config_holds_its_members_on_a_canvas_as_large_as_the_largest():
    config = stack_config([SMALL, LARGE])
    assert config.input_size == (48, 40) and config.members == (SMALL, LARGE)
    assert config.feature_dim == SMALL.feature_dim and config.classes == "tiny-3"
    assert stack_config([SMALL, replace(LARGE, classes="other")]).classes is None
    assert EncoderConfig.from_dict(config.to_dict()) == config
    assert "members" not in SMALL.to_dict()  # single encoders' configs are written as before
    assert all("members" not in member for member in config.to_dict()["members"])
    with pytest.raises(ValueError, match="must hold every member's input"):
        replace(config, input_size=(32, 32))
    with pytest.raises(ValueError, match="two or more single encoders"):
        replace(SMALL, members=(SMALL,))


def test_preprocessing_puts_each_members_own_input_side_by_side():
    image = torch.from_numpy(random_photo(0, size=(50, 70))).permute(2, 0, 1)
    pixels = preprocess(image, stack_config([SMALL, LARGE]))
    assert pixels.shape == (6, 48, 40)
    assert torch.equal(pixels[:3, :32, :32], preprocess(image, SMALL))  # squashed to 32x32, its own mean and std
    assert torch.equal(pixels[3:], preprocess(image, LARGE))  # cropped to 48x40
    assert not pixels[:3, 32:].any() and not pixels[:3, :, 32:].any()  # zero padding around the smaller input


@torch.no_grad()
def test_each_member_encodes_its_own_input():
    small, large = encoder(SMALL, 0), encoder(LARGE, 1)
    stack = EncoderStack([small, large]).eval()
    images = [torch.from_numpy(random_photo(seed)).permute(2, 0, 1) for seed in range(2)]
    out = stack(torch.stack([preprocess(image, stack.config) for image in images]))
    expected_small = small(torch.stack([preprocess(image, SMALL) for image in images]))
    expected_large = large(torch.stack([preprocess(image, LARGE) for image in images]))

    assert out.members is not None and len(out.members) == 2
    assert torch.allclose(out.members[0].grid, expected_small.grid, atol=1e-6)
    assert torch.allclose(out.members[1].grid, expected_large.grid, atol=1e-6)
    assert out.grid.shape == (2, 16, 8) and out.members[1].grid.shape == (2, 30, 8)  # 4x4 and 6x5 regions
    assert torch.equal(out.pooled, out.members[0].pooled)  # the stack reports its first member's features
    mean_probability = (expected_small.class_logits.softmax(1) + expected_large.class_logits.softmax(1)) / 2
    assert torch.allclose(out.class_logits.exp(), mean_probability, atol=1e-6)


def test_rows_and_moves_keep_the_members():
    stack = EncoderStack([encoder(SMALL, 0), encoder(LARGE, 1)]).eval()
    with torch.no_grad():
        out = stack(torch.randn(3, 6, 48, 40))
    row = out.rows(slice(1, 2)).to("cpu", torch.float64)
    assert row.members is not None and [m.grid.shape[0] for m in row.members] == [1, 1]
    assert {m.class_logits.dtype for m in row.members} == {torch.float64}
    assert torch.equal(row.float().members[1].grid, out.members[1].grid[1:2])


def test_a_stack_needs_two_members_and_is_not_fine_tuned():
    with pytest.raises(NotImplementedError, match="cannot be fine-tuned"):
        EncoderStack([encoder(SMALL, 0), encoder(LARGE, 1)]).stages()
    with pytest.raises(ValueError, match="at least two"):
        EncoderStack([encoder(SMALL, 0)])
