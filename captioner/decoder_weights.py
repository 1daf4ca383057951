"""The decoder in int8 for a CPU, on request: a faster search, about one caption in seven changed.

Once the encoder runs through OpenVINO, the beam search bounds a CPU's speed, and most
of the search is the decoder's recurrent cell and output layer: matrix products of a few
dozen to a few hundred rows. PyTorch's dynamic quantisation (``quantize_dynamic``) keeps
a copy of the decoder whose linear and recurrent layers hold int8 weights, one scale per
output channel, and quantises each step's inputs on the fly, so the products run on the
CPU's int8 kernels (FBGEMM / oneDNN: AVX2, AVX-512 VNNI, AMX).

It is not the default: on the Flickr8k validation photos it changes about 14% of the
captions, and the scores move by up to 0.003 either way (docs/performance.md has the
measured effect on speed and captions). ``CAPTIONER_DECODER_WEIGHTS=int8`` (or
``Captioner.decoder_weights = "int8"``) turns it on; a GPU, or a PyTorch without x86 int8
kernels, keeps ``float32``. Training never sees the copy.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Literal, TypeVar, cast, get_args

import torch
from torch import nn

from .errors import CaptionerError

DecoderWeights = Literal["float32", "int8"]
INT8_LAYERS = (nn.Linear, nn.LSTMCell, nn.LSTM, nn.GRUCell, nn.GRU)
X86_ENGINES = {"x86", "fbgemm", "onednn"}  # ARM's qnnpack has no per-channel dynamic kernels
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def decoder_weights_wanted(device: torch.device) -> DecoderWeights:
    """The decoder weights for ``device``: ``CAPTIONER_DECODER_WEIGHTS`` (default ``float32``),
    where it says ``int8`` only on a CPU whose PyTorch has x86 int8 kernels."""
    chosen = os.environ.get("CAPTIONER_DECODER_WEIGHTS", "").strip() or "float32"
    if chosen not in get_args(DecoderWeights):
        raise CaptionerError(f"CAPTIONER_DECODER_WEIGHTS={chosen!r}: expected one of {', '.join(get_args(DecoderWeights))}")
    int8_possible = device.type == "cpu" and bool(X86_ENGINES & set(torch.backends.quantized.supported_engines))
    return cast(DecoderWeights, chosen) if int8_possible else "float32"


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
