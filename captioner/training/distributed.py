"""Multi-process training under ``torchrun``: the process group and this process's place in it."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed(device: str | None) -> tuple[int, int, str | None]:
    """(rank, world size, device) — a process group is started when run by ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    else:
        device = "cpu"
    return dist.get_rank(), world, device
