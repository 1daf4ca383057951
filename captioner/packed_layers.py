"""Linear and recurrent layers whose float32 weights are packed once for oneDNN: the same
products, in the layout oneDNN's CPU kernels read fastest.

A decoder step multiplies a few dozen rows (images x beams) by each weight matrix.
PyTorch hands such a product to its BLAS (MKL), which lays the weight matrix out anew on
every call, and on an AMD CPU is slow at it: on this project's 2-core AMD EPYC the
shipped decoder's layers ran 1.3-1.7x faster packed at 48 rows and 4-6x at 3 rows (one
photo), ``python benchmarks/packed_layers.py``. :func:`packed_copy` gives a copy of a module whose
``nn.Linear``, ``nn.LSTMCell``, ``nn.GRUCell`` and one-layer, one-way ``nn.LSTM`` and
``nn.GRU`` layers keep their weights packed (``torch.ops.mkldnn._reorder_linear_weight``)
and multiply with ``torch.ops.mkldnn._linear_pointwise``, the kernels PyTorch's own
compiler uses for frozen CPU models. The weights are the same float32 numbers; only the
order of additions inside a product differs, so outputs match to rounding (a few parts
in a million) and a caption changes only where two beams were tied to that precision.

Layers in another precision or shape (two layers, two directions, projections) are left
as they are; so is everything where PyTorch has no oneDNN (:func:`packing_available`).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import TypeVar, cast

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)
Hidden = tuple[torch.Tensor, torch.Tensor]


@cache
def packing_available() -> bool:
    """Whether this PyTorch can pack weights for oneDNN and multiply with them (one tiny product tried)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        weight = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 3))
        product = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 3), weight, None, "none", [], "")
    except (RuntimeError, AttributeError, NotImplementedError):
        return False
    return bool(torch.equal(product, torch.full((1, 2), 3.0)))


def _pack(weight: torch.Tensor) -> torch.Tensor:
    """``weight (out, in)`` in oneDNN's layout for products with any number of rows."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())


def _product(inputs: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``inputs @ weight.T + bias`` for a weight packed by :func:`_pack`; ``inputs (..., in)``."""
    return torch.ops.mkldnn._linear_pointwise(inputs, packed, bias, "none", [], "")


def _bias(*biases: torch.Tensor | None) -> torch.Tensor | None:
    present = [b.detach() for b in biases if b is not None]
    return sum(present[1:], present[0].clone()) if present else None


