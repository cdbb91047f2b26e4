"""Model registry: ``register_model``, ``create_model``, ``list_models`` (timm-style)."""
from __future__ import annotations

import fnmatch
import os
from typing import Any, Callable, Mapping

import torch

from .base import PoseModel

_REGISTRY: dict[str, Callable[..., PoseModel]] = {}


def register_model(name: str | Callable[..., PoseModel] | None = None,
                   builder: Callable[..., PoseModel] | None = None):
    """Register a builder ``fn(num_joints=17, extra=None, **kw) -> PoseModel``.

    Usable as ``register_model('name', fn)``, ``@register_model('name')`` or bare
    ``@register_model`` (the function's name). Registering a taken name raises ``ValueError``.
    """
    def add(key: str, fn: Callable[..., PoseModel]) -> Callable[..., PoseModel]:
        if key in _REGISTRY and _REGISTRY[key] is not fn:
            raise ValueError(f"model {key!r} is already registered")
        _REGISTRY[key] = fn
        return fn

    if callable(name):
        return add(name.__name__, name)
    if builder is not None:
        return add(str(name), builder)
    return lambda fn: add(str(name) if name else fn.__name__, fn)


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered names matching a shell-style ``pattern`` (e.g. ``'hrnet*'``)."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def create_model(name: str, num_joints: int = 17, extra: Mapping[str, Any] | None = None,
                 pretrained: str | os.PathLike | None = None, seed: int = 0,
                 **kw: Any) -> PoseModel:
    """Build a registered model.

    Args:
        name: a registered name (``list_models()``), e.g. ``'hrnet_w32'``, ``'sbl_resnet50'``.
        num_joints: K, the number of heatmaps / coordinate pairs.
        extra: the official config's ``MODEL.EXTRA`` block as a dict; overrides the preset of
            ``name`` (e.g. stage widths for ``'hrnet'``, ``NUM_LAYERS`` for ``'sbl_resnet'``).
        pretrained: path to a local ImageNet backbone checkpoint; only the backbone is loaded
            (see ``load_pretrained_backbone``). robustpose never downloads weights.
        seed: parameters are initialised from this seed on a forked RNG, so the same call
            builds the same weights and the global RNG state is left untouched.
        **kw: architecture-specific options (``num_stacks`` for ``'hourglass'``,
            ``coord_units`` for ``'deeppose_*'``...).
    """
    if name not in _REGISTRY:
        close = [n for n in _REGISTRY if name.split("_")[0] in n][:8]
        raise ValueError(f"unknown model {name!r}; registered: {close or list_models()}")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"{name}: extra must be a dict (the MODEL.EXTRA block), got {type(extra).__name__}")
    if pretrained is not None and not isinstance(pretrained, (str, os.PathLike)):
        raise ValueError(f"{name}: pretrained must be a path to a local checkpoint file "
                         f"(robustpose never downloads weights), got {pretrained!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = _REGISTRY[name](num_joints=num_joints, extra=extra, **kw)
    model.model_name = name
    # Plain values only: save_checkpoint stores this so load_model can rebuild the model.
    model.model_config = {"name": name, "num_joints": int(num_joints),
                          "extra": dict(getattr(model, "config", {}) or {}),
                          "kwargs": {k: v for k, v in kw.items() if isinstance(v, (int, float, str, bool))}}
    if pretrained is not None:
        from .checkpoint import load_pretrained_backbone
        load_pretrained_backbone(model, pretrained)
    return model
