"""Experiment configs: YAML files merged over defaults, with ``key=value`` overrides.

A config is a nested dict with the sections ``model``, ``data``, ``train`` and ``val``
(see :data:`DEFAULTS` and docs/training.md). Overrides use dotted keys and YAML values::

    train.lr=5e-4  data.root=/datasets/coco  train.lr_steps=[90,120]  model.extra=null

Values are parsed with ``yaml.safe_load``, so numbers, booleans, lists and ``null`` get
their natural types. Unknown keys are refused (a typo must not silently do nothing),
except below free-form blocks (``model.extra``, ``model.kwargs``, ``data.<split>``,
``data.augment``, ``train.method_args`` and ``val.metric_args``), which are passed on as
they are and checked by the code that receives them. Mappings merge key by key (an
override ``data.val.detections=null`` changes one key of ``data.val``); to replace a
whole block, clear it first: ``data.train=null 'data.train={split: train}'``.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterable

import yaml

#: Every key a config may set, with its default. ``None`` means "not set".
DEFAULTS: dict[str, Any] = {
    "name": None,            # experiment name; defaults to the config file's stem
    "seed": 0,               # every random draw derives from this (utils.seeding)
    "output_dir": None,      # defaults to runs/<name>
    "model": {
        "name": None,        # registry name (robustpose.models.list_models())
        "num_joints": None,  # defaults to the data set's keypoint count
        "extra": None,       # official MODEL.EXTRA block overriding the preset
        "pretrained": None,  # ImageNet initialisation: a user-supplied path only
        "init_from": None,   # whole-model weights (robustpose/official/mmpose) to start from
        "kwargs": {},        # further keyword arguments to create_model
    },
    "data": {
        "type": "coco",      # coco | mpii | synth (see training/datasets.py)
        "root": None,        # every relative path below is resolved against it
        "spec": None,        # keypoint spec name; defaults to data.type (coco/mpii)
        "train": {},         # split block: annotations, images, (type-specific keys)
        "val": {},           # split block: annotations, images, detections, det_score_thr
        "input_size": [192, 256],   # (width, height) of the crop
        "heatmap_size": [48, 64],   # (width, height) of the target heatmaps
        "sigma": 2.0,        # Gaussian sigma in heatmap pixels (heatmap codecs)
        # the target codec (robustpose.codecs): {type: hrnet | unbiased | regression, ...
        # codec keyword arguments}; null = {type: <target_encoding or hrnet>}
        "codec": None,
        "target_encoding": None,  # alias of data.codec.type: hrnet | unbiased | regression
        # HRNet's training augmentation: keyword arguments of robustpose.data.TopDownAugment
        # (flip, rotation_factor, scale_factor, half_body_prob, half_body_min_joints, ...);
        # unset keys keep TopDownAugment's defaults (HRNet COCO).
        "augment": {},
        "num_workers": 2,
    },
    "train": {
        "method": "standard",          # training method (training/methods.py)
        "method_args": {},             # keyword arguments of the method
        "batch_size": 32,              # per process
        "epochs": 210,
        "optimizer": "adam",           # adam | sgd
        "lr": 1.0e-3,
        "weight_decay": 0.0,           # HRNet's Adam ignores TRAIN.WD
        "momentum": 0.9,               # sgd only
        "lr_steps": [170, 200],
        "lr_factor": 0.1,
        "amp": True,                   # mixed precision, used on CUDA only
        "grad_clip": None,             # max gradient L2 norm, None = off
        "use_target_weight": True,
        "checkpoint_every": 1,         # epochs between checkpoint.pt writes
        "max_iters_per_epoch": None,   # cut epochs short (smoke runs, tests)
    },
    "val": {
        "every": 10,                   # validate every N epochs (0 = never) and at the end
        "batch_size": 32,
        "flip_test": True,
        "flip_shift": None,            # HRNet's 1-px shift of the flipped heatmaps (default true)
        "refine": None,                # quarter (HRNet) | dark (DARK's Taylor step) | none; null = the codec's (hrnet: quarter, unbiased: dark)
        "shift": None,                 # old name of val.flip_shift (still accepted)
        "post_process": None,          # old name of val.refine (still accepted)
        "dark_kernel": 11,             # DARK's heatmap blur kernel (odd, heatmap px)
        "metric": None,                # coco | pckh; defaults by data.type
        "metric_args": {},             # keyword arguments of the metric
        "best_key": None,              # metric key that picks best.pt (AP / Mean)
    },
}

#: Blocks whose inner keys are free-form (not checked against DEFAULTS).
FREE_FORM = {("model", "extra"), ("model", "kwargs"), ("data", "train"), ("data", "val"),
             ("data", "augment"), ("data", "codec"),
             ("train", "method_args"), ("val", "metric_args")}


class ConfigError(ValueError):
    """A bad config file or override; its message is one line naming the problem."""


def _merge(base: dict, update: dict, where: str, path: tuple[str, ...] = ()) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        key_path = path + (str(key),)
        dotted = ".".join(key_path)
        if key not in base:
            raise ConfigError(f"{where}: unknown key {dotted!r}")
        if key_path in FREE_FORM:
            # free-form: no key checks; mappings merge key by key, anything else replaces
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                out[key] = _merge_free(base[key], value)
            else:
                out[key] = copy.deepcopy(value)
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {dotted!r} must be a mapping, got {value!r}")
            out[key] = _merge(base[key], value, where, key_path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_free(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_free(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'train.lr=1e-4'`` -> (['train', 'lr'], 0.0001); values parsed by yaml.safe_load."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r}: empty key part")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML "
                          f"({str(exc).splitlines()[0]})") from None
    return parts, _fix_floats(value)


def _looks_like_float(text: str) -> bool:
    text = text.strip().lower()
    return any(ch.isdigit() for ch in text) and ("e" in text) and \
        all(ch in "0123456789.e+-" for ch in text)


def _fix_floats(node: Any) -> Any:
    """YAML 1.1 leaves '1e-3' (no dot) a string; turn such strings into floats."""
    if isinstance(node, dict):
        return {k: _fix_floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_floats(v) for v in node]
    if isinstance(node, str) and _looks_like_float(node):
        try:
            return float(node)
        except ValueError:
            return node
    return node


def apply_overrides(config: dict, overrides: Iterable[str]) -> dict:
    """Return a copy of ``config`` with each dotted ``key=value`` applied (checked keys)."""
    config = copy.deepcopy(config)
    for text in overrides:
        parts, value = parse_override(text)
        update: Any = value
        for part in reversed(parts):
            update = {part: update}
        config = _merge(config, update, f"override {text!r}")
    return config


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> dict:
    """Read a YAML experiment config, merge it over :data:`DEFAULTS`, apply overrides.

    Raises :class:`ConfigError` (a ValueError) or FileNotFoundError with one line naming
    the file. The result is validated by :func:`validate_config`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    config = _merge(DEFAULTS, _fix_floats(raw), str(path))
    config = apply_overrides(config, overrides)
    if config["name"] is None:
        config["name"] = path.stem
    config["_config_path"] = str(path.resolve())
    resolve_aliases(config, str(path))
    validate_config(config, str(path))
    return config


