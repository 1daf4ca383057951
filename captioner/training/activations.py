"""Fine-tuning on a CPU: the frozen stages run once per image, so an epoch costs only the top stages."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..encoder import Encoder
from ..errors import CaptionerError
from .pixels import PixelStore


@dataclass
class CachedActivations:
    """The input of the first fine-tuned stage for every image, ``(N, C, h, w)`` float16, and the
    encoder's class logits ``(N, classes)`` as fine-tuning found them (None without a classifier)."""

    activations: torch.Tensor
    class_logits: torch.Tensor | None

    @classmethod
    @torch.no_grad()
    def compute(cls, encoder: Encoder, pixels: PixelStore, first_stage: int, reference: Encoder | None = None,
                batch_size: int = 64) -> CachedActivations:
        """Run the stages before ``first_stage`` over every image once (checking that the stages
        compose the encoder, which caching relies on); the class logits come from ``reference``
        (the encoder fine-tuning started from) when given, else from ``encoder``."""
        activations, logits = [], []
        for index, rows in enumerate(torch.arange(len(pixels)).split(batch_size)):
            batch = pixels.batch(rows)
            hidden = encoder.activations(batch, first_stage)
            output = encoder.forward_from(hidden, first_stage)
            if index == 0 and not torch.allclose(output.pooled, encoder(batch).pooled, rtol=1e-3, atol=1e-4):
                raise CaptionerError(f"{type(encoder).__name__}: its stages() do not compute what the encoder "
                                     "computes, so their activations cannot be cached (set cache_activations = false)")
            activations.append(hidden.to(torch.float16).cpu())
            class_logits = reference(batch).class_logits if reference is not None else output.class_logits
            if class_logits is not None:
                logits.append(class_logits.float().cpu())
        return cls(torch.cat(activations), torch.cat(logits) if logits else None)
