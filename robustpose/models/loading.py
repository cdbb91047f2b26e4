"""A model choice becomes an adapter through one call: :func:`load_adapter`.

Choices, first match wins: a Python object (adapter / PoseModel / callable); ``onnx`` +
``onnx_spec``; ``config`` (a training YAML: architecture, its InferenceSetting, and the
checkpoint, by default ``<output_dir>/best.pt``, whose meta names the codec it was trained
with); ``model`` name + ``checkpoint`` (+ ``extra``: the official ``MODEL.EXTRA`` block, or
an official experiment YAML, for a width the preset of the name does not have); nothing:
the bundled SynthPose model.

A checkpoint is read once (:func:`robustpose.models.checkpoint.read_checkpoint`): its meta
says what must exist before the weights load (spectral normalisation, in ``kwargs``), the
RCC layer, and the codec and :class:`~robustpose.codecs.InferenceSetting` it was trained
with; the weights then load from that same read.

An experiment config is the config layer's vocabulary (``robustpose.config``, above this
package): how to read one is registered with :func:`register_config_reader` from above
(``robustpose.config.read_config_model``, when ``robustpose.config`` is imported), so this module never
imports upward.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .identity import model_identity as _identity
from .registry import GENERIC_CFG

__all__ = ["DEFAULT_INPUT_SIZE", "ConfigModel", "check_keypoint_count", "load_adapter",
           "parse_extra", "parse_input_size", "register_config_reader"]

#: (width, height) of a registry model without its own default_cfg: the papers' 256x192
DEFAULT_INPUT_SIZE = tuple(GENERIC_CFG["input_size"])


def parse_input_size(text: str | tuple | list | None) -> tuple[int, int] | None:
    """'192x256' (width x height, px) or a pair -> (w, h); None stays None."""
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


# ----------------------------------------------------------------------------- checkpoints
def _read(checkpoint: str | os.PathLike) -> tuple[Any, dict]:
    """The one read of a checkpoint -> (loaded object, its meta)."""
    from .checkpoint import checkpoint_meta, read_checkpoint

    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"{checkpoint}: checkpoint not found")
    obj = read_checkpoint(checkpoint)
    return obj, checkpoint_meta(obj)


def _load_weights(net: Any, checkpoint: str | os.PathLike, obj: Any, meta: dict,
                  setting: Any, size: Any, default_codec: Any = None) -> tuple[Any, Any]:
    """Load the read ``obj`` into ``net``; -> (setting, codec) to predict with.

    A robustpose file's meta carries the :class:`InferenceSetting` and the codec block it
    was trained with (best.pt of ``robustpose train``): they win over ``setting`` /
    ``default_codec``. A ``size`` other than the trained crop keeps the decoding choices
    but falls back to the default codec of that size."""
    from robustpose.codecs import InferenceSetting, build_codec

    from .checkpoint import load_checkpoint_object

    load_checkpoint_object(net, obj, checkpoint)  # strict; puts a meta 'rcc' layer back
    if meta.get("inference"):
        setting = InferenceSetting.from_dict(meta["inference"])
    codec = build_codec(dict(meta["codec"])) if meta.get("codec") else default_codec
    codec_size = getattr(codec, "input_size", None)
    if codec is default_codec and codec_size is not None \
            and tuple(codec_size) != tuple(setting.input_size):
        # the meta trained another crop than default_cfg's: the default codec of that
        # size, built by the adapter from the outputs' kind (as before default_cfg)
        codec = None
    if size is not None and tuple(size) != setting.input_size:
        setting, codec = setting.replace(input_size=tuple(size), heatmap_size=None), None
    return setting, codec


# ----------------------------------------------------------------------------- experiment configs
@dataclass
class ConfigModel:
    """What the config layer builds from an experiment config for :func:`load_adapter`:
    the architecture (weights not loaded yet), the config's InferenceSetting, the codec a
    checkpoint without a codec in its meta decodes with, the config's ``name`` and the
    checkpoint (the given one, or ``<output_dir>/best.pt``, checked to exist)."""

    model: Any
    setting: Any
    codec: Any
    name: str
    checkpoint: Path


#: ``reader(config_path, checkpoint or None, num_joints) -> ConfigModel``
ConfigReader = Callable[[Any, Any, int], ConfigModel]
_CONFIG_READER: list[ConfigReader] = []


def register_config_reader(reader: ConfigReader) -> ConfigReader:
    """Install how ``config=`` paths are read (``robustpose.config`` does, on import); a second registration replaces the first (re-imports in tests)."""
    _CONFIG_READER[:] = [reader]
    return reader


# ----------------------------------------------------------------------------- the choices
def _from_object(model: Any, size: Any, device: str, options: dict) -> tuple[Any, dict]:
    from .adapters import as_adapter

    options = dict(options)
    if size is not None:
        options["input_size"] = size
    options.setdefault("device", device)
    return as_adapter(model, **options), {"source": type(model).__name__}


def _from_onnx(onnx: Any, onnx_spec: Any, size: Any, device: str,
               num_joints: int) -> tuple[Any, dict]:
    from .onnx_adapter import open_model_file  # .onnx or .tflite (issue 26)

    if onnx_spec is None:
        raise ValueError("--onnx needs --onnx-spec (a YAML/JSON spec file; see docs/benchmark.md)")
    adapter = open_model_file(onnx, onnx_spec, device=device)
    _fixed_size(adapter, size, f"{onnx} (input_size of {onnx_spec})")
    count = getattr(adapter, "num_keypoints", None)
    if count is not None and count != num_joints:  # else a shape error at the first cell
        raise ValueError(f"{onnx}: the model gives {count} keypoints and the data set "
                         f"has {num_joints} (key 'keypoint_index_map' of {onnx_spec} "
                         "picks the data set's keypoints from the model's)")
    return adapter, {"source": "onnx", "onnx": str(onnx), "onnx_spec": str(onnx_spec)}


def _from_config(config: Any, checkpoint: Any, size: Any, device: str,
                 num_joints: int) -> tuple[Any, dict]:
    from .adapters import RegistryAdapter

    if not _CONFIG_READER:
        raise ValueError(f"{config}: reading an experiment config needs its reader: "
                         "import robustpose.config first")
    built = _CONFIG_READER[0](config, checkpoint, num_joints)
    obj, meta = _read(built.checkpoint)
    # what training validation used; a file from before meta carried its codec decodes
    # with the config's (a training method's own codec is in best.pt's meta)
    setting, codec = _load_weights(built.model, built.checkpoint, obj, meta, built.setting,
                                   size, default_codec=built.codec)
    adapter = RegistryAdapter(built.model, setting, name=f"{built.name}:{built.checkpoint.stem}",
                              device=device, codec=codec)
    adapter.checkpoint_meta = meta
    return adapter, {"source": "config", "config": str(config),
                     "checkpoint": str(built.checkpoint)}


def _registry_setting(name: str, size: Any) -> tuple[Any, Any]:
    """(InferenceSetting, codec or None) a registry model starts from before a checkpoint's
    meta (if any) overrides it: its own ``default_cfg``
    (:func:`robustpose.models.registry.get_default_cfg`: crop and heatmap size, padding,
    flip test, codec block). Another ``size`` keeps the feeding choices and decodes with
    the default codec of that size (None: built by the adapter from the outputs' kind)."""
    from robustpose.codecs import InferenceSetting, build_codec

    from .registry import get_default_cfg

    cfg = get_default_cfg(name)
    # heatmap_size stays None (read from the outputs), as before default_cfg existed: the
    # setting is recorded in run.json, which existing run folders compare
    setting = InferenceSetting(input_size=cfg["input_size"], padding=cfg["padding"],
                               flip_test=cfg["flip_test"])
    if size is not None and tuple(size) != setting.input_size:
        return setting.replace(input_size=tuple(size), heatmap_size=None), None
    # only the sizes as context: the codec owns its decoding defaults (refinement)
    return setting, build_codec(cfg["codec"], input_size=setting.input_size,
                                heatmap_size=cfg["heatmap_size"])


def _from_registry(name: str, checkpoint: Any, size: Any, device: str, num_joints: int,
                   extra: Any) -> tuple[Any, dict]:
    from .adapters import RegistryAdapter
    from .registry import create_model
    from .spectral import spectral_options_of

    block, extra_size, extra_joints = parse_extra(extra)
    if extra_size is not None and size is not None and tuple(size) != extra_size:
        raise ValueError(f"--input-size {size[0]}x{size[1]} disagrees with the --extra "
                         f"config's MODEL.IMAGE_SIZE {extra_size[0]}x{extra_size[1]}")
    size = size or extra_size
    num_joints = extra_joints or num_joints
    obj, meta = _read(checkpoint) if checkpoint is not None else (None, {})
    # a checkpoint trained with spectral normalisation says so in its meta: rebuild it so
    try:
        model = create_model(name, num_joints=num_joints, extra=block,
                             **spectral_options_of(meta))
    except (TypeError, KeyError, IndexError, AttributeError) as exc:
        # a value of the right key but the wrong kind (NUM_BLOCKS: 4 instead of [4, 4])
        raise ValueError(f"--extra: cannot build {name} from this MODEL.EXTRA block "
                         f"({type(exc).__name__}: {exc})") from None
    setting, codec = _registry_setting(name, size)
    label = name
    if checkpoint is not None:
        setting, codec = _load_weights(model, checkpoint, obj, meta, setting, size, codec)
        label = f"{name}:{Path(checkpoint).stem}"
    adapter = RegistryAdapter(model, setting, name=label, device=device, codec=codec)
    adapter.checkpoint_meta = meta if checkpoint is not None else None
    info = {"source": "registry", "checkpoint": None if checkpoint is None else str(checkpoint)}
    if extra is not None:  # the architecture actually built (preset + block)
        info["extra"] = dict(getattr(model, "config", {}) or {})
    return adapter, info


def _from_bundled(size: Any, device: str) -> tuple[Any, dict]:
    from .adapters import RegistryAdapter
    from .bundled import bundled_checkpoint_path, load_bundled_model

    model, facts = load_bundled_model()
    path = bundled_checkpoint_path()
    adapter = RegistryAdapter(model, facts["inference"], name=f"bundled:{path.stem}",
                              device=device)
    _fixed_size(adapter, size, "the bundled model")
    return adapter, {"source": "bundled", "checkpoint": str(path)}


def load_adapter(model: Any = None, *, checkpoint: str | os.PathLike | None = None,
                 config: str | os.PathLike | None = None,
                 onnx: str | os.PathLike | None = None,
                 onnx_spec: str | os.PathLike | None = None, device: str = "cpu",
                 input_size: Any = None, num_joints: int | None = None, extra: Any = None,
                 model_identity: str | None = None,
                 **adapter_options: Any) -> tuple[Any, dict]:
    """Any model choice -> ``(adapter, model_info)``; the adapter maps crops (N, 3, H, W)
    float [0, 1] to keypoints (N, K, 3) in image px (:mod:`robustpose.models.adapters`).

    Args:
        model: a registry name (``list_models()``), or an adapter / PoseModel / callable;
            None: ``config``, ``onnx`` or the bundled SynthPose model.
        checkpoint: weights for a registry name or a ``config`` (default
            ``<output_dir>/best.pt``); read once.
        config: an experiment YAML (``robustpose train``).
        onnx, onnx_spec: an ONNX file and its YAML/JSON spec (both needed).
        device: torch device of torch models.
        input_size: crop (width, height) px, or 'WxH'; None: the model's own.
        num_joints: K of the data set (registry / config models are built for it; an ONNX
            model must give it); None: 17.
        extra: with a registry name only, see :func:`parse_extra`.
        model_identity: a version string of a Python callable (no content to hash).
        **adapter_options: for a Python object: ``name``, ``padding``, ``output_kind``,
            ``keypoint_index_map``, ``flip_test``, ``shift`` ... (:func:`as_adapter`);
            ignored for names and files, as before (their files set these).

    ``model_info`` (recorded in run.json, compared by run folders): ``source`` ('registry',
    'config', 'onnx', 'bundled' or the object's type name) plus ``checkpoint`` /
    ``config`` / ``onnx`` / ``onnx_spec`` / ``extra`` as they apply, and ``identity``
    (:func:`robustpose.models.identity.model_identity`). Bad input (missing file, wrong
    keypoint count, unknown name) is a one-line ValueError / FileNotFoundError naming it.
    """
    size = parse_input_size(input_size)
    joints = 17 if num_joints is None else int(num_joints)
    if extra is not None and not isinstance(model, str):
        raise ValueError("--extra goes with --model NAME (a --config carries its own "
                         "MODEL.EXTRA)")
    if model is not None and not isinstance(model, str):
        adapter, info = _from_object(model, size, device, adapter_options)
    elif onnx is not None:
        adapter, info = _from_onnx(onnx, onnx_spec, size, device, joints)
    elif config is not None:
        adapter, info = _from_config(config, checkpoint, size, device, joints)
    elif model is not None:
        adapter, info = _from_registry(model, checkpoint, size, device, joints, extra)
    elif checkpoint is not None:
        raise ValueError("--checkpoint needs --model NAME (or --config YAML)")
    else:
        adapter, info = _from_bundled(size, device)
    info["identity"] = _identity(model, adapter, info, model_identity)
    return adapter, info
