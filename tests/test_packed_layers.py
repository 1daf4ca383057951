"""Layers with oneDNN-packed weights compute what the layers they copy compute, to rounding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from captioner.packed_layers import (
    PackedGRU,
    PackedGRUCell,
    PackedLinear,
    PackedLSTM,
    PackedLSTMCell,
    packed_copy,
    packing_available,
)

pytestmark = pytest.mark.skipif(not packing_available(), reason="this PyTorch has no oneDNN")
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def assert_close(actual, expected) -> None:
    if isinstance(expected, tuple):
        for a, e in zip(actual, expected, strict=True):
            assert_close(a, e)
        return
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, **TOLERANCE)


@pytest.mark.parametrize("rows", [1, 3, 48])
def test_linear_matches_for_any_number_of_rows(rows):
    torch.manual_seed(0)
    linear = nn.Linear(24, 40)
    inputs = torch.randn(rows, 24)
    packed = PackedLinear(linear.weight, linear.bias)
    assert_close(packed(inputs), linear(inputs))
    assert_close(packed(inputs.view(rows, 1, 24)), linear(inputs.view(rows, 1, 24)))  # (..., in)
    no_bias = nn.Linear(24, 40, bias=False)
    assert_close(PackedLinear(no_bias.weight, None)(inputs), no_bias(inputs))


@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_batched_unbatched_and_without_state(bias):
    torch.manual_seed(0)
    x, h, c = torch.randn(5, 12), torch.randn(5, 16), torch.randn(5, 16)
    lstm = nn.LSTMCell(12, 16, bias=bias)
    packed_lstm = PackedLSTMCell(lstm)
    assert_close(packed_lstm(x, (h, c)), lstm(x, (h, c)))
    assert_close(packed_lstm(x), lstm(x))
    assert_close(packed_lstm(x[0], (h[0], c[0])), lstm(x[0], (h[0], c[0])))
    gru = nn.GRUCell(12, 16, bias=bias)
    packed_gru = PackedGRUCell(gru)
    assert_close(packed_gru(x, h), gru(x, h))
    assert_close(packed_gru(x), gru(x))
    assert_close(packed_gru(x[0], h[0]), gru(x[0], h[0]))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
def test_sequences_match_step_by_step_layers(batch_first, bias):
    torch.manual_seed(0)
    inputs = torch.randn(3, 7, 12) if batch_first else torch.randn(7, 3, 12)
    h, c = torch.randn(1, 3, 16), torch.randn(1, 3, 16)
    lstm = nn.LSTM(12, 16, batch_first=batch_first, bias=bias)
    assert_close(PackedLSTM(lstm)(inputs, (h, c)), lstm(inputs, (h, c)))
    assert_close(PackedLSTM(lstm)(inputs), lstm(inputs))
    unbatched = torch.randn(7, 12)
    assert_close(PackedLSTM(lstm)(unbatched, (h[:, 0], c[:, 0])), lstm(unbatched, (h[:, 0], c[:, 0])))
    gru = nn.GRU(12, 16, batch_first=batch_first, bias=bias)
    assert_close(PackedGRU(gru)(inputs, h), gru(inputs, h))
    assert_close(PackedGRU(gru)(inputs), gru(inputs))
    assert_close(PackedGRU(gru)(unbatched, h[:, 0]), gru(unbatched, h[:, 0]))


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 8)
        self.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 10))
        self.cell = nn.LSTMCell(8, 8)
        self.two_layers = nn.LSTM(8, 8, num_layers=2)
        self.wide = nn.Linear(8, 8).double()


def test_packed_copy_swaps_what_it_can_and_leaves_the_original():
    module = Tiny()
    copied = packed_copy(module)
    assert isinstance(copied.head[0], PackedLinear) and isinstance(copied.head[2], PackedLinear)
    assert isinstance(copied.cell, PackedLSTMCell)
    assert type(copied.two_layers) is nn.LSTM  # two layers: left as they are
    assert type(copied.wide) is nn.Linear  # float64: left as it is
    assert type(module.head[0]) is nn.Linear and module.training  # the original is untouched
    assert not copied.training
    tokens = torch.tensor([1, 2, 3])
    with torch.inference_mode():
        assert_close(copied.head(copied.embedding(tokens)), module.head(module.embedding(tokens)))
