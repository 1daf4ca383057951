"""How the decoder's weights are held while it writes captions on a CPU.

Once the encoder runs through OpenVINO, the beam search bounds a CPU's speed, and most
of the search is the decoder's recurrent cell and output layer: matrix products of a few
dozen to a few hundred rows. Three ways to hold their weights (``Captioner.decoder_weights``,
``CAPTIONER_DECODER_WEIGHTS``):

- ``packed`` (the default on a CPU whose PyTorch has oneDNN): the float32 weights packed
  once for oneDNN's kernels (:mod:`captioner.packed_layers`), in the decoder and in the
  caption language model, and in the translators' decoders (``translate-rnn``). The same
  numbers; a caption changes only where two beams were tied to rounding (docs/performance.md
  has the count and the speed).
- ``float32``: the weights as PyTorch keeps them, every product through its BLAS; what a
  GPU always runs.
- ``int8``, on request: PyTorch's dynamic quantisation (``quantize_dynamic``) keeps a
  copy of the decoder whose linear and recurrent layers hold int8 weights, one scale per
  output channel, and quantises each step's inputs on the fly (FBGEMM / oneDNN: AVX2,
  AVX-512 VNNI, AMX). Not the default: on the Flickr8k validation photos it changes about
  14% of the captions, and the scores move by up to 0.003 either way.

A GPU, or a PyTorch without the kernels, keeps ``float32``. Training never sees a copy.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Literal, TypeVar, cast, get_args

import torch
from torch import nn

from .errors import CaptionerError
from .packed_layers import packed_copy, packing_available

DecoderWeights = Literal["packed", "float32", "int8"]
INT8_LAYERS = (nn.Linear, nn.LSTMCell, nn.LSTM, nn.GRUCell, nn.GRU)
X86_ENGINES = {"x86", "fbgemm", "onednn"}  # ARM's qnnpack has no per-channel dynamic kernels
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def decoder_weights_wanted(device: torch.device) -> DecoderWeights:
    """The decoder weights for ``device``: ``CAPTIONER_DECODER_WEIGHTS`` (default ``packed``) on a
    CPU whose PyTorch has the kernels it asks for (oneDNN; x86 int8 kernels), else ``float32``."""
    chosen = os.environ.get("CAPTIONER_DECODER_WEIGHTS", "").strip() or "packed"
    if chosen not in get_args(DecoderWeights):
        raise CaptionerError(f"CAPTIONER_DECODER_WEIGHTS={chosen!r}: expected one of {', '.join(get_args(DecoderWeights))}")
    possible = device.type == "cpu" and (
        chosen == "float32"
        or (chosen == "packed" and packing_available())
        or (chosen == "int8" and bool(X86_ENGINES & set(torch.backends.quantized.supported_engines))))
    return cast(DecoderWeights, chosen) if possible else "float32"


def weights_copy(module: ModuleT, weights: DecoderWeights) -> ModuleT:
    """``module`` (a decoder, or for ``packed`` the language model too) as ``weights`` asks: itself
    for ``float32``, else a copy in eval mode; ``module`` is left as it is."""
    if weights == "packed":
        return packed_copy(module)
    if weights == "int8":
        return int8_copy(module)
    return module


def int8_copy(decoder: ModuleT) -> ModuleT:
    """A copy of ``decoder`` in eval mode whose linear and recurrent layers hold int8 weights
    (one scale per output channel) and quantise their inputs per call; ``decoder`` is left as it is."""
    with warnings.catch_warnings():
        # torch marks its eager quantisation API deprecated in favour of torchao, whose quantize_
        # covers linear layers, not recurrent cells; the API is in every torch version supported here.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        qconfig = dict.fromkeys(INT8_LAYERS, per_channel_dynamic_qconfig)
        return cast(ModuleT, quantize_dynamic(copy.deepcopy(decoder).eval(), qconfig, inplace=True))