class PackedLinear(nn.Module):
    """``F.linear(inputs, weight, bias)`` with the weight packed for oneDNN: an ``nn.Linear``'s, or one
    a layer shares with another (an output layer tied to the embedding)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.packed, self.bias = _pack(weight), _bias(bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return _product(inputs, self.packed, self.bias)


def _lstm_update(gates: torch.Tensor, c: torch.Tensor) -> Hidden:
    """One LSTM update from the summed gate pre-activations ``(R, 4H)`` (PyTorch's order i, f, g, o)."""
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _gru_update(input_gates: torch.Tensor, hidden_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """One GRU update from ``x W_ih + b_ih`` and ``h W_hh + b_hh``, both ``(R, 3H)`` (order r, z, n)."""
    ir, iz, in_ = input_gates.chunk(3, dim=1)
    hr, hz, hn = hidden_gates.chunk(3, dim=1)
    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    n = torch.tanh(in_ + r * hn)
    return (1 - z) * n + z * h


class PackedLSTMCell(nn.Module):
    """``nn.LSTMCell`` as one packed product of ``[x, h]`` with ``[W_ih, W_hh]``."""

    def __init__(self, cell: nn.LSTMCell) -> None:
        super().__init__()
        self.input_size, self.hidden_size = cell.input_size, cell.hidden_size
        self.packed = _pack(torch.cat([cell.weight_ih, cell.weight_hh], dim=1))
        self.bias = _bias(cell.bias_ih, cell.bias_hh)

    def forward(self, inputs: torch.Tensor, state: Hidden | None = None) -> Hidden:
        unbatched = inputs.dim() == 1
        inputs = inputs.unsqueeze(0) if unbatched else inputs
        if state is None:
            zeros = inputs.new_zeros(inputs.size(0), self.hidden_size)
            state = (zeros, zeros)
        h, c = (s.unsqueeze(0) for s in state) if unbatched else state
        h, c = _lstm_update(_product(torch.cat([inputs, h], dim=1), self.packed, self.bias), c)
        return (h[0], c[0]) if unbatched else (h, c)


class PackedGRUCell(nn.Module):
    """``nn.GRUCell`` with its input and hidden weights packed."""

    def __init__(self, cell: nn.GRUCell) -> None:
        super().__init__()
        self.input_size, self.hidden_size = cell.input_size, cell.hidden_size
        self.packed_ih, self.bias_ih = _pack(cell.weight_ih), _bias(cell.bias_ih)
        self.packed_hh, self.bias_hh = _pack(cell.weight_hh), _bias(cell.bias_hh)

    def forward(self, inputs: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        unbatched = inputs.dim() == 1
        inputs = inputs.unsqueeze(0) if unbatched else inputs
        if h is None:
            h = inputs.new_zeros(inputs.size(0), self.hidden_size)
        h = h.unsqueeze(0) if unbatched else h
        h = _gru_update(_product(inputs, self.packed_ih, self.bias_ih), _product(h, self.packed_hh, self.bias_hh), h)
        return h[0] if unbatched else h


class _PackedSequence(nn.Module):
    """A one-layer, one-way ``nn.LSTM`` or ``nn.GRU`` run step by step with packed weights: the
    input products of all steps at once, the hidden product per step. Inputs as the layer takes
    them (``batch_first`` or not, batched or not; not ``PackedSequence``)."""

    def __init__(self, rnn: nn.LSTM | nn.GRU) -> None:
        super().__init__()
        self.hidden_size, self.batch_first = rnn.hidden_size, rnn.batch_first
        weights = dict(rnn.named_parameters())  # weight_ih_l0, ..., bias_hh_l0 (no biases with bias=False)
        self.packed_ih, self.bias_ih = _pack(weights["weight_ih_l0"]), _bias(weights.get("bias_ih_l0"))
        self.packed_hh, self.bias_hh = _pack(weights["weight_hh_l0"]), _bias(weights.get("bias_hh_l0"))

    def _inputs(self, inputs: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """``(B, T, E)`` and whether the input had no batch dimension."""
        unbatched = inputs.dim() == 2
        if unbatched:
            return inputs.unsqueeze(0), True
        return (inputs if self.batch_first else inputs.transpose(0, 1)), False

    def _outputs(self, outputs: list[torch.Tensor], unbatched: bool) -> torch.Tensor:
        stacked = torch.stack(outputs, dim=1)  # (B, T, H)
        if unbatched:
            return stacked[0]
        return stacked if self.batch_first else stacked.transpose(0, 1)


class PackedLSTM(_PackedSequence):
    def forward(self, inputs: torch.Tensor, state: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        inputs, unbatched = self._inputs(inputs)
        if state is None:
            zeros = inputs.new_zeros(inputs.size(0), self.hidden_size)
            h, c = zeros, zeros
        else:
            h, c = (s if unbatched else s[0] for s in state)  # (1, B, H) -> (B, H); unbatched: (1, H)
        input_gates = _product(inputs, self.packed_ih, self.bias_ih)  # (B, T, 4H)
        outputs = []
        for t in range(inputs.size(1)):
            h, c = _lstm_update(input_gates[:, t] + _product(h, self.packed_hh, self.bias_hh), c)
            outputs.append(h)
        final = (h, c) if unbatched else (h.unsqueeze(0), c.unsqueeze(0))
        return self._outputs(outputs, unbatched), final


class PackedGRU(_PackedSequence):
    def forward(self, inputs: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, unbatched = self._inputs(inputs)
        if h is None:
            h = inputs.new_zeros(inputs.size(0), self.hidden_size)
        elif not unbatched:
            h = h[0]
        input_gates = _product(inputs, self.packed_ih, self.bias_ih)  # (B, T, 3H)
        outputs = []
        for t in range(inputs.size(1)):
            h = _gru_update(input_gates[:, t], _product(h, self.packed_hh, self.bias_hh), h)
            outputs.append(h)
        return self._outputs(outputs, unbatched), (h if unbatched else h.unsqueeze(0))


def _packed(layer: nn.Module) -> nn.Module | None:
    """The packed replacement of ``layer``, or None where it is not one this module packs."""
    weights = [p for p in layer.parameters(recurse=False)]
    if not weights or any(p.dtype != torch.float32 or p.device.type != "cpu" for p in weights):
        return None
    if type(layer) is nn.Linear:
        return PackedLinear(layer.weight, layer.bias)
    if type(layer) is nn.LSTMCell:
        return PackedLSTMCell(layer)
    if type(layer) is nn.GRUCell:
        return PackedGRUCell(layer)
    if type(layer) in (nn.LSTM, nn.GRU):
        rnn = cast(nn.LSTM, layer)
        if rnn.num_layers == 1 and not rnn.bidirectional and not getattr(rnn, "proj_size", 0):
            return PackedLSTM(rnn) if type(layer) is nn.LSTM else PackedGRU(rnn)
    return None


def packed_copy(module: ModuleT) -> ModuleT:
    """A copy of ``module`` in eval mode with every layer this module can pack packed; ``module``
    is left as it is. The copy shares the tensors it does not pack with ``module`` (an embedding
    is not held twice), so it is only for inference, and only while ``module``'s weights stay
    as they were: it has no gradients to give and cannot move to another device."""
    with torch.no_grad():
        return cast(ModuleT, _sharing_copy(module)).eval()


def _sharing_copy(module: nn.Module) -> nn.Module:
    """``module`` with its packable layers packed, the rest a new module tree over the same tensors."""
    replacement = _packed(module)
    if replacement is not None:
        return replacement
    copied = copy.copy(module)  # a new object with the same attributes, whose dicts are replaced below
    copied._parameters = dict(module._parameters)
    copied._buffers = dict(module._buffers)
    copied._modules = {name: None if child is None else _sharing_copy(child) for name, child in module._modules.items()}
    return copied
