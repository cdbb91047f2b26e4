"""Model registry: ``register_model``, ``create_model``, ``list_models``, ``get_default_cfg``
(timm-style; the table is a :class:`robustpose.utils.registry.Registry`)."""
from __future__ import annotations

import copy
import os
from typing import Any, Callable, Mapping

import torch

from robustpose.utils.registry import Registry, decorator_or_call

from .base import PoseModel
from .spectral import apply_spectral_norm, pop_spectral_options

#: name -> builder ``fn(num_joints=17, extra=None, **kw) -> PoseModel``; meta ``default_cfg``.
MODELS = Registry("model")

#: What a model registered without ``default_cfg`` starts from, and the documented keys of
#: every ``default_cfg`` (timm's ``pretrained_cfg``: how the model is fed by default):
#:
#: - ``input_size``: (width, height) of the crop fed to the model, px (HRNet's order).
#: - ``heatmap_size``: (width, height) of the output heatmaps, px (input / 4), or ``None``
#:   for coordinate models (``output_kind = 'coords'``).
#: - ``padding``: box enlargement before the crop (HRNet: 1.25).
#: - ``flip_test``: average with the mirrored crop's prediction.
#: - ``codec``: the codec block (``{'type': 'hrnet'}`` ...) that decodes its outputs; the
#:   codec owns the decoding choices (refinement), see ``robustpose.codecs``.
#: - ``dataset``: the keypoint set the size comes from (``'coco'`` or ``'mpii'``).
#: - ``source``: where the size comes from (paper / official config), for the record.
GENERIC_CFG: dict[str, Any] = {"input_size": (192, 256), "heatmap_size": (48, 64), "padding": 1.25,
                               "flip_test": True, "codec": {"type": "hrnet"}, "dataset": "coco",
                               "source": "robustpose default (COCO 256x192, HRNet/SimpleBaseline)"}


def coco_cfg(source: str) -> dict[str, Any]:
    """``default_cfg`` of a COCO top-down heatmap model at 256x192 (HRNet's and
    SimpleBaseline's papers, mmpose's MobileNetV2 / ShuffleNetV2 configs)."""
    return {**copy.deepcopy(GENERIC_CFG), "source": source}


def square_cfg(source: str, codec: str = "hrnet", dataset: str = "mpii") -> dict[str, Any]:
    """``default_cfg`` of a model fed 256x256 crops (the hourglass paper on MPII, DeepPose
    regression in the attack study's setting); heatmaps 64x64, none for ``'regression'``."""
    return {**copy.deepcopy(GENERIC_CFG), "input_size": (256, 256),
            "heatmap_size": None if codec == "regression" else (64, 64),
            "codec": {"type": codec}, "dataset": dataset, "source": source}


def _check_cfg(name: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(cfg) - set(GENERIC_CFG))
    if unknown:
        raise ValueError(f"model {name!r}: unknown default_cfg key(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(GENERIC_CFG)}")
    out = {**copy.deepcopy(GENERIC_CFG), **copy.deepcopy(dict(cfg))}
    for key in ("input_size", "heatmap_size"):
        if out[key] is not None:
            out[key] = tuple(int(v) for v in out[key])
            if len(out[key]) != 2 or min(out[key]) <= 0:
                raise ValueError(f"model {name!r}: default_cfg {key} must be (width, height), got {cfg[key]!r}")
    return out


def register_model(name: str | Callable[..., PoseModel] | None = None,
                   builder: Callable[..., PoseModel] | None = None, *,
                   default_cfg: Mapping[str, Any] | None = None):
    """Register a builder ``fn(num_joints=17, extra=None, **kw) -> PoseModel``.

    Usable as ``register_model('name', fn)``, ``@register_model('name')`` or bare
    ``@register_model`` (the function's name). Registering a taken name raises ``ValueError``.
    ``default_cfg``: the model's own inference defaults (keys of :data:`GENERIC_CFG`; the
    keys left out take its values), read back with :func:`get_default_cfg`.
    """
    def add(key: str, fn: Callable[..., PoseModel]) -> Callable[..., PoseModel]:
        cfg = _check_cfg(key, default_cfg) if default_cfg is not None else None
        return MODELS.register(key, fn, default_cfg=cfg)

    return decorator_or_call(add, name, builder)


def get_default_cfg(name: str) -> dict[str, Any]:
    """The registered model's default inference setting, a fresh plain dict with every key
    of :data:`GENERIC_CFG` (sizes as (width, height) tuples); a model registered without
    ``default_cfg`` gets :data:`GENERIC_CFG`. One-line ``ValueError`` for an unknown name.

    >>> get_default_cfg('hourglass_8')['input_size']
    (256, 256)
    """
    cfg = MODELS.meta(name).get("default_cfg")
    return cfg if cfg is not None else copy.deepcopy(GENERIC_CFG)


def model_names() -> list[str]:
    """Every registered model name, sorted (argparse ``choices``)."""
    return MODELS.names()


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered names matching a shell-style ``pattern`` (e.g. ``'hrnet*'``)."""
    return MODELS.list(pattern)


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
    builder = MODELS.get(name)  # one-line ValueError naming the choices and the nearest
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"{name}: extra must be a dict (the MODEL.EXTRA block), got {type(extra).__name__}")
    if pretrained is not None and not isinstance(pretrained, (str, os.PathLike)):
        raise ValueError(f"{name}: pretrained must be a path to a local checkpoint file "
                         f"(robustpose never downloads weights), got {pretrained!r}")
    spectral = pop_spectral_options(kw)  # the 'Lipschitz' option of every architecture
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = builder(num_joints=num_joints, extra=extra, **kw)
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
