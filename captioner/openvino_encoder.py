"""The encoder compiled by OpenVINO for a CPU: the same features, more than twice as fast.

Eager PyTorch is slowest on a CPU where EfficientNet spends its time, in depthwise
convolutions; OpenVINO's CPU plugin runs the whole network as one graph with kernels
fused for the machine (AVX2, AVX-512, AMX). The encoder's inference copy is exported
with ``torch.export`` and converted once per weights; the converted model is kept in
``~/.cache/captioner/openvino`` (converting takes seconds, reading it back a tenth of
one). In float32 the features match eager PyTorch's to rounding; where the captioner
runs its encoder in bfloat16 (:attr:`Captioner.mixed_precision`), OpenVINO does too.

``CAPTIONER_OPENVINO=0`` (or ``Captioner.openvino = False``) keeps the encoder in
PyTorch; so does a machine without the ``openvino`` package. An encoder that cannot be
exported runs in PyTorch, with one warning saying why.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .atomic import atomic_replace_folder
from .encoder import EncoderOutput
from .user_cache import user_cache_dir
from .weights_hash import update_with_weights

logger = logging.getLogger(__name__)

MODEL_FILE = "encoder.xml"  # OpenVINO's IR: this XML and its .bin of weights


def openvino_wanted(device: torch.device) -> bool:
    """Whether the encoder runs through OpenVINO on ``device``: on a CPU with the ``openvino``
    package installed, unless ``CAPTIONER_OPENVINO=0``."""
    if os.environ.get("CAPTIONER_OPENVINO", "").strip() == "0":
        return False
    return device.type == "cpu" and importlib.util.find_spec("openvino") is not None


class _FlatOutputs(nn.Module):
    """The encoder with its :class:`EncoderOutput` flattened to a tuple of tensors, as export needs."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(_distinct(_tensors(self.encoder(pixels)))[0])


def _tensors(output: EncoderOutput) -> list[torch.Tensor]:
    """The output's tensors in a fixed order, its members' included (None skipped)."""
    tensors = [t for t in (output.pooled, output.grid, output.class_logits) if t is not None]
    for member in output.members or ():
        tensors += _tensors(member)
    return tensors


def _distinct(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[int]]:
    """Each tensor once (a stack's pooled features are its first member's, and a graph output
    may not appear twice), and where each of ``tensors`` is among them."""
    distinct: list[torch.Tensor] = []
    places = []
    for tensor in tensors:
        place = next((i for i, seen in enumerate(distinct) if seen is tensor), len(distinct))
        if place == len(distinct):
            distinct.append(tensor)
        places.append(place)
    return distinct, places


def _rebuild(template: EncoderOutput, tensors: Iterator[torch.Tensor]) -> EncoderOutput:
    """An :class:`EncoderOutput` shaped like ``template`` with the next of ``tensors`` in its places."""
    pooled = next(tensors)
    grid = next(tensors) if template.grid is not None else None
    class_logits = next(tensors) if template.class_logits is not None else None
    members = None if template.members is None else tuple(_rebuild(member, tensors) for member in template.members)
    return EncoderOutput(pooled, grid, class_logits, members)


def weights_digest(module: nn.Module, pixel_shape: tuple[int, ...]) -> str:
    """A hash of what the converted model depends on: the module's class, layers and weights, the
    input's shape per image, and the torch and OpenVINO versions."""
    import openvino

    kind = f"{type(module).__module__}.{type(module).__qualname__}"
    digest = hashlib.sha256(repr((kind, repr(module), pixel_shape, torch.__version__, openvino.__version__)).encode())
    update_with_weights(digest, module)
    return digest.hexdigest()[:24]


@cache
def _core() -> Any:
    """One OpenVINO runtime per process: its CPU plugin and thread pool are shared by every compiled encoder."""
    import openvino

    return openvino.Core()


class OpenVINOEncoder:
    """An encoder (in eval mode, e.g. its fused inference copy) compiled by OpenVINO for the CPU.

    Built for pixels of one shape per image ``(C, H, W)``; any batch size. Calling it
    gives the :class:`EncoderOutput` the encoder gives, as float32 CPU tensors.
    """

    def __init__(self, encoder: nn.Module, pixel_shape: tuple[int, int, int], cache_dir: Path | None = None) -> None:
        self.pixel_shape = pixel_shape
        example = torch.zeros(2, *pixel_shape)
        with torch.no_grad():
            self._template = encoder(example)
        self._places = _distinct(_tensors(self._template))[1]  # the graph's outputs, in _tensors' order
        self._core = _core()
        self._model = self._converted(encoder, example, cache_dir or user_cache_dir("openvino"))
        self._compiled: dict[bool, Any] = {}  # by bfloat16

    def _converted(self, encoder: nn.Module, example: torch.Tensor, cache_dir: Path) -> Any:
        """The OpenVINO model of ``encoder``: read from the cache, or exported, converted and cached."""
        import openvino

        folder = cache_dir / weights_digest(encoder, self.pixel_shape)
        if (folder / MODEL_FILE).is_file():
            try:
                return self._core.read_model(folder / MODEL_FILE)
            except Exception as error:  # e.g. a truncated copy: convert again and replace it
                logger.warning("the cached OpenVINO encoder in %s is unreadable (%s); converting it again",
                               folder, " ".join(str(error).split())[:200])
        logger.info("converting the encoder for OpenVINO (once per weights; kept in %s)", cache_dir)
        with torch.no_grad():
            exported = torch.export.export(_FlatOutputs(encoder).eval(), (example,),
                                           dynamic_shapes=({0: torch.export.Dim("batch")},))
        model = openvino.convert_model(exported)
        try:  # compress_to_fp16=False: the weights stay exactly the encoder's
            atomic_replace_folder(folder, lambda staging: openvino.save_model(
                model, staging / MODEL_FILE, compress_to_fp16=False))
        except OSError as error:  # a read-only home: convert again next time
            logger.warning("could not keep the OpenVINO encoder in %s: %s", folder, error)
        return model

    def _compiled_model(self, bfloat16: bool) -> Any:
        """The model compiled for this CPU in bfloat16 or float32 (each compiled when first asked for)."""
        if bfloat16 not in self._compiled:
            self._compiled[bfloat16] = self._core.compile_model(self._model, "CPU", {
                "PERFORMANCE_HINT": "LATENCY",  # one request at a time, all cores on it
                "INFERENCE_PRECISION_HINT": "bf16" if bfloat16 else "f32",
            })
        return self._compiled[bfloat16]

    def __call__(self, pixels: torch.Tensor, bfloat16: bool = False) -> EncoderOutput:
        """Features of ``pixels (B, C, H, W)``, with ``(C, H, W)`` the shape this was built for."""
        if tuple(pixels.shape[1:]) != self.pixel_shape:
            raise ValueError(f"pixels of shape {tuple(pixels.shape[1:])} per image; "
                             f"this encoder was compiled for {self.pixel_shape}")
        request = self._compiled_model(bfloat16).create_infer_request()  # one per call: safe across threads
        outputs = request.infer([pixels.detach().to(torch.float32).contiguous().numpy()])
        distinct = [torch.from_numpy(outputs[i]) for i in range(len(outputs))]
        return _rebuild(self._template, (distinct[place] for place in self._places))
