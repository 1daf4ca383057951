"""An on-disk cache of frozen-encoder features, so decoder training never re-runs the CNN.

Entries are keyed by the encoder (name, preprocessing and a fingerprint of its weights)
and by the SHA-1 of each image file's bytes: renaming a file reuses its features,
editing it does not. Each entry is one small safetensors file written atomically, so an
interrupted extraction resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .atomic import atomic_write_bytes
from .encoder import Encoder, EncoderOutput
from .images import load_image, preprocess
from .user_cache import user_cache_dir
from .weights_hash import update_with_weights


def default_cache_dir() -> Path:
    return user_cache_dir("features")


def file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def encoder_fingerprint(name: str, encoder: Encoder) -> str:
    """A short hash of the encoder's name, preprocessing and weights."""
    digest = hashlib.sha1(json.dumps([name, encoder.config.to_dict()], sort_keys=True).encode())
    update_with_weights(digest, encoder)
    return digest.hexdigest()[:16]


class _Images(Dataset):
    def __init__(self, paths: list[Path], encoder: Encoder) -> None:
        self.paths, self.config = paths, encoder.config

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return preprocess(load_image(self.paths[index]), self.config)


class FeatureCache:
    """Features of one encoder for many image files, stored under ``root``."""

    def __init__(self, root: Path, encoder_name: str, encoder: Encoder, dtype: torch.dtype = torch.float16) -> None:
        self.encoder, self.dtype = encoder, dtype
        self.dir = Path(root) / f"{encoder_name}-{encoder_fingerprint(encoder_name, encoder)}"

    def _entry(self, digest: str) -> Path:
        return self.dir / digest[:2] / f"{digest}.safetensors"

    @torch.inference_mode()
    def extract(self, paths: list[Path], batch_size: int = 64, num_workers: int = 1, device: str = "cpu",
                progress: bool = True) -> list[str]:
        """Encode every image not cached yet; returns the digests of ``paths`` in order."""
        digests = [file_digest(p) for p in paths]
        todo = sorted({d: p for d, p in zip(digests, paths) if not self._entry(d).is_file()}.items())
        if todo:
            loader = DataLoader(_Images([p for _, p in todo], self.encoder), batch_size=batch_size,
                                num_workers=num_workers, pin_memory=device.startswith("cuda"))
            encoder = self.encoder.to(device).eval()
            done = 0
            for pixels in tqdm(loader, desc="encoding images", unit="batch", disable=not progress):
                out = encoder(pixels.to(device, non_blocking=True))
                for row in range(pixels.size(0)):
                    tensors = {"pooled": out.pooled[row].to(self.dtype).cpu().contiguous()}
                    if out.grid is not None:
                        tensors["grid"] = out.grid[row].to(self.dtype).cpu().contiguous()
                    atomic_write_bytes(self._entry(todo[done][0]), save(tensors))
                    done += 1
        return digests

    def load(self, digests: list[str]) -> EncoderOutput:
        """Stack cached features for ``digests`` (all must be extracted): pooled ``(N, D)``, grid ``(N, R, D)`` or None."""
        entries = [load_file(self._entry(d)) for d in digests]
        pooled = torch.stack([e["pooled"] for e in entries])
        grid = torch.stack([e["grid"] for e in entries]) if entries and "grid" in entries[0] else None
        return EncoderOutput(pooled, grid)
