"""The runtime-independent half of a model file described by a spec (:class:`SpecAdapter`);
onnxruntime's half is :class:`robustpose.models.onnx_adapter.OnnxAdapter`, ai-edge-litert's
:class:`robustpose.models.tflite_adapter.TfliteAdapter`.

The spec (a YAML/JSON file or a preset name, :mod:`.onnx_presets`) says how a crop
(N, 3, H, W) float [0, 1] RGB becomes the model's input (dtype, value range, mean/std,
colour order, layout) and how the outputs, by role, become keypoints (N, K, 3) in crop
pixels (x, y, score) or heatmaps (N, K, h, w); both then decode through the one path,
:func:`robustpose.codecs.decode_outputs`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from robustpose.codecs import Codec, InferenceSetting, codec_for_outputs

from .adapter_base import _for_codec, _predict_from_outputs, _SettingView
from .onnx_check import check_against_model
from .onnx_presets import is_preset, preset_names, preset_spec
from .onnx_spec import OnnxSpec, load_onnx_spec
from .whole_image import input_px

__all__ = ["SpecAdapter", "decode_simcc", "resolve_spec"]

_INT_RANGES = {"uint8": (0, 255), "int32": (-2 ** 31, 2 ** 31 - 1)}


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray,
                 split_ratio: float) -> np.ndarray:
    """SimCC vectors -> keypoints (N, K, 3): x, y in input-crop px and the score, as
    mmpose's ``get_simcc_maximum`` + ``SimCCLabel.decode`` (RTMPose): the argmax bin of
    each axis divided by ``split_ratio`` (bins per pixel); the score is the smaller of the
    two maxima; a keypoint whose score is <= 0 is put at bin -1, as mmpose does.

    ``simcc_x``: (N, K, W * split_ratio), ``simcc_y``: (N, K, H * split_ratio)."""
    simcc_x, simcc_y = np.asarray(simcc_x, np.float64), np.asarray(simcc_y, np.float64)
    locs = np.stack([simcc_x.argmax(axis=2), simcc_y.argmax(axis=2)], axis=-1).astype(np.float64)
    score = np.minimum(simcc_x.max(axis=2), simcc_y.max(axis=2))
    locs[score <= 0] = -1.0
    return np.concatenate([locs / float(split_ratio), score[..., None]], axis=-1)


def resolve_spec(spec: OnnxSpec | str | Path, inputs: Sequence[Any], outputs: Sequence[Any],
                 model: str) -> OnnxSpec:
    """An :class:`OnnxSpec`, a spec file, or a preset name (filled from the model's
    declarations) -> the spec."""
    if isinstance(spec, OnnxSpec):
        return spec
    if is_preset(str(spec)) and not Path(spec).is_file():
        return preset_spec(str(spec), inputs, outputs, model)
    if not Path(spec).is_file():
        raise FileNotFoundError(f"{spec}: ONNX spec file not found (or give a preset: "
                                f"{', '.join(preset_names())})")
    return load_onnx_spec(spec)


class SpecAdapter(_SettingView):
    """A model file run per its spec; subclasses load the runtime, call :meth:`_bind`
    with the declared tensors and implement :meth:`_run`.

    Attributes after binding: ``spec``, ``name``, ``inference``, ``codec``,
    ``input_name``, ``output_names`` (role -> output), ``output_name`` (the first role's),
    ``num_keypoints`` (after ``keypoint_index_map``; None when not fixed) and
    ``fixed_batch`` (a model whose batch dimension is fixed, e.g. 1, is fed in chunks).
    """

    model_label: str = "model"

    def _bind(self, spec: OnnxSpec | str | Path, inputs: Sequence[Any],
              outputs: Sequence[Any]) -> None:
        self.spec = resolve_spec(spec, inputs, outputs, self.model_label)
        # every spec-versus-model rule in one place (onnx_check), at load: a mismatch is one
        # line naming the model and the key, never a traceback from the first batch
        plan = check_against_model(self.spec, inputs, outputs, self.model_label)
        self.input_name = plan.input.name
        self.input_dtype = plan.input_dtype
        self.output_names = {role: arg.name for role, arg in plan.outputs.items()}
        self.output_name = self.output_names[self.spec.roles()[0]]
        self.num_keypoints = plan.num_keypoints
        batch_dim = plan.input.shape[0] if plan.input.shape else None
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self.name = self.spec.name
        spec_ = self.spec
        self.inference = InferenceSetting(
            input_size=spec_.input_size, padding=spec_.padding, flip_test=spec_.flip_test,
            flip_shift=spec_.flip_shift, refine=spec_.refine, dark_kernel=spec_.dark_kernel)
        self.codec = codec_for_outputs(self.output_kind, self.inference)

    @property
    def output_kind(self) -> str:
        """What the codec decodes: 'heatmaps', or 'coords' (SimCC decodes to coords)."""
        return "heatmaps" if self.spec.output_kind == "heatmaps" else "coords"

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        """One runtime call on a prepared chunk -> the outputs of ``spec.roles()``."""
        raise NotImplementedError

    def _prepare(self, crops: torch.Tensor) -> np.ndarray:
        """Crops (N, 3, H, W) float [0, 1] RGB -> the model's input (dtype, range, layout)."""
        spec = self.spec
        x = crops.detach().cpu().float().numpy()
        if spec.color_order.upper() == "BGR":
            x = x[:, ::-1]
        low, high = spec.value_range
        x = x * (high - low) + low
        if spec.mean is not None:
            x = (x - np.asarray(spec.mean, np.float32).reshape(1, 3, 1, 1)) / \
                np.asarray(spec.std, np.float32).reshape(1, 3, 1, 1)
        if spec.layout.upper() == "NHWC":
            x = x.transpose(0, 2, 3, 1)
        if self.input_dtype in _INT_RANGES:  # byte-range models (MoveNet): round, not floor
            lo, hi = _INT_RANGES[self.input_dtype]
            return np.ascontiguousarray(np.clip(np.rint(x), lo, hi).astype(self.input_dtype))
        return np.ascontiguousarray(x, dtype=np.float32)

    def forward(self, crops: torch.Tensor) -> Any:
        """Raw output for a batch of crops (any N): the array of the spec's role
        (``output_name``), or the pair (simcc_x, simcc_y) for SimCC."""
        x = self._prepare(crops)
        step = self.fixed_batch or len(x)
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(x), max(step, 1)):
            chunk = x[start:start + step]
            pad = step - len(chunk)
            if pad:  # a fixed batch larger than the remainder: pad with zeros, drop after
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
            parts.append([out[:len(chunk) - pad] for out in self._run(chunk)])
        joined = [np.concatenate(group, axis=0) for group in zip(*parts)]
        return tuple(joined) if self.spec.output_kind == "simcc" else joined[0]

    def _keypoints(self, raw: Any) -> np.ndarray:
        """Coordinate or SimCC output -> (N, K_dataset, 3): x, y in crop px, score."""
        spec = self.spec
        if spec.output_kind == "simcc":
            out = decode_simcc(raw[0], raw[1], spec.simcc_split_ratio)
            return out if spec.keypoint_index_map is None else out[:, spec.keypoint_index_map]
        if raw.ndim == 2:
            raw = raw.reshape(raw.shape[0], -1, spec.values_per_keypoint)
        elif raw.ndim == 4:  # MoveNet's (N, 1, K, C): one person per crop
            raw = raw[:, 0]
        # u -> u * W, not u * W - 0.5 (0..1 spanning the crop's edges while pixel
        # centres sit at integers): MoveNet Lightning on coco_val_mini, GT boxes, scores
        # AP 35.1 with u * W and 34.9 with the half-pixel shift (docs/models.md)
        xy = input_px(raw[..., :2], spec.coordinate_order, spec.coordinate_units != "crop_px",
                      spec.input_size)
        if spec.score_index is not None:
            score = raw[..., spec.score_index].astype(np.float64)
            if spec.score_activation == "sigmoid":
                score = 1.0 / (1.0 + np.exp(-np.clip(score, -60, 60)))
        else:
            score = np.ones(xy.shape[:2])
        out = np.concatenate([xy, score[..., None]], axis=-1)
        return out if spec.keypoint_index_map is None else out[:, spec.keypoint_index_map]

    def _heatmaps(self, raw: np.ndarray) -> torch.Tensor:
        raw = np.asarray(raw, np.float32)
        if self.spec.heatmap_layout.upper() == "NHWC":
            raw = np.ascontiguousarray(raw.transpose(0, 3, 1, 2))
        heatmaps = torch.from_numpy(raw)
        if self.spec.keypoint_index_map is not None:
            heatmaps = heatmaps[:, self.spec.keypoint_index_map]
        return torch.sigmoid(heatmaps) if self.spec.heatmap_activation == "sigmoid" else heatmaps

    def outputs(self, crops: torch.Tensor) -> tuple[str, Any, Codec]:
        """One run -> ``(kind, outputs, codec)`` as :meth:`RegistryAdapter.outputs`."""
        kind = self.output_kind
        read = self._heatmaps if kind == "heatmaps" else self._keypoints
        return kind, _for_codec(read(self.forward(crops)), kind), self.codec

    def predict(self, crops: torch.Tensor, metas: dict, spec: Any,
                flip_test: bool) -> np.ndarray:
        return _predict_from_outputs(self, crops, metas, spec, flip_test)

    def _run_error(self, exc: Exception, chunk: np.ndarray) -> ValueError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return ValueError(f"{self.model_label}: the runtime failed on input {self.input_name!r} "
                          f"of shape {list(chunk.shape)} ({first:.200}); check input_size, "
                          f"layout and value_range of {getattr(self.spec, 'source', 'the spec')}")
