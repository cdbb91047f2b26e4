"""Turn the user's model choice into an adapter (see robustpose.models.adapters).

Choices, first match wins: a Python object (PoseModel / callable / adapter); ``onnx`` +
``onnx_spec``; ``config`` (a training YAML: architecture, its InferenceSetting (input
size, flip test, flip shift, refinement), and the checkpoint, by default
``<output_dir>/best.pt``, whose meta names the codec it was trained with); ``model`` name + ``checkpoint``;
nothing: the bundled SynthPose model.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT_INPUT_SIZE = (192, 256)  # (width, height): the papers' 256x192


def parse_input_size(text: str | tuple | list | None) -> tuple[int, int] | None:
    """'192x256' (width x height) or a pair -> (w, h)."""
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        return int(text[0]), int(text[1])
    try:
        w, h = (int(p) for p in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"bad input size {text!r}: use WIDTHxHEIGHT, e.g. 192x256") from None
    return w, h


def _bundled(device: str) -> tuple[Any, str]:
    from robustpose.assets import bundled_checkpoint_path, load_bundled_model
    from robustpose.models.adapters import RegistryAdapter

    model, info = load_bundled_model()
    name = f"bundled:{Path(bundled_checkpoint_path()).stem}"
    return RegistryAdapter(model, info["inference"], name=name, device=device), name


def _load_weights(net: Any, checkpoint: str | os.PathLike, setting: Any, size: Any,
                  default_codec: Any = None) -> tuple[Any, Any]:
    """Load ``checkpoint`` into ``net``; -> (setting, codec) to predict with.

    A robustpose file's meta carries the :class:`InferenceSetting` and the codec block it
    was trained with (best.pt of ``robustpose train``): they win over ``setting`` /
    ``default_codec``. An ``size`` other than the trained crop keeps the decoding choices
    but falls back to the default codec of that size."""
    from robustpose.codecs import InferenceSetting, build_codec
    from robustpose.models import load_checkpoint

    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"{checkpoint}: checkpoint not found")
    meta = load_checkpoint(net, checkpoint).meta
    if meta.get("inference"):
        setting = InferenceSetting.from_dict(meta["inference"])
    codec = build_codec(dict(meta["codec"])) if meta.get("codec") else default_codec
    if size is not None and tuple(size) != setting.input_size:
        setting, codec = setting.replace(input_size=tuple(size), heatmap_size=None), None
    return setting, codec


def _registry(name: str, checkpoint: str | os.PathLike | None, size: tuple[int, int] | None,
              device: str, num_joints: int) -> Any:
    from robustpose.codecs import InferenceSetting
    from robustpose.models import create_model
    from robustpose.models.adapters import RegistryAdapter

    model = create_model(name, num_joints=num_joints)
    setting, codec, label = InferenceSetting(input_size=size or DEFAULT_INPUT_SIZE), None, name
    if checkpoint is not None:
        setting, codec = _load_weights(model, checkpoint, setting, size)
        label = f"{name}:{Path(checkpoint).stem}"
    return RegistryAdapter(model, setting, name=label, device=device, codec=codec)


def resolve_adapter(model: Any = None, checkpoint: str | os.PathLike | None = None,
                    config: str | os.PathLike | None = None,
                    onnx: str | os.PathLike | None = None,
                    onnx_spec: str | os.PathLike | None = None, *, device: str = "cpu",
                    input_size: Any = None, num_joints: int = 17,
                    adapter_options: dict | None = None) -> tuple[Any, dict]:
    """-> (adapter, facts for the summary: source, checkpoint, config, input size ...)."""
    from robustpose.models.adapters import OnnxAdapter, as_adapter

    size = parse_input_size(input_size)
    if model is not None and not isinstance(model, str):
        options = dict(adapter_options or {})
        if size is not None:
            options["input_size"] = size
        options.setdefault("device", device)
        adapter = as_adapter(model, **options)
        return adapter, {"source": type(model).__name__}
    if onnx is not None:
        if onnx_spec is None:
            raise ValueError("--onnx needs --onnx-spec (a YAML/JSON spec file; see docs/benchmark.md)")
        adapter = OnnxAdapter(onnx, onnx_spec, device=device)
        return adapter, {"source": "onnx", "onnx": str(onnx), "onnx_spec": str(onnx_spec)}
    if config is not None:
        from robustpose.codecs import InferenceSetting
        from robustpose.config import build_codec_for, build_model_for, load_config
        from robustpose.models.adapters import RegistryAdapter

        cfg = load_config(config)
        ckpt = checkpoint
        if ckpt is None:
            ckpt = Path(cfg.get("output_dir") or f"runs/{cfg['name']}") / "best.pt"
            if not ckpt.is_file():
                raise FileNotFoundError(f"{config}: no --checkpoint given and {ckpt} not found")
        net = build_model_for(cfg, num_joints)
        # what training validation used; a file from before meta carried its codec
        # decodes with the config's (a training method's own codec is in best.pt's meta)
        setting, codec = _load_weights(net, ckpt, InferenceSetting.from_config(cfg), size,
                                       default_codec=build_codec_for(cfg))
        adapter = RegistryAdapter(net, setting, name=f"{cfg['name']}:{Path(ckpt).stem}",
                                  device=device, codec=codec)
        return adapter, {"source": "config", "config": str(config), "checkpoint": str(ckpt)}
    if model is not None:
        adapter = _registry(model, checkpoint, size, device, num_joints)
        return adapter, {"source": "registry", "checkpoint": None if checkpoint is None
                         else str(checkpoint)}
    if checkpoint is not None:
        raise ValueError("--checkpoint needs --model NAME (or --config YAML)")
    adapter, _ = _bundled(device)
    from robustpose.assets import bundled_checkpoint_path

    return adapter, {"source": "bundled", "checkpoint": str(bundled_checkpoint_path())}
