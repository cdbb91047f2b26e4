"""Package data: the bundled SynthPose model that ``robustpose benchmark`` uses by default.

The checkpoint lives in ``robustpose/assets/models/`` (robustpose weights format:
``{'model': state_dict (fp16), 'meta': {...}}``, read with ``weights_only=True``). It is
trained on SynthPose with one command and packed with :func:`export_bundled`::

    robustpose train configs/synthpose_shufflenetv2.yaml
    python -m robustpose.assets runs/synthpose_shufflenetv2/best.pt configs/synthpose_shufflenetv2.yaml

>>> model, info = load_bundled_model()      # eval mode, float32, on the CPU
>>> info["input_size"]                      # (width, height) of its crops
(96, 128)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["bundled_checkpoint_path", "load_bundled_model", "export_bundled", "BUNDLED_NAME"]

BUNDLED_NAME = "synthpose_shufflenetv2_128x96.pt"
MODELS_DIR = Path(__file__).resolve().parent / "models"


def bundled_checkpoint_path() -> Path:
    """Path of the bundled checkpoint inside the installed package."""
    return MODELS_DIR / BUNDLED_NAME


def load_bundled_model(map_location: str = "cpu") -> tuple[Any, dict]:
    """``(model, info)``: the bundled SynthPose model (eval mode) and its conventions.

    ``info["inference"]`` is its :class:`~robustpose.codecs.InferenceSetting` (crop size,
    padding, flip test, flip shift, refinement, DARK kernel), read from the meta's
    ``inference`` block or, for files packed before it existed, from the older flat keys.
    ``info`` also holds ``input_size`` (width, height), ``heatmap_size``, ``name``
    (registry name), ``extra``, ``config`` (the training config file name), ``val_AP``
    (AP* on the SynthPose validation split measured at export), ``checkpoint`` (path) and,
    read from the setting, the older names ``flip_test``, ``shift`` (= ``flip_shift``),
    ``post_process`` (= ``refine``) and ``dark_kernel``.
    """
    import torch

    from robustpose.codecs import InferenceSetting
    from robustpose.models import load_model

    path = bundled_checkpoint_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: bundled model missing from the package (reinstall robustpose)")
    obj = torch.load(path, map_location=map_location, weights_only=True)
    meta = dict(obj.get("meta") or {})
    model = load_model(path, map_location=map_location).float().eval()
    setting = InferenceSetting.from_dict(meta.get("inference") or meta)
    info = {key: meta.get(key) for key in ("name", "extra", "config", "val_AP")}
    info["inference"] = setting
    info["input_size"] = setting.input_size
    info["heatmap_size"] = setting.heatmap_size
    info.update(flip_test=setting.flip_test, shift=setting.flip_shift,
                post_process=setting.refine, dark_kernel=setting.dark_kernel)
    info["checkpoint"] = str(path)
    model.input_size = info["input_size"]
    return model, info


def export_bundled(weights: str | os.PathLike, config: str | os.PathLike,
                   out: str | os.PathLike | None = None, val_ap: float | None = None) -> Path:
    """Pack trained weights (``best.pt`` of ``robustpose train``) as the bundled checkpoint.

    Weights are stored as fp16 (halving the file); the meta records the architecture
    (registry name, ``extra``), crop and heatmap sizes, the config's
    :class:`~robustpose.codecs.InferenceSetting` (``inference``: flip test, flip shift,
    refinement) and the training config, so :func:`load_bundled_model` needs nothing else.
    """
    import torch

    from robustpose.codecs import InferenceSetting

    from robustpose.models import create_model, load_checkpoint
    from robustpose.config import load_config

    cfg = load_config(config)
    model_cfg, data = cfg["model"], cfg["data"]
    model = create_model(model_cfg["name"], num_joints=int(model_cfg["num_joints"] or 17),
                         extra=model_cfg["extra"], **dict(model_cfg["kwargs"] or {}))
    load_checkpoint(model, weights)
    state = {k: (v.half() if v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    meta = {"format": "robustpose", "name": model_cfg["name"],
            "num_joints": int(model_cfg["num_joints"] or 17), "extra": model_cfg["extra"],
            "kwargs": dict(model_cfg["kwargs"] or {}),
            "input_size": [int(v) for v in data["input_size"]],
            "heatmap_size": [int(v) for v in data["heatmap_size"]],
            "inference": InferenceSetting.from_config(cfg).to_dict(),
            "config": Path(config).name, "val_AP": None if val_ap is None else float(val_ap),
            "dtype": "float16"}
    target = Path(out) if out is not None else bundled_checkpoint_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    from robustpose.utils.io import atomic_path

    with atomic_path(target) as tmp:
        torch.save({"model": state, "meta": meta}, tmp)
    return target
