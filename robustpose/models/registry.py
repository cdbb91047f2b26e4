"""Model registry: ``register_model``, ``create_model``, ``list_models`` (timm-style)."""
from __future__ import annotations

import fnmatch
import os
from typing import Any, Callable, Mapping

import torch

from .base import PoseModel
from .spectral import apply_spectral_norm, pop_spectral_options

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
                 rcc: bool | Mapping[str, Any] | None = None, **kw: Any) -> PoseModel:
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
            ``coord_units`` for ``'deeppose_*'``...); for every architecture
            ``spectral_norm`` ('all' | 'backbone' | 'head' | true) and
            ``spectral_norm_iters`` (robustpose.models.spectral).
        rcc: the RCC head option of every heatmap architecture (stable heatmap
            regression): ``True`` (defaults) or a mapping of ``robustpose.models.rcc.RCC``
            options puts the parameter-free RCC layer on the outputs
            (``robustpose.models.rcc.with_rcc``), recorded in ``model_config['rcc']``;
            in a config ``model.kwargs: {rcc: true}``.
    """
    if name not in _REGISTRY:
        close = [n for n in _REGISTRY if name.split("_")[0] in n][:8]
        raise ValueError(f"unknown model {name!r}; registered: {close or list_models()}")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"{name}: extra must be a dict (the MODEL.EXTRA block), got {type(extra).__name__}")
    if pretrained is not None and not isinstance(pretrained, (str, os.PathLike)):
        raise ValueError(f"{name}: pretrained must be a path to a local checkpoint file "
                         f"(robustpose never downloads weights), got {pretrained!r}")
    spectral = pop_spectral_options(kw)  # the 'Lipschitz' option of every architecture
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = _REGISTRY[name](num_joints=num_joints, extra=extra, **kw)
        if spectral:  # inside the fork: the power-method start vectors are seeded too
            apply_spectral_norm(model, spectral["spectral_norm"], spectral["spectral_norm_iters"])
    model.model_name = name
    # Plain values only: save_checkpoint stores this so load_model can rebuild the model.
    model.model_config = {"name": name, "num_joints": int(num_joints),
                          "extra": dict(getattr(model, "config", {}) or {}),
                          "kwargs": {**{k: v for k, v in kw.items() if isinstance(v, (int, float, str, bool))},
                                     **spectral}}
    if pretrained is not None:
        from .checkpoint import load_pretrained_backbone
        load_pretrained_backbone(model, pretrained)
    from .rcc import rcc_config, with_rcc
    rcc_options = rcc_config(rcc)
    if rcc_options is not None:
        with_rcc(model, **rcc_options)
    return model