def config_from_dict(update: dict, overrides: Iterable[str] = (), name: str = "experiment") -> dict:
    """Like :func:`load_config` for an in-memory mapping (tests, notebooks)."""
    config = apply_overrides(_merge(DEFAULTS, update, "config"), overrides)
    if config["name"] is None:
        config["name"] = name
    resolve_aliases(config, "config")
    validate_config(config, "config")
    return config


def _pair(config: dict, section: str, key: str, where: str) -> None:
    value = config[section][key]
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and v > 0 for v in value)):
        raise ConfigError(f"{where}: {section}.{key} must be two positive integers "
                          f"[width, height], got {value!r}")


#: (section, old name, new name, default of the new name): keys renamed once, the old
#: names still accepted in files and overrides
# val.refine has no default of its own: left out (null), the codec decides (hrnet: quarter,
# unbiased: dark); see robustpose.codecs.registry.codec_decoding.
ALIASES = (("val", "shift", "flip_shift", True), ("val", "post_process", "refine", None))
REFINES = ("quarter", "dark", "none")


def resolve_aliases(config: dict, where: str = "config") -> dict:
    """Fold the old key names into the new ones, in place (``val.shift`` ->
    ``val.flip_shift``, ``val.post_process`` -> ``val.refine``) and fill the new ones'
    defaults; the old keys are left ``None``. Both names with different values is a
    :class:`ConfigError`. ``data.target_encoding`` stays as given: it is read with
    ``data.codec`` (``robustpose.config.codec_block``) and only checked here."""
    for section, old, new, default in ALIASES:
        block = config[section]
        if block.get(old) is not None:
            if new == "refine" and block[old] not in REFINES:  # name the key the user wrote
                raise ConfigError(f"{where}: {section}.{old} must be {', '.join(REFINES)}, "
                                  f"got {block[old]!r}")
            if block.get(new) is not None and block[new] != block[old]:
                raise ConfigError(f"{where}: {section}.{old} (old name of {section}.{new}) is "
                                  f"{block[old]!r} but {section}.{new} is {block[new]!r}")
            block[new] = block[old]
        if block.get(new) is None:
            block[new] = default
        block[old] = None
    return config


