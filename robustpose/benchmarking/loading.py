"""Moved to :mod:`robustpose.models.loading`: a model choice becomes an adapter through
:func:`robustpose.models.load_adapter`. The names callers import from here stay:
:func:`resolve_adapter` (the old positional signature), :func:`parse_input_size`,
:func:`parse_extra`, :func:`check_keypoint_count`, ``DEFAULT_INPUT_SIZE``.

How ``config=`` experiment YAMLs are read lives in :mod:`robustpose.config`
(:func:`robustpose.config.read_config_model`, registered with
:func:`robustpose.models.loading.register_config_reader` when ``robustpose.config`` is
imported, as it is here).
"""
from __future__ import annotations

import os
from typing import Any

from robustpose.config import read_config_model
from robustpose.models.loading import (DEFAULT_INPUT_SIZE, check_keypoint_count, load_adapter,
                                       parse_extra, parse_input_size)

__all__ = ["DEFAULT_INPUT_SIZE", "check_keypoint_count", "load_adapter", "parse_extra",
           "parse_input_size", "read_config_model", "resolve_adapter"]


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
