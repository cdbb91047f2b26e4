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

# The file's name and place and how it loads are model loading (robustpose.models.bundled);
# these wrappers import it on first use, so ``import robustpose.assets`` stays torch-free.
def __getattr__(name: str) -> Any:
    if name in ("BUNDLED_NAME", "MODELS_DIR"):
        from robustpose.models import bundled

        return getattr(bundled, name)
    raise AttributeError(f"module 'robustpose.assets' has no attribute {name!r}")


def bundled_checkpoint_path() -> Path:
    """Path of the bundled checkpoint inside the installed package."""
    from robustpose.models.bundled import bundled_checkpoint_path as path

    return path()


def load_bundled_model(map_location: str = "cpu") -> tuple[Any, dict]:
    """``(model, info)``: :func:`robustpose.models.bundled.load_bundled_model`."""
    from robustpose.models.bundled import load_bundled_model as load

    return load(map_location)


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
