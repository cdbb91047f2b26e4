"""Turn the user's model choice into an adapter (see robustpose.models.adapters).

Choices, first match wins: a Python object (PoseModel / callable / adapter); ``onnx`` +
``onnx_spec``; ``config`` (a training YAML: architecture, input size, flip/shift, and the
checkpoint, by default ``<output_dir>/best.pt``); ``model`` name + ``checkpoint``;
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

    loaded = load_bundled_model()
    model, info = (loaded if isinstance(loaded, tuple) else (loaded, {}))
    info = info if isinstance(info, dict) else {}
    input_size = parse_input_size(info.get("input_size") or getattr(model, "input_size", None)
                                  or DEFAULT_INPUT_SIZE)
    name = f"bundled:{Path(bundled_checkpoint_path()).stem}"
    adapter = RegistryAdapter(model, input_size, name=name, device=device,
                              shift=bool(info.get("shift", True)),
                              post_process=info.get("post_process") or "quarter",
                              dark_kernel=int(info.get("dark_kernel") or 11))
    adapter.default_flip_test = bool(info.get("flip_test", True))
    return adapter, name


def _registry(name: str, checkpoint: str | os.PathLike | None, input_size: tuple[int, int],
              device: str, num_joints: int) -> Any:
    from robustpose.models import create_model, load_checkpoint
    from robustpose.models.adapters import RegistryAdapter

    model = create_model(name, num_joints=num_joints)
    label = name
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: checkpoint not found")
        load_checkpoint(model, checkpoint)
        label = f"{name}:{checkpoint.stem}"
    return RegistryAdapter(model, input_size, name=label, device=device)


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
        from robustpose.training.config import load_config

        cfg = load_config(config)
        ckpt = checkpoint
        if ckpt is None:
            out_dir = cfg.get("output_dir") or f"runs/{cfg['name']}"
            ckpt = Path(out_dir) / "best.pt"
            if not ckpt.is_file():
                raise FileNotFoundError(f"{config}: no --checkpoint given and {ckpt} not found")
        size = size or tuple(cfg["data"]["input_size"])
        if not Path(ckpt).is_file():
            raise FileNotFoundError(f"{ckpt}: checkpoint not found")
        from robustpose.models import load_checkpoint
        from robustpose.models.adapters import RegistryAdapter
        from robustpose.training.evaluate import build_model_for

        net = build_model_for(cfg, num_joints)
        load_checkpoint(net, ckpt)
        adapter = RegistryAdapter(net, size, device=device, shift=bool(cfg["val"]["shift"]),
                                  post_process=cfg["val"]["post_process"],
                                  dark_kernel=int(cfg["val"]["dark_kernel"]))
        adapter.default_flip_test = bool(cfg["val"]["flip_test"])
        adapter.name = f"{cfg['name']}:{Path(ckpt).stem}"
        return adapter, {"source": "config", "config": str(config), "checkpoint": str(ckpt)}
    if model is not None:
        adapter = _registry(model, checkpoint, size or DEFAULT_INPUT_SIZE, device, num_joints)
        return adapter, {"source": "registry", "checkpoint": None if checkpoint is None
                         else str(checkpoint)}
    if checkpoint is not None:
        raise ValueError("--checkpoint needs --model NAME (or --config YAML)")
    adapter, _ = _bundled(device)
    from robustpose.assets import bundled_checkpoint_path

    return adapter, {"source": "bundled", "checkpoint": str(bundled_checkpoint_path())}
