"""What the trainer's methods call (:class:`PoseForward`) and small batch helpers."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel


class PoseForward(nn.Module):
    """What methods call: ``f(x)`` -> final output, ``f(x, all_outputs=True)`` -> list.

    Wrapping this (not the bare model) in DDP keeps gradient sync for ``forward_all``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, all_outputs: bool = False) -> Any:
        if not all_outputs:
            return self.model(images)
        if hasattr(self.model, "forward_all"):
            return list(self.model.forward_all(images))
        return [self.model(images)]


def _bare(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (checkpoints never carry 'module.' prefixes)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def _to_device(batch: dict, device: torch.device) -> dict:
    out = dict(batch)
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device, non_blocking=True)
    return out


def invalid_items(batch: dict) -> tuple[int, str]:
    """(number of items marked invalid, the first one's reason) of a collated training
    batch: unreadable images come as zero-weight items (``meta['valid']`` False)."""
    meta = batch.get("meta")
    valid = meta.get("valid") if isinstance(meta, dict) else None
    if valid is None:
        return 0, ""
    bad = ~torch.as_tensor(valid, dtype=torch.bool).reshape(-1)
    errors = meta.get("error") or []
    first = next((str(errors[i]) for i in bad.nonzero().flatten().tolist()
                  if i < len(errors) and errors[i]), "")
    return int(bad.sum()), first
