"""Turn the user's model choice into an adapter (see robustpose.models.adapters).

Choices, first match wins: a Python object (PoseModel / callable / adapter); ``onnx`` +
``onnx_spec``; ``config`` (a training YAML: architecture, its InferenceSetting (input
size, flip test, flip shift, refinement), and the checkpoint, by default
``<output_dir>/best.pt``, whose meta names the codec it was trained with); ``model`` name + ``checkpoint``
(+ ``extra``: the official ``MODEL.EXTRA`` block, or an official experiment YAML, for a
width the preset of the name does not have); nothing: the bundled SynthPose model.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

DEFAULT_INPUT_SIZE = (192, 256)  # (width, height): the papers' 256x192


def parse_input_size(text: str | tuple | list | None) -> tuple[int, int] | None:
    """'192x256' (width x height) or a pair -> (w, h)."""
    if text is None:
        return None
    try:
        if isinstance(text, (tuple, list)):
            if len(text) != 2:
                raise ValueError
            w, h = int(text[0]), int(text[1])
        else:
            w, h = (int(p) for p in str(text).lower().split("x"))
    except (ValueError, TypeError):
        raise ValueError(f"bad input size {text!r}: use WIDTHxHEIGHT, e.g. 192x256") from None
    if w < 1 or h < 1:
        raise ValueError(f"bad input size {text!r}: width and height must be >= 1")
    return w, h


def check_keypoint_count(model_info: dict, spec: Any) -> None:
    """The bundled model predicts the 17 COCO keypoints: on a set with another count
    (MPII's 16) refuse before any cell, instead of a shape error inside the clean cell
    that does not name the model."""
    count = len(spec.keypoint_names)
    if model_info.get("source") == "bundled" and count != 17:
        raise ValueError(f"the bundled model predicts the 17 COCO keypoints; the data set "
                         f"{spec.name!r} has {count}: give --model/--checkpoint, --config "
                         "or --onnx")


def _fixed_size(adapter: Any, size: Any, what: str) -> None:
    """A model whose crop size is fixed (the bundled model, an ONNX spec's input_size)
    refuses another ``--input-size`` instead of ignoring it."""
    if size is not None and tuple(size) != tuple(adapter.input_size):
        w, h = adapter.input_size
        raise ValueError(f"--input-size {size[0]}x{size[1]}: {what} takes {w}x{h} crops "
                         "(leave --input-size out)")


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


def _upper_keys(data: Mapping) -> dict:
    return {str(k).upper(): v for k, v in data.items()}


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # too long for a file name, NUL byte
        return False


def parse_extra(extra: Any) -> tuple[dict | None, tuple[int, int] | None, int | None]:
    """``--extra`` -> (MODEL.EXTRA block, input size (w, h) or None, num_joints or None).

    ``extra`` is a dict, YAML/JSON text, or the path of a YAML/JSON file holding either the
    ``MODEL.EXTRA`` block itself or an official experiment config (``MODEL: {EXTRA: ...,
    IMAGE_SIZE: [w, h], NUM_JOINTS: K}``; its ``IMAGE_SIZE`` and ``NUM_JOINTS`` are read
    too). Raises a one-line ValueError / FileNotFoundError naming ``--extra``.
    """
    import yaml

    if extra is None:
        return None, None, None
    where = ""  # inline text; a file: "<path>: "
    data = extra
    if isinstance(extra, (str, os.PathLike)):
        text = str(extra)
        inline = "\n" in text or text.lstrip().startswith(("{", "["))
        looks_like_file = isinstance(extra, os.PathLike) or (
            not inline and text.strip().lower().endswith((".yaml", ".yml", ".json")))
        if looks_like_file or (not inline and _is_file(text)):
            if not Path(text).is_file():
                raise FileNotFoundError(f"{text}: --extra file not found")
            where = f"{text}: "
            try:
                text = Path(text).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{where}unreadable --extra file ({exc})") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise ValueError(f"{where}--extra is not valid YAML/JSON{at} "
                             f"({getattr(exc, 'problem', None) or 'parse error'})") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}--extra must be a mapping (the official MODEL.EXTRA "
                         f"block or an experiment YAML), got {type(data).__name__}")
    top = _upper_keys(data)
    size = joints = None
    block: Any = data
    if "MODEL" in top or "EXTRA" in top:  # an experiment config, or its MODEL block
        model = top["MODEL"] if "MODEL" in top else data
        if not isinstance(model, Mapping) or not isinstance(_upper_keys(model).get("EXTRA"),
                                                            Mapping):
            raise ValueError(f"{where}--extra has no MODEL.EXTRA block (a mapping)")
        model = _upper_keys(model)
        block = model["EXTRA"]
        if model.get("IMAGE_SIZE") is not None:
            size = parse_input_size(model["IMAGE_SIZE"])
        if model.get("NUM_JOINTS") is not None:
            joints = int(model["NUM_JOINTS"])
    return dict(block), size, joints


def _spectral_options(checkpoint: str | os.PathLike | None) -> dict:
    """``spectral_norm`` / ``spectral_norm_iters`` recorded in a robustpose checkpoint's meta
    (empty for other files and for a missing one: :func:`_load_weights` reports that)."""
    from robustpose.models.checkpoint import read_checkpoint
    from robustpose.models.spectral import spectral_options_of

    if checkpoint is None or not Path(checkpoint).is_file():
        return {}
    obj = read_checkpoint(checkpoint)
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    return spectral_options_of(meta if isinstance(meta, Mapping) else None)


def _registry(name: str, checkpoint: str | os.PathLike | None, size: tuple[int, int] | None,
              device: str, num_joints: int, extra: Any = None) -> Any:
    from robustpose.codecs import InferenceSetting
    from robustpose.models import create_model
    from robustpose.models.adapters import RegistryAdapter

    block, extra_size, extra_joints = parse_extra(extra)
    if extra_size is not None and size is not None and tuple(size) != extra_size:
        raise ValueError(f"--input-size {size[0]}x{size[1]} disagrees with the --extra "
                         f"config's MODEL.IMAGE_SIZE {extra_size[0]}x{extra_size[1]}")
    size = size or extra_size
    num_joints = extra_joints or num_joints
    # a checkpoint trained with spectral normalisation says so in its meta: rebuild it so
    spectral = _spectral_options(checkpoint)
    try:
        model = create_model(name, num_joints=num_joints, extra=block, **spectral)
    except (TypeError, KeyError, IndexError, AttributeError) as exc:
        # a value of the right key but the wrong kind (NUM_BLOCKS: 4 instead of [4, 4])
        raise ValueError(f"--extra: cannot build {name} from this MODEL.EXTRA block "
                         f"({type(exc).__name__}: {exc})") from None
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
                    adapter_options: dict | None = None,
                    extra: Any = None, model_identity: str | None = None) -> tuple[Any, dict]:
    """-> (adapter, facts for the summary: source, checkpoint, config, input size ...).

    ``extra`` (with a registry ``model`` name only): see :func:`parse_extra`. The facts'
    ``identity`` is the model's content identity
    (:func:`robustpose.benchmarking.identity.model_identity`; ``model_identity`` names a
    Python callable, which has no content to hash)."""
    from robustpose.benchmarking.identity import model_identity as identify

    adapter, info = _resolve(model, checkpoint, config, onnx, onnx_spec, device=device,
                             input_size=input_size, num_joints=num_joints,
                             adapter_options=adapter_options, extra=extra)
    info["identity"] = identify(model, adapter, info, model_identity)
    return adapter, info


def _resolve(model: Any, checkpoint: Any, config: Any, onnx: Any, onnx_spec: Any, *,
             device: str, input_size: Any, num_joints: int, adapter_options: dict | None,
             extra: Any) -> tuple[Any, dict]:
    from robustpose.models.adapters import OnnxAdapter, as_adapter

    size = parse_input_size(input_size)
    if extra is not None and not isinstance(model, str):
        raise ValueError("--extra goes with --model NAME (a --config carries its own "
                         "MODEL.EXTRA)")
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
        _fixed_size(adapter, size, f"{onnx} (input_size of {onnx_spec})")
        count = getattr(adapter, "num_keypoints", None)
        if count is not None and count != num_joints:  # else a shape error at the first cell
            raise ValueError(f"{onnx}: the model gives {count} keypoints and the data set "
                             f"has {num_joints} (key 'keypoint_index_map' of {onnx_spec} "
                             "picks the data set's keypoints from the model's)")
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
        adapter = _registry(model, checkpoint, size, device, num_joints, extra)
        info = {"source": "registry", "checkpoint": None if checkpoint is None
                else str(checkpoint)}
        if extra is not None:  # the architecture actually built (preset + block)
            info["extra"] = dict(getattr(adapter.model, "config", {}) or {})
        return adapter, info
    if checkpoint is not None:
        raise ValueError("--checkpoint needs --model NAME (or --config YAML)")
    adapter, _ = _bundled(device)
    _fixed_size(adapter, size, "the bundled model")
    from robustpose.assets import bundled_checkpoint_path

    return adapter, {"source": "bundled", "checkpoint": str(bundled_checkpoint_path())}
