"""Moved to :mod:`robustpose.models.loading`: a model choice becomes an adapter through
:func:`robustpose.models.load_adapter`. The names callers import from here stay:
:func:`resolve_adapter` (the old positional signature), :func:`parse_input_size`,
:func:`parse_extra`, :func:`check_keypoint_count`, ``DEFAULT_INPUT_SIZE``.

This module also holds how ``config=`` experiment YAMLs are read
(:func:`read_config_model`): ``robustpose.config`` sits above ``models``, so models cannot
import it; importing this module (``robustpose.benchmarking`` does) registers the reader
with :func:`robustpose.models.loading.register_config_reader`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from robustpose.models.loading import (DEFAULT_INPUT_SIZE, ConfigModel, check_keypoint_count,
                                       load_adapter, parse_extra, parse_input_size,
                                       register_config_reader)

__all__ = ["DEFAULT_INPUT_SIZE", "check_keypoint_count", "load_adapter", "parse_extra",
           "parse_input_size", "read_config_model", "resolve_adapter"]


@register_config_reader
def read_config_model(config: str | os.PathLike, checkpoint: str | os.PathLike | None,
                      num_joints: int) -> ConfigModel:
    """An experiment config -> its architecture (not loaded), InferenceSetting, codec and
    checkpoint (the given one, else ``<output_dir>/best.pt``, which must exist)."""
    from robustpose.codecs import InferenceSetting
    from robustpose.config import build_codec_for, build_model_for, load_config

    cfg = load_config(config)
    ckpt = checkpoint
    if ckpt is None:
        ckpt = Path(cfg.get("output_dir") or f"runs/{cfg['name']}") / "best.pt"
        if not ckpt.is_file():
            raise FileNotFoundError(f"{config}: no --checkpoint given and {ckpt} not found")
    return ConfigModel(model=build_model_for(cfg, num_joints),
                       setting=InferenceSetting.from_config(cfg),
                       codec=build_codec_for(cfg), name=str(cfg["name"]),
                       checkpoint=Path(ckpt))


def resolve_adapter(model: Any = None, checkpoint: str | os.PathLike | None = None,
                    config: str | os.PathLike | None = None,
                    onnx: str | os.PathLike | None = None,
                    onnx_spec: str | os.PathLike | None = None, *, device: str = "cpu",
                    input_size: Any = None, num_joints: int = 17,
                    adapter_options: dict | None = None,
                    extra: Any = None, model_identity: str | None = None) -> tuple[Any, dict]:
    """The older spelling of :func:`robustpose.models.load_adapter` (positional files,
    ``adapter_options`` as a dict): -> (adapter, model_info), the same objects."""
    return load_adapter(model, checkpoint=checkpoint, config=config, onnx=onnx,
                        onnx_spec=onnx_spec, device=device, input_size=input_size,
                        num_joints=num_joints, extra=extra, model_identity=model_identity,
                        **dict(adapter_options or {}))
