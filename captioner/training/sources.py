"""What the trained modules read for each image: cached features, decoded pixels or cached activations.

- :class:`CachedFeatures` (``mode = "frozen"``): the encoder's output, extracted once
  into the feature cache; only the decoder trains.
- :class:`DecodedPixels` (``mode = "finetune"``): every image decoded once into memory,
  augmented per batch; the encoder's top stages train with the decoder.
- :class:`FrozenStageActivations` (``finetune`` with ``cache_activations``): the input of
  the first fine-tuned stage, computed once, so an epoch runs only the tuned stages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..captioner import Captioner
from ..data import CaptionedImage
from ..encoder import Encoder, EncoderOutput
from ..feature_cache import FeatureCache, default_cache_dir
from .activations import CachedActivations
from .augment import Augmentation
from .config import TrainConfig
from .pixels import PixelStore

Rows = torch.Tensor  # (B,) row numbers into the training (or validation) images


class TrainingData(ABC):
    """Training inputs for rows of the training images, and features for rows of the validation images."""

    first_stage = 0  # the encoder stage a fine-tuned encoder starts from (0: pixels)

    @abstractmethod
    def train_batch(self, rows: Rows, mirrorable: torch.Tensor,
                    generator: torch.Generator) -> tuple[Any, torch.Tensor | None]:
        """The trained modules' input for ``rows`` and, when distilling, the class logits ``(B, C)``
        the encoder started with."""

    @abstractmethod
    def val_features(self, captioner: Captioner, rows: Rows) -> EncoderOutput:
        """Encoder features of validation ``rows``, as the model being trained computes them."""


class CachedFeatures(TrainingData):
    """Frozen-encoder features ``(N, D)`` pooled and ``(N, h*w, D)`` grid (or None), kept in memory."""

    def __init__(self, train: EncoderOutput, val: EncoderOutput, device: torch.device) -> None:
        self.train, self.val, self.device = train, val, device

    @classmethod
    def extract(cls, config: TrainConfig, encoder: Encoder, train_images: list[CaptionedImage],
                val_images: list[CaptionedImage], device: torch.device, *, distributed: bool, is_main: bool,
                progress: bool) -> CachedFeatures:
        """Read the images' features from the cache, extracting those it lacks (rank 0 first under DDP)."""
        cache = FeatureCache(Path(config.cache_dir or default_cache_dir()), config.encoder, encoder)
        paths = [image.path for image in train_images + val_images]
        if distributed and not is_main:
            dist.barrier()  # rank 0 fills the cache first; the others then find every entry there
        digests = cache.extract(paths, num_workers=config.num_workers, device=str(device), progress=progress)
        if distributed and is_main:
            dist.barrier()
        features = cache.load(digests)
        n = len(train_images)
        return cls(features.rows(slice(None, n)), features.rows(slice(n, None)), device)

    def train_batch(self, rows, mirrorable, generator):
        return self.train.rows(rows).to(self.device, torch.float32), None

    def val_features(self, captioner, rows):
        return self.val.rows(rows).to(self.device, torch.float32)


class DecodedPixels(TrainingData):
    """Images decoded once (:class:`PixelStore`), augmented per batch; the class logits to hold the
    classifier to come from ``reference``, the encoder as fine-tuning found it."""

    def __init__(self, train: PixelStore, val: PixelStore, augmentation: Augmentation | None,
                 reference: Encoder | None) -> None:
        self.train, self.val, self.augmentation, self.reference = train, val, augmentation, reference

    def train_batch(self, rows, mirrorable, generator):
        pixels = self.train.batch(rows, self.augmentation, mirrorable, generator)
        if self.reference is None:
            return pixels, None
        with torch.no_grad():
            return pixels, self.reference(pixels).class_logits

    def val_features(self, captioner, rows):
        return captioner.encode(self.val.batch(rows))


class FrozenStageActivations(TrainingData):
    """The input of encoder stage ``first_stage`` for every image (:class:`CachedActivations`)."""

    def __init__(self, train: CachedActivations, val: CachedActivations, first_stage: int, distill: bool,
                 device: torch.device) -> None:
        self.train, self.val, self.first_stage, self.distill, self.device = train, val, first_stage, distill, device

    def train_batch(self, rows, mirrorable, generator):
        logits = self.train.class_logits if self.distill else None
        return (self.train.activations[rows].to(self.device, torch.float32),
                None if logits is None else logits[rows].to(self.device))

    def val_features(self, captioner, rows):
        hidden = self.val.activations[rows].to(self.device, torch.float32)
        return captioner.encoder.forward_from(hidden, self.first_stage)


def finetuning_data(config: TrainConfig, encoder: Encoder, train_images: list[CaptionedImage],
                    val_images: list[CaptionedImage], first_stage: int, reference: Encoder | None,
                    device: torch.device, progress: bool) -> DecodedPixels | FrozenStageActivations:
    """Pixels of every image, or (``cache_activations``) the activations below ``first_stage``."""
    train, val = (PixelStore([image.path for image in images], encoder.config, device,
                             num_workers=config.num_workers, progress=progress)
                  for images in (train_images, val_images))
    if config.cache_activations:
        train_cache, val_cache = (CachedActivations.compute(encoder, store, first_stage, reference)
                                  for store in (train, val))
        return FrozenStageActivations(train_cache, val_cache, first_stage, reference is not None, device)
    return DecodedPixels(train, val, Augmentation() if config.augment else None, reference)
