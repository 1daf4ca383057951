"""Training captions as token tensors, and the shuffled batches an epoch walks through."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import CaptionedImage
from ..vocab import Vocabulary
from .augment import mirrorable

CHUNK_BATCHES = 50  # batches per chunk sorted by length


@dataclass
class CaptionPairs:
    """Every (image, reference caption) pair: image row ``(P,)``, padded token ids ``(P, L)``
    and whether the image may be mirrored for that caption ``(P,)``."""

    image_index: torch.Tensor
    tokens: torch.Tensor
    mirrorable: torch.Tensor


def encode_captions(images: list[CaptionedImage], vocab: Vocabulary, max_words: int) -> CaptionPairs:
    rows, encoded, flags = [], [], []
    for index, image in enumerate(images):
        for caption in image.captions:
            rows.append(index)
            encoded.append(vocab.encode(caption, max_length=max_words))
            flags.append(mirrorable(caption))
    tokens = torch.zeros(len(encoded), max(map(len, encoded)), dtype=torch.long)  # <pad> = 0
    for i, ids in enumerate(encoded):
        tokens[i, : len(ids)] = torch.tensor(ids)
    return CaptionPairs(torch.tensor(rows), tokens, torch.tensor(flags))


def caption_batches(pairs: CaptionPairs, batch_size: int, generator: torch.Generator,
                    full_only: bool = False) -> list[torch.Tensor]:
    """Shuffled batches of caption rows, similar lengths together (less padding per step).

    Rows are shuffled, cut into chunks of ``CHUNK_BATCHES`` batches, sorted by length
    inside each chunk, batched, and the batches shuffled. ``full_only`` drops short
    batches (DDP needs the same batch size in every process).
    """
    order = torch.randperm(len(pairs.tokens), generator=generator)
    lengths = (pairs.tokens != Vocabulary.pad_id).sum(1)
    batches: list[torch.Tensor] = []
    for chunk in order.split(batch_size * CHUNK_BATCHES):
        batches += list(chunk[lengths[chunk].argsort(stable=True)].split(batch_size))
    if full_only:
        batches = [b for b in batches if len(b) == batch_size]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def image_batches(count: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches of image rows (self-critical training samples its own captions)."""
    return list(torch.randperm(count, generator=generator).split(batch_size))
