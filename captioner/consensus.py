"""Consensus reranking: prefer the candidate caption that agrees with similar photos' captions.

Devlin et al. (2015), "Exploring Nearest Neighbor Approaches for Image Captioning": a
model's n-best for a photo is rescored by how well each candidate agrees (CIDEr-D) with
the human captions of the k training photos whose pooled encoder features are nearest
(cosine), plus a weight times the model's own score. The n-gram weights (idf) come from
the training captions, one document per photo, so a candidate's score depends only on
its own photo: the same photo gets the same caption in any batch.

A :class:`CaptionMemory` holds what this needs: the training photos' unit-length pooled
features and their captions. It lives in a model folder as ``memory.safetensors``, the
captions in its metadata (``captioner memory`` builds it). The agreement with captions
in general (the captions of 200 photos spread over the memory) may be subtracted, so
that a caption that fits this photo beats one that fits any photo.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from .atomic import atomic_write_bytes
from .cider import Captions, CiderD
from .encoder import EncoderOutput
from .encoder_stack import EncoderStack
from .errors import ModelLoadError, describe_exception
from .vocab import tokenize

if TYPE_CHECKING:
    from .data.readers import CaptionedImage


class PhotoEncoder(Protocol):
    """What a memory is built with: a model that encodes photo files (a :class:`~captioner.Captioner`;
    named by what it does, so this module needs nothing from the one that uses it)."""

    @property
    def encoder(self) -> nn.Module: ...

    def encode_images(self, images: Sequence[str], batch_size: int, on_error: Callable[[str], None],
                      progress: str | None) -> Iterator[tuple[list[int], EncoderOutput]]: ...

MEMORY_FILE = "memory.safetensors"
GENERIC_PHOTOS = 200  # how many photos' captions stand for captions in general


def pooled_encoder(encoder: nn.Module) -> nn.Module:
    """The module whose pooled features a captioner's ``encode`` returns (a stack's first member)."""
    return encoder.encoders[0] if isinstance(encoder, EncoderStack) else encoder


def encoder_fingerprint(encoder: nn.Module) -> str:
    """A hash of the weights behind ``encoder``'s pooled features, rounded to float16 (a folder's precision)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(pooled_encoder(encoder).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().to(torch.float16 if tensor.is_floating_point() else tensor.dtype)
                      .contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class CaptionMemory:
    """Training photos' unit-length pooled features ``(N, D)`` and their captions, for consensus reranking.

    ``encoder`` is the :func:`encoder_fingerprint` of the encoder that made the features:
    a captioner accepts the memory only if its own encoder has the same. A memory made
    smaller by :meth:`compressed` holds each photo's features projected onto ``d``
    orthonormal directions instead, ``(N, d)``, and that ``projection`` ``(D, d)``, which an
    image's features go through too: dot products there stay close to the cosines of the
    whole features when those directions hold most of them.
    """

    def __init__(self, features: torch.Tensor, captions: Sequence[Sequence[str]], encoder: str,
                 projection: torch.Tensor | None = None) -> None:
        if features.dim() != 2 or features.shape[0] != len(captions):
            raise ValueError(f"{tuple(features.shape)} features for {len(captions)} photos' captions")
        for index, photo in enumerate(captions):
            if isinstance(photo, str) or not photo or not all(isinstance(caption, str) for caption in photo):
                raise ValueError(f"photo {index}'s captions must be a non-empty list of strings")
        if projection is not None and (projection.dim() != 2 or projection.shape[1] != features.shape[1]):
            raise ValueError(f"a {tuple(projection.shape)} projection does not lead to {features.shape[1]}-d features")
        unit = projection is None  # projected features keep the lengths the projection left them
        self.features = torch.nn.functional.normalize(features.float(), dim=1) if unit else features.float()
        self.captions = [list(photo) for photo in captions]
        self.encoder = encoder
        self.projection = None if projection is None else projection.float()

    @cached_property
    def _scoring(self) -> tuple[CiderD, list[Captions], Captions]:
        """The idf table, each photo's packed captions and the generic sample's (built on first use: seconds)."""
        words = [[tokenize(caption) for caption in photo] for photo in self.captions]
        cider = CiderD(words)
        photos = [cider.pack(photo) for photo in words]
        sample = photos[:: max(1, len(self) // GENERIC_PHOTOS)][:GENERIC_PHOTOS]
        return cider, photos, Captions.join(sample)

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def feature_dim(self) -> int:
        """``D``: the size of the pooled features it compares (before any compression)."""
        return int(self.features.shape[1] if self.projection is None else self.projection.shape[0])

    def compressed(self, components: int) -> CaptionMemory:
        """This memory with each photo's features projected onto the ``components`` directions that hold
        most of them (the top right singular vectors of the ``(N, D)`` features).

        Neighbours are then found in that space: 256 of Lite0's 1,280 dimensions make the
        6,000 Flickr8k training photos' memory 5.6 MB instead of 17.2 MB (docs/training.md
        has what that costs the reranking).
        """
        if self.projection is not None:
            raise ValueError(f"this memory is already compressed to {self.features.shape[1]} components")
        limit = min(len(self), self.feature_dim)
        if not 0 < components < limit:
            raise ValueError(f"a memory of {len(self)} photos' {self.feature_dim}-d features can keep 1 to {limit - 1} "
                             f"components, not {components}")
        _, _, directions = torch.linalg.svd(self.features, full_matrices=False)  # (min(N, D), D)
        projection = directions[:components].T.contiguous()  # (D, d)
        return CaptionMemory(self.features @ projection, self.captions, self.encoder, projection)

    def nearest(self, pooled: torch.Tensor, k: int) -> list[list[int]]:
        """The ``k`` photos most similar (cosine; for a compressed memory, after the projection) to each row
        of ``pooled`` ``(B, D)``."""
        query = torch.nn.functional.normalize(pooled.detach().float().cpu(), dim=1)  # (B, D)
        if self.projection is not None:
            query = query @ self.projection  # (B, d)
        return (query @ self.features.T).topk(min(k, len(self)), dim=1).indices.tolist()

    def rerank_scores(self, pooled: torch.Tensor, candidates: Sequence[Sequence[Sequence[str]]],
                      model_scores: Sequence[Sequence[float]], neighbours: int, weight: float = 0.0,
                      generic: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image (a row of ``pooled``): its candidates' agreement (CIDEr-D with the captions of its
        ``neighbours`` nearest photos) and their reranking scores, agreement + ``weight`` * model score
        - ``generic`` * agreement with captions in general (a fixed sample of the memory's photos)."""
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, not {neighbours}")
        cider, photos, sample = self._scoring
        scored = []
        for near, words, own in zip(self.nearest(pooled, neighbours), candidates, model_scores):
            packed = cider.pack(words)
            agreement = cider.consensus(packed, Captions.join([photos[j] for j in near]))
            score = agreement + weight * np.asarray(own, dtype=np.float64)
            if generic:
                score = score - generic * cider.consensus(packed, sample)
            scored.append((agreement, score))
        return scored

    def save(self, folder: str | Path) -> None:
        """Write ``memory.safetensors``: float16 features (and projection), the captions and fingerprint as metadata."""
        metadata = {"captions": json.dumps(self.captions), "encoder": self.encoder}
        tensors = {"features": self.features}
        if self.projection is not None:
            tensors["projection"] = self.projection
        atomic_write_bytes(Path(folder) / MEMORY_FILE,
                           save({name: tensor.half().contiguous() for name, tensor in tensors.items()}, metadata=metadata))

    @staticmethod
    def remove(folder: str | Path) -> None:
        """Delete a folder's memory, if it has one."""
        (Path(folder) / MEMORY_FILE).unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: str | Path) -> CaptionMemory | None:
        """The folder's memory, or None when it has none; ``ModelLoadError`` naming the file if it is broken."""
        path = Path(folder) / MEMORY_FILE
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                features = handle.get_tensor("features")
                projection = handle.get_tensor("projection") if "projection" in handle.keys() else None
            return cls(features, json.loads(metadata["captions"]), metadata["encoder"], projection)
        except (OSError, KeyError, TypeError, ValueError, SafetensorError) as error:
            raise ModelLoadError(f"{path}: {describe_exception(error)}") from None


def build_memory(captioner: PhotoEncoder, images: Sequence[CaptionedImage], batch_size: int = 64,
                 on_error: Callable[[str], None] = lambda message: None, progress: bool = False) -> CaptionMemory:
    """A memory of ``images`` (captioned photos, e.g. a training split) as ``captioner``'s encoder sees them.

    A photo that cannot be read is reported to ``on_error`` (one line naming it) and left out.
    """
    uncaptioned = [str(image.path) for image in images if not image.captions]
    if uncaptioned:
        raise ValueError(f"{uncaptioned[0]}: no captions to remember ({len(uncaptioned)} such photos)")
    features, captions = [], []
    paths = [str(image.path) for image in images]
    for indices, encoded in captioner.encode_images(paths, batch_size, on_error, "remembering" if progress else None):
        features.append(encoded.pooled.float().cpu())
        captions += [images[index].captions for index in indices]
    if not captions:
        raise ValueError("none of the photos could be read")
    return CaptionMemory(torch.cat(features), captions, encoder_fingerprint(captioner.encoder))
