"""torch.distributed helpers: set-up from torchrun's environment, sharding, gathering.

``torchrun --nproc_per_node N -m robustpose train CONFIG`` sets RANK / WORLD_SIZE /
LOCAL_RANK; :func:`init_distributed` then starts a process group (nccl on CUDA, gloo on
CPU). Without those variables everything runs as a single process (world size 1).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, and its ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = None) -> DistInfo:
    """Start the process group when launched by torchrun; pick this process's device.

    Args:
        device: 'cpu', 'cuda' or None (CUDA when available).
    """
    want_cuda = torch.cuda.is_available() if device in (None, "auto") else str(device).startswith("cuda")
    if want_cuda and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if want_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    initialized_here = False
    if world > 1 and not (dist.is_available() and dist.is_initialized()):
        dist.init_process_group(backend="nccl" if want_cuda else "gloo",
                                device_id=dev if want_cuda else None)
        initialized_here = True
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev,
                    initialized_here=initialized_here)


def shutdown(info: DistInfo) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if info.initialized_here and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


@contextlib.contextmanager
def rank_zero_first(info: DistInfo) -> Iterator[None]:
    """Run the block on rank 0 first, then on the other ranks (caches built once)."""
    if info.distributed and not info.is_main:
        dist.barrier()
    yield
    if info.distributed and info.is_main:
        dist.barrier()


def shard_indices(n: int, info: DistInfo) -> list[int]:
    """This rank's share of ``range(n)`` for evaluation: strided, no padding, no repeats."""
    return list(range(info.rank, n, info.world_size))


def gather_to_main(obj: Any, info: DistInfo) -> list[Any] | None:
    """Every rank's ``obj`` as a list on rank 0 (``None`` elsewhere)."""
    if not info.distributed:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered if info.is_main else None


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean(value: float, info: DistInfo) -> float:
    """Mean of a float over ranks (for logging losses)."""
    if not info.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64,
                          device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    return float(tensor.item()) / info.world_size


@contextlib.contextmanager
def no_sync(*modules: torch.nn.Module) -> Iterator[None]:
    """DDP's ``no_sync`` for every DDP-wrapped module given; a no-op for the others.

    Inside it, backward passes of those modules accumulate gradients locally instead of
    all-reducing them. DDP decides at *forward* time, so the forward and the backward
    both go inside the block. Use it where one player's backward must not sync another
    player's gradients (AdvMix's generator step back-propagates through the pose model).
    """
    from torch.nn.parallel import DistributedDataParallel
    with contextlib.ExitStack() as stack:
        for module in modules:
            if isinstance(module, DistributedDataParallel):
                stack.enter_context(module.no_sync())
        yield
