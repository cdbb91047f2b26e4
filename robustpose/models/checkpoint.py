"""Checkpoint loading and saving, always with ``torch.load(..., weights_only=True)``.

Accepted layouts (detected automatically):

- official HRNet / SimpleBaseline ``.pth``: a plain state dict, or one under ``'state_dict'``;
  keys optionally prefixed ``module.`` (DataParallel / DDP);
- mmpose 1.x: ``{'meta': ..., 'state_dict': {'backbone.*', 'head.*', ...}}`` — ``backbone.``
  and ``head.`` prefixes are dropped where that names a key of the model (ResNet / HRNet
  backbones and ``HeatmapHead``: ``head.deconv_layers.*``, ``head.final_layer.*``);
  ``data_preprocessor.*`` keys are ignored;
- robustpose: ``{'model': state_dict, 'meta': {...}}`` (also the trainer's checkpoints).

Pickled objects other than tensors, plain containers and numpy arrays are refused with a
one-line ``ValueError``: a checkpoint can never run code on load.
"""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..utils.io import atomic_path
from .rcc import apply_rcc_meta
from .spectral import spectral_hint, spectral_key, vectors_optional

FORMAT = "robustpose"
IGNORED_PREFIXES = ("data_preprocessor.",)


def _numpy_globals() -> list[Any]:
    """numpy's array/dtype reconstructors: data only, allowed so mmpose meta blocks load."""
    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [core.multiarray._reconstruct, np.ndarray, np.dtype]
    allowed += [type(np.dtype(t)) for t in ("b", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
                                            "f2", "f4", "f8", "c8", "c16")]
    if hasattr(core.multiarray, "scalar"):
        allowed.append(core.multiarray.scalar)
    return allowed


#: how a ``torch.save`` file begins: a zip archive (PyTorch >= 1.6) or a pickle of protocol
#: >= 2 (the legacy format and plain pickles)
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = b"\x80"


def _not_a_checkpoint(path: Path) -> str | None:
    """Why the file cannot be a ``torch.save`` file (from its first bytes), or None.

    Checked before unpickling: a text file (a YAML config, a README) given as the
    checkpoint otherwise reads as protocol-0 pickle opcodes and is reported as "pickled
    Python objects"."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if not head:
        return "an empty file"
    if head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTO):
        return None
    controls = sum(b < 32 and b not in (9, 10, 13) for b in head)
    if controls == 0:  # no NUL or control bytes: text
        start = head[:40].decode("utf-8", errors="replace").splitlines()[0]
        return f"text file? it starts with {start!r}"
    return f"unknown format, starts with bytes {head[:8].hex(' ')}; torch.save writes a zip archive"


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors naming the file
    (missing, not a ``torch.save`` file (text, empty, other format), damaged, or holding
    pickled objects other than tensors / plain containers / numpy arrays)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    why = _not_a_checkpoint(path)
    if why is not None:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({why})")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err)) or re.search(r"global[s]? ['\"]?([\w.]+)", str(err))
        what = found.group(1) if found else "a non-tensor object"
        raise ValueError(f"{path}: refusing to load: the checkpoint holds pickled Python objects ({what}); "
                         "only tensors, plain containers and numpy arrays are accepted (weights_only=True)") from None
    except Exception as err:  # noqa: BLE001 - any failure of a damaged file becomes one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({first})") from None


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def extract_state_dict(obj: Any, path: str | os.PathLike = "<checkpoint>") -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside a loaded checkpoint and the layout it came in
    (``'robustpose'``, ``'state_dict'`` or ``'plain'``)."""
    if isinstance(obj, Mapping):
        if _is_state_dict(obj.get("model")):
            return dict(obj["model"]), FORMAT
        if _is_state_dict(obj.get("state_dict")):
            return dict(obj["state_dict"]), "state_dict"
        if _is_state_dict(obj):
            return dict(obj), "plain"
        keys = sorted(str(k) for k in obj)[:8]
        raise ValueError(f"{path}: no state dict found (expected tensors, or 'state_dict' / 'model'; "
                         f"top-level keys: {keys})")
    raise ValueError(f"{path}: no state dict found (checkpoint is a {type(obj).__name__}, not a dict)")


