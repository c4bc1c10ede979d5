"""torch.distributed set-up for one CPU process, one GPU or many (``torchrun`` + DDP).

``torchrun`` exports ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; when ``WORLD_SIZE`` > 1 we join the process group (NCCL on CUDA, gloo on CPU)
and every process trains a DDP replica on its own ``DistributedSampler`` shard.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits.

    Attributes:
        rank: global rank (0 = the one that logs and writes the shared files).
        local_rank: rank on this host (selects the GPU).
        world_size: number of processes.
        device: torch device of this process.
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group is in use."""
        return self.world_size > 1


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when CUDA is available else cpu.

    Raises:
        ValueError: ``"cuda"`` requested without CUDA.
    """
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device: 'cuda' requested but torch.cuda.is_available() is False")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device_choice: str = "auto") -> DistInfo:
    """Join the process group described by the torchrun environment (if any).

    Returns:
        :class:`DistInfo` (world size 1 without torchrun variables).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    device = resolve_device(device_choice, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, local, world, device)


def ensure_process_group(info: DistInfo) -> None:
    """Join a one-process group when none exists (FSDP2 needs one even for a single process).

    Without torchrun (or with ``--nproc_per_node 1``) the group lives in this process only
    (``torch.distributed.HashStore``); with more processes :func:`init_distributed` made it.
    """
    if dist.is_initialized():
        return
    if info.world_size > 1:
        raise RuntimeError("ensure_process_group: world size > 1 but no process group was joined")
    backend = "nccl" if info.device.type == "cuda" else "gloo"
    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op for a single process)."""
    if info.distributed:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group if this process joined one (a one-process group included)."""
    if dist.is_initialized():
        dist.destroy_process_group()
