"""Weight averaging: one model whose weights are the mean of several of the same shape.

Averaging the checkpoints of one training run (for example the best epoch and the last
ones) usually scores a little better than any of them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from .captioner import Captioner
from .errors import ModelLoadError
from .modelfile import WEIGHTS_FILE


def _architecture(captioner: Captioner) -> tuple:
    config = captioner.model_config()
    return config.encoder, config.encoder_config, config.decoder, config.decoder_hparams


def average_models(folders: list[str | Path], device: str | None = "cpu") -> Captioner:
    """The first model of ``folders`` with every floating-point tensor replaced by the mean over all."""
    if not folders:
        raise ValueError("average_models needs at least one model folder")
    captioner = Captioner.from_pretrained(folders[0], device=device)
    expected = captioner.model.state_dict()
    total = {name: torch.zeros_like(value, dtype=torch.float64) for name, value in expected.items()
             if value.is_floating_point()}
    for folder in folders:
        other = Captioner.from_pretrained(folder, device="cpu")  # validates config, vocabulary and shapes
        if _architecture(other) != _architecture(captioner) or other.vocab != captioner.vocab:
            raise ModelLoadError(f"{folder}: not the same architecture and vocabulary as {folders[0]}; cannot average")
        tensors = load_file(Path(folder) / WEIGHTS_FILE)
        for name in total:
            total[name] += tensors[name].double()
    captioner.model.load_state_dict(
        {name: (total[name] / len(folders)).to(value.dtype) if name in total else value for name, value in expected.items()}
    )
    return captioner
