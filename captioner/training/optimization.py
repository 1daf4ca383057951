"""The optimiser (a learning rate for the decoder, another for a fine-tuned encoder) and its schedule."""

from __future__ import annotations

import math

import torch

from ..captioner import Captioner
from .config import TrainConfig


def lr_multiplier(step: int, warmup: int, total: int, schedule: str) -> float:
    """Linear warm-up over ``warmup`` steps, then constant or a cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(config: TrainConfig, captioner: Captioner) -> torch.optim.Adam:
    """Adam over the decoder (``lr``) and the encoder parameters that train (``encoder_lr``)."""
    groups = [{"params": list(captioner.decoder.parameters()), "lr": config.lr}]
    tuned = [p for p in captioner.encoder.parameters() if p.requires_grad]
    if tuned:
        groups.append({"params": tuned, "lr": config.encoder_lr})
    return torch.optim.Adam(groups, weight_decay=config.weight_decay)


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    total = steps_per_epoch * config.epochs
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, config.warmup_steps, total, config.lr_schedule)
    )
