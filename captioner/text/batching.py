"""Padding and length-sorted batches under a token budget, so any mix of lengths fits in memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

MAX_BATCH_TOKENS = 32_768
"""Most (padded) tokens per batch: a 1,000-word review goes alone, short sentences go hundreds at a time."""


def pad(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids ``(B, T)`` and lengths ``(B,)``."""
    lengths = torch.tensor([len(seq) for seq in sequences], dtype=torch.long)
    padded = torch.full((len(sequences), max(int(lengths.max()), 1)), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        padded[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return padded, lengths


def length_batches(lengths: Sequence[int], max_tokens: int = MAX_BATCH_TOKENS, max_rows: int = 512) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length, longest first, each under ``max_tokens`` padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for index in order:
        longest = lengths[batch[0]] if batch else lengths[index]
        if batch and (len(batch) + 1 > max_rows or (len(batch) + 1) * max(longest, 1) > max_tokens):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch
