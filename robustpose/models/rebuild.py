"""Rebuild a model from a robustpose checkpoint: the registry builds the architecture the
meta names, the checkpoint module loads the weights. Its own module because it needs both,
and the registry already calls the checkpoint module (ImageNet backbones): here neither
has to import the other back."""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .checkpoint import checkpoint_meta, extract_state_dict, match_weights, read_checkpoint
from .registry import create_model

__all__ = ["load_model", "model_from_checkpoint_object"]


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from a robustpose checkpoint's meta (``name``, ``num_joints``, ``extra``,
    ``kwargs``, written by ``save_checkpoint``) and load its weights strictly."""
    return model_from_checkpoint_object(read_checkpoint(path, map_location), path)


def model_from_checkpoint_object(obj: Any, path: str | os.PathLike) -> nn.Module:
    """:func:`load_model` on a file already read by :func:`read_checkpoint`."""
    meta = checkpoint_meta(obj)
    if "name" not in meta:
        raise ValueError(f"{path}: no robustpose meta with a model name; build the model with "
                         "create_model(...) and use load_checkpoint(model, path)")
    model = create_model(str(meta["name"]), num_joints=int(meta.get("num_joints", 17)),
                         extra=meta.get("extra") or None, rcc=meta.get("rcc"),
                         **dict(meta.get("kwargs") or {}))
    state, fmt = extract_state_dict(obj, path)
    report, usable = match_weights(model, state, str(path), fmt)
    if not report.ok:
        raise ValueError(f"{path}: checkpoint does not fit {meta['name']}: {report.summary()}")
    model.load_state_dict(usable, strict=False)
    return model
