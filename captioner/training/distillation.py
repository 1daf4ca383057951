"""Holding a fine-tuned encoder's ImageNet classifier to the predictions it started with.

Open-world guidance reads the encoder's classifier, so fine-tuning for captions must
not turn it into something else: the KL divergence from the starting encoder's class
distribution is added to the loss (``classifier_distillation``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from ..captioner import Captioner
from ..encoder import Encoder
from ..registry import create_encoder
from .config import TrainConfig


def classifier_drift(logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """KL(reference || current) between class distributions ``(B, C)``, averaged over the batch."""
    return F.kl_div(logits.float().log_softmax(-1), reference_logits.float().log_softmax(-1),
                    log_target=True, reduction="batchmean")


def starting_encoder(config: TrainConfig, encoder: Encoder, resume_from: Path | None,
                     device: torch.device) -> Encoder:
    """The encoder as this run's fine-tuning found it, frozen: ``encoder`` itself (copied) at the
    start of a run; ``init_from``'s or the pretrained one when resuming."""
    if resume_from is None:
        start = copy.deepcopy(encoder)
    elif config.init_from:
        start = Captioner.from_pretrained(config.init_from).encoder
    else:
        start = create_encoder(config.encoder, pretrained=True)
    return start.to(device).requires_grad_(False).eval()