def map_keys(state_dict: Mapping[str, torch.Tensor], model_keys: set[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Rename checkpoint keys onto the model's: strip ``module.`` and the mmpose ``backbone.`` /
    ``head.`` prefixes when the shorter name is a model key. Returns (renamed dict, new -> original)."""
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in state_dict.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if name.startswith(IGNORED_PREFIXES):
            continue
        if name not in model_keys:
            for prefix in ("backbone.", "head."):
                if name.startswith(prefix) and name[len(prefix):] in model_keys:
                    name = name[len(prefix):]
                    break
        name = spectral_key(name, model_keys)  # a plain weight onto a spectrally normalised conv
        out[name] = value
        origin[name] = key
    return out, origin


@dataclass
class CheckpointReport:
    """What a load did: the layout found and every key that did not line up, by name."""

    path: str
    source_format: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    #: the file's ``meta`` dict (robustpose files: architecture, ``inference``, ``codec``)
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def summary(self, limit: int = 5) -> str:
        """One line: counts and the first ``limit`` names of each kind of mismatch."""
        def names(items: list[str]) -> str:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing: {names(self.missing)}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected: {names(self.unexpected)}")
        if self.shape_mismatch:
            shown = [f"{k} checkpoint {list(a)} vs model {list(b)}" for k, a, b in self.shape_mismatch]
            parts.append(f"{len(self.shape_mismatch)} shape mismatch: {names(shown)}")
        return "; ".join(parts) if parts else f"all {self.loaded} keys matched"


def _unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DataParallel / DistributedDataParallel wrappers."""
    while isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return model


def match_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], path: str, fmt: str,
                  only: tuple[str, ...] | None = None) -> tuple[CheckpointReport, dict[str, torch.Tensor]]:
    """(report, the loadable tensors) of ``state_dict`` against ``model``'s keys and shapes
    (``only``: the top-level module names to consider, e.g. a backbone's)."""
    own = model.state_dict()
    if only is not None:
        own = {k: v for k, v in own.items() if k.split(".")[0] in only}
    mapped, origin = map_keys(state_dict, set(own))
    report = CheckpointReport(path=path, source_format=fmt)
    usable: dict[str, torch.Tensor] = {}
    for key, value in mapped.items():
        if key not in own:
            report.unexpected.append(origin[key])
        elif tuple(value.shape) != tuple(own[key].shape):
            report.shape_mismatch.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            usable[key] = value
    # BN counters are absent from checkpoints of old PyTorch versions; they do not affect outputs.
    # ... nor are the power-method vectors of spectrally normalised convs whose weight came
    # from a plain file (re-estimated from it after the load, robustpose.models.spectral)
    report.missing = [k for k in own if k not in mapped and not k.endswith("num_batches_tracked")
                      and not vectors_optional(k, mapped)]
    prefixed = any(orig.removeprefix("module.") != key for key, orig in origin.items())
    if fmt == "state_dict" and (prefixed or any(k.startswith("head.") for k in origin.values())):
        report.source_format = "mmpose"   # backbone./head. prefixes were mapped
    report.loaded = len(usable)
    return report, usable


def checkpoint_meta(obj: Any) -> dict:
    """The ``meta`` dict of a checkpoint read by :func:`read_checkpoint` (a robustpose
    file's architecture, ``inference``, ``codec``, spectral ``kwargs``, ``rcc``); empty for
    official / mmpose files, which carry none that robustpose reads."""
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    return dict(meta) if isinstance(meta, Mapping) else {}


def load_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True,
                    map_location: str | torch.device = "cpu") -> CheckpointReport:
    """Load official HRNet/SBL, mmpose 1.x or robustpose weights into ``model``.

    With ``strict=True`` any missing, unexpected or wrongly shaped key raises ``ValueError``
    (one line, naming the keys) and nothing is loaded; with ``strict=False`` the matching keys
    are loaded and the returned report lists the rest. fp16-stored weights are cast to the
    model's dtype. A robustpose file whose meta records the RCC layer (``meta['rcc']``)
    puts it on ``model`` (``robustpose.models.rcc.apply_rcc_meta``): the layer has no
    weights, so the meta is the only place that knows the weights were trained behind it.
    """
    return load_checkpoint_object(model, read_checkpoint(path, map_location), path, strict)


def load_checkpoint_object(model: nn.Module, obj: Any, path: str | os.PathLike,
                           strict: bool = True) -> CheckpointReport:
    """:func:`load_checkpoint` on a file already read by :func:`read_checkpoint` (``obj``;
    ``path`` names it in messages): a caller that needs the meta before the model exists
    (spectral norm, codec, inference setting) reads the file once and loads from that."""
    model = _unwrap(model)
    state, fmt = extract_state_dict(obj, path)
    report, usable = match_weights(model, state, str(path), fmt)
    report.meta = checkpoint_meta(obj)
    if strict and not report.ok:
        raise ValueError(f"{path}: checkpoint does not fit {type(model).__name__}: {report.summary()}"
                         f"{spectral_hint(report.unexpected)}")
    model.load_state_dict(usable, strict=False)
    # the RCC layer has no weights: the meta says whether the weights were trained behind it
    apply_rcc_meta(model, report.meta, str(path))
    return report


def load_pretrained_backbone(model: nn.Module, path: str | os.PathLike) -> CheckpointReport:
    """ImageNet initialisation from a user-supplied file (torchvision ResNet, official HRNet
    ImageNet ``hrnet_w32-36af842e.pth``...): every backbone key of the model (its
    ``backbone_names``) must be present with the right shape; classifier keys are ignored."""
    model = _unwrap(model)
    names = tuple(getattr(model, "backbone_names", ()))
    if not names:
        raise ValueError(f"{path}: {type(model).__name__} has no ImageNet backbone to initialise")
    state, fmt = extract_state_dict(read_checkpoint(path), path)
    report, usable = match_weights(model, state, str(path), fmt, only=names)
    if report.missing or report.shape_mismatch:
        bad = CheckpointReport(str(path), fmt, missing=report.missing, shape_mismatch=report.shape_mismatch)
        raise ValueError(f"{path}: not an ImageNet backbone for {type(model).__name__}: {bad.summary()}")
    model.load_state_dict(usable, strict=False)
    return report


def save_checkpoint(model: nn.Module, path: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``{'model': state_dict, 'meta': {...}}`` atomically; ``meta`` gets ``format``,
    and the model's registry ``name`` / ``num_joints`` / ``extra`` / ``kwargs`` when it has
    them (so ``models.rebuild.load_model`` can rebuild it). Meta must
    hold only plain values (it is read back with ``weights_only=True``)."""
    model = _unwrap(model)
    info: dict[str, Any] = {"format": FORMAT}
    info.update(getattr(model, "model_config", {}) or {})
    info.update(dict(meta or {}))
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"model": state, "meta": info}, tmp)
    return path
