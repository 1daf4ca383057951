"""Validation during training: beam-search captions for the validation images, scored."""

from __future__ import annotations

from typing import Any

import torch

from ..captioner import Captioner
from ..data import CaptionedImage
from ..evaluation import score_dataset_captions
from .sources import TrainingData


@torch.inference_mode()
def validate(captioner: Captioner, data: TrainingData, images: list[CaptionedImage],
             batch_size: int = 100) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """BLEU and CIDEr of the model's captions (its own decoding options), and the captions by image."""
    captioner.model.eval()
    captions: list[str] = []
    for rows in torch.arange(len(images)).split(batch_size):
        captions += [candidates[0].text for candidates in captioner.decode(data.val_features(captioner, rows))]
    scores = score_dataset_captions(images, captions, metrics=("BLEU", "CIDEr")).values
    return scores, [{"image": image.name, "caption": text} for image, text in zip(images, captions)]