def _check_codec(config: dict, where: str) -> None:
    from robustpose.codecs import codec_names

    data = config["data"]
    names = codec_names()
    encoding, codec = data["target_encoding"], data["codec"]
    if encoding is not None and encoding not in names:
        raise ConfigError(f"{where}: data.target_encoding must be one of {', '.join(names)}, "
                          f"got {encoding!r}")
    if codec is None:
        return
    if not isinstance(codec, dict) or not codec.get("type"):
        raise ConfigError(f"{where}: data.codec must be a mapping with a 'type' "
                          f"({', '.join(names)}), got {codec!r}")
    if codec["type"] not in names:
        raise ConfigError(f"{where}: data.codec.type must be one of {', '.join(names)}, "
                          f"got {codec['type']!r}")
    if encoding is not None and encoding != codec["type"]:
        raise ConfigError(f"{where}: data.target_encoding {encoding!r} (alias of "
                          f"data.codec.type) disagrees with data.codec.type {codec['type']!r}")


def validate_config(config: dict, where: str = "config") -> None:
    """Check types and ranges of the keys the trainer relies on (one-line errors)."""
    if not config["model"]["name"]:
        raise ConfigError(f"{where}: model.name is required")
    from robustpose.data.registry import list_datasets  # the one table of dataset names
    if config["data"]["type"] not in list_datasets():
        raise ConfigError(f"{where}: data.type must be one of {', '.join(list_datasets())}, "
                          f"got {config['data']['type']!r}")
    _pair(config, "data", "input_size", where)
    _pair(config, "data", "heatmap_size", where)
    _check_codec(config, where)
    if config["val"]["refine"] not in (None, *REFINES):
        raise ConfigError(f"{where}: val.refine must be {', '.join(REFINES)}, "
                          f"got {config['val']['refine']!r}")
    if not isinstance(config["val"]["flip_shift"], bool):
        raise ConfigError(f"{where}: val.flip_shift must be true or false, "
                          f"got {config['val']['flip_shift']!r}")
    kernel = config["val"]["dark_kernel"]
    if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ConfigError(f"{where}: val.dark_kernel must be an odd positive integer, got {kernel!r}")
    train = config["train"]
    for key in ("batch_size", "epochs"):
        if not isinstance(train[key], int) or train[key] <= 0:
            raise ConfigError(f"{where}: train.{key} must be a positive integer, got {train[key]!r}")
    if not isinstance(train["lr"], (int, float)) or train["lr"] <= 0:
        raise ConfigError(f"{where}: train.lr must be a positive number, got {train['lr']!r}")
    if not isinstance(train["lr_steps"], list) or not all(isinstance(s, int) for s in train["lr_steps"]):
        raise ConfigError(f"{where}: train.lr_steps must be a list of epochs, got {train['lr_steps']!r}")
    if train["optimizer"] not in ("adam", "sgd"):
        raise ConfigError(f"{where}: train.optimizer must be adam or sgd, got {train['optimizer']!r}")
    if train["grad_clip"] is not None and (not isinstance(train["grad_clip"], (int, float))
                                           or train["grad_clip"] <= 0):
        raise ConfigError(f"{where}: train.grad_clip must be a positive number or null")
    if not isinstance(config["val"]["every"], int) or config["val"]["every"] < 0:
        raise ConfigError(f"{where}: val.every must be an integer >= 0")
    if not isinstance(config["seed"], int):
        raise ConfigError(f"{where}: seed must be an integer, got {config['seed']!r}")


def resolve_path(config: dict, value: str | os.PathLike | None) -> Path | None:
    """A data path of the config: absolute as is, relative ones under ``data.root``.

    ``data.root`` itself, when relative, is taken relative to the current directory.
    A relative path that climbs out of the root (``../``) is refused.
    """
    if value is None:
        return None
    path = Path(os.path.expanduser(str(value)))
    if path.is_absolute():
        return path
    if ".." in path.parts:
        raise ConfigError(f"data path {str(value)!r} escapes data.root; give an absolute path")
    root = config["data"]["root"]
    return (Path(os.path.expanduser(str(root))) / path) if root else path


def dump_config(config: dict) -> str:
    """The config as YAML text (private keys starting with '_' left out)."""
    public = {k: v for k, v in config.items() if not k.startswith("_")}
    return yaml.safe_dump(public, sort_keys=False)
