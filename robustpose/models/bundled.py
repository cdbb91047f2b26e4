"""The bundled SynthPose model: where its file lies and how it loads (one read).

The checkpoint ships as package data in ``robustpose/assets/models/`` (robustpose weights
format: ``{'model': state_dict (fp16), 'meta': {...}}``); :mod:`robustpose.assets` packs
it (``export_bundled``) and re-exports these names. Loading it is model loading, so it
lives here, under every caller (:func:`robustpose.models.load_adapter` included).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["BUNDLED_NAME", "MODELS_DIR", "bundled_checkpoint_path", "load_bundled_model"]

BUNDLED_NAME = "synthpose_shufflenetv2_128x96.pt"
#: the package-data folder of robustpose.assets (a path, not an import of that package)
MODELS_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"


def bundled_checkpoint_path() -> Path:
    """Path of the bundled checkpoint inside the installed package."""
    return MODELS_DIR / BUNDLED_NAME


def load_bundled_model(map_location: str = "cpu") -> tuple[Any, dict]:
    """``(model, info)``: the bundled SynthPose model (eval mode, float32) and its conventions.

    ``info["inference"]`` is its :class:`~robustpose.codecs.InferenceSetting` (crop size,
    padding, flip test, flip shift, refinement, DARK kernel), read from the meta's
    ``inference`` block or, for files packed before it existed, from the older flat keys.
    ``info`` also holds ``input_size`` (width, height), ``heatmap_size``, ``name``
    (registry name), ``extra``, ``config`` (the training config file name), ``val_AP``
    (AP* on the SynthPose validation split measured at export), ``checkpoint`` (path) and,
    read from the setting, the older names ``flip_test``, ``shift`` (= ``flip_shift``),
    ``post_process`` (= ``refine``) and ``dark_kernel``. The file is read once.
    """
    from robustpose.codecs import InferenceSetting

    from .checkpoint import checkpoint_meta, read_checkpoint
    from .rebuild import model_from_checkpoint_object

    path = bundled_checkpoint_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: bundled model missing from the package (reinstall robustpose)")
    obj = read_checkpoint(path, map_location)
    meta = checkpoint_meta(obj)
    model = model_from_checkpoint_object(obj, path).float().eval()
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
