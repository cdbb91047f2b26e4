"""Adapters: anything that maps person crops to keypoints, behind one interface.

A benchmark needs one operation from a model: *crops in, keypoints in image pixels out*.
Three kinds of model provide it here:

- :class:`RegistryAdapter` — a :class:`robustpose.models.PoseModel` (registry architecture
  with official or robustpose weights), decoded with the paper conventions
  (:func:`robustpose.codecs.predict_keypoints`: flip test, quarter-pixel shift).
- :class:`OnnxAdapter` — an ONNX file run by onnxruntime, described by a small spec file
  (:func:`load_onnx_spec`): input size, colour order, value range / normalisation, crop
  padding, output kind (``heatmaps`` or ``coords`` in crop pixels), output name and the
  keypoint index map onto the dataset's keypoints.
- :class:`CallableAdapter` — any Python callable ``crops (N,3,H,W) float [0,1] RGB ->
  heatmaps (N,K,h,w) or keypoints (N,K,2|3) in crop pixels``.

Every adapter has ``name``, ``input_size`` (width, height), ``padding`` (box enlargement
for the crop), ``default_flip_test``, ``forward(crops)`` (the raw model call, used for
timing) and ``predict(crops, metas, spec, flip_test) -> (N, K, 3)`` keypoints (x, y,
score) in image pixels.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

OUTPUT_KINDS = ("heatmaps", "coords")


# ----------------------------------------------------------------------------- geometry
def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _flip_back_coords(coords: np.ndarray, width: int, spec) -> np.ndarray:
    """Undo a horizontal flip of the crop on (N, K, C>=2) crop-pixel coordinates."""
    out = coords[:, spec.flip_permutation()].copy()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def decode_heatmap_output(heatmaps: torch.Tensor, flipped: torch.Tensor | None,
                          metas: dict, spec: Any, input_size: tuple[int, int],
                          shift: bool = True) -> np.ndarray:
    """Heatmaps (N,K,h,w) (+ optional heatmaps of the flipped crops) -> (N,K,3) image px.

    ``shift`` is HRNet's 1-px shift of the flipped-back heatmaps; decoding always applies
    the quarter-pixel refinement (HRNet's post-processing), as for registry models.
    """
    from robustpose.codecs import GaussianHeatmap, flip_heatmaps, heatmaps_to_image_coords

    heatmaps = torch.as_tensor(heatmaps, dtype=torch.float32)
    if flipped is not None:
        back = flip_heatmaps(torch.as_tensor(flipped, dtype=torch.float32),
                             spec.flip_pairs, shift=shift)
        heatmaps = (heatmaps + torch.as_tensor(back)) * 0.5
    h, w = heatmaps.shape[-2:]
    codec = GaussianHeatmap(tuple(input_size), (int(w), int(h)))
    coords, maxvals = codec.decode(heatmaps)
    coords = heatmaps_to_image_coords(_as_numpy(coords), _as_numpy(metas["center"]),
                                      _as_numpy(metas["scale"]), (int(w), int(h)))
    out = np.concatenate([_as_numpy(coords)[..., :2],
                          _as_numpy(maxvals).reshape(coords.shape[0], -1, 1)], axis=2)
    return out.astype(np.float32)


def decode_coord_output(coords: np.ndarray, flipped: np.ndarray | None, metas: dict,
                        spec: Any, input_size: tuple[int, int]) -> np.ndarray:
    """Crop-pixel keypoints (N,K,2|3) (+ flipped-crop ones) -> (N,K,3) image pixels.

    A missing third column means score 1. With flip test the flipped prediction is
    mirrored back, its flip pairs swapped, and both are averaged (positions and scores).
    """
    from robustpose.codecs import heatmaps_to_image_coords

    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape[-1] == 2:
        coords = np.concatenate([coords, np.ones(coords.shape[:-1] + (1,))], axis=-1)
    if flipped is not None:
        flipped = np.asarray(flipped, dtype=np.float64)
        if flipped.shape[-1] == 2:
            flipped = np.concatenate([flipped, np.ones(flipped.shape[:-1] + (1,))], -1)
        coords = 0.5 * (coords + _flip_back_coords(flipped, input_size[0], spec))
    xy = heatmaps_to_image_coords(coords[..., :2], _as_numpy(metas["center"]),
                                  _as_numpy(metas["scale"]), tuple(input_size))
    return np.concatenate([xy, coords[..., 2:3]], axis=2).astype(np.float32)


# ----------------------------------------------------------------------------- adapters
class RegistryAdapter:
    """A registry :class:`PoseModel`, predicted with :func:`robustpose.codecs.predict_keypoints`."""

    default_flip_test = True  # the papers' protocol

    def __init__(self, model: torch.nn.Module, input_size: tuple[int, int],
                 name: str = "model", padding: float = 1.25, shift: bool = True,
                 device: str | torch.device = "cpu", post_process: str = "quarter",
                 dark_kernel: int = 11) -> None:
        if post_process not in ("quarter", "dark"):
            raise ValueError(f"post_process must be 'quarter' or 'dark', got {post_process!r}")
        self.model = model.eval().to(device)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.name, self.padding, self.shift = name, float(padding), shift
        self.post_process, self.dark_kernel = post_process, int(dark_kernel)
        self.device = torch.device(device)

    @torch.no_grad()
    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.model(crops.to(self.device))

    @torch.no_grad()
    def predict(self, crops: torch.Tensor, metas: dict, spec: Any,
                flip_test: bool) -> np.ndarray:
        from robustpose.codecs import predict_keypoints

        keypoints = predict_keypoints(self.model, crops.to(self.device), metas, spec,
                                      flip_test=flip_test, shift=self.shift,
                                      refine=self.post_process, blur_kernel=self.dark_kernel)
        return _as_numpy(keypoints).astype(np.float32)


class CallableAdapter:
    """Any callable ``crops (N,3,H,W) float [0,1] RGB -> heatmaps or crop-pixel keypoints``.

    ``output_kind`` 'auto' decides per call: a 4-D output is heatmaps (N,K,h,w), a 3-D one
    is keypoints (N,K,2|3) in pixels of the ``input_size`` crop. ``keypoint_index_map``
    picks and orders the dataset's keypoints from the model's (None = identity).
    """

    def __init__(self, fn: Callable, input_size: tuple[int, int] = (192, 256),
                 name: str | None = None, padding: float = 1.25, output_kind: str = "auto",
                 keypoint_index_map: Sequence[int] | None = None, flip_test: bool = False,
                 shift: bool = True) -> None:
        if output_kind not in OUTPUT_KINDS + ("auto",):
            raise ValueError(f"output_kind must be one of {OUTPUT_KINDS + ('auto',)}, "
                             f"got {output_kind!r}")
        self.fn = fn
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.padding, self.output_kind, self.shift = float(padding), output_kind, shift
        self.keypoint_index_map = (None if keypoint_index_map is None
                                   else [int(i) for i in keypoint_index_map])
        self.default_flip_test = bool(flip_test)

    def forward(self, crops: torch.Tensor) -> Any:
        with torch.no_grad():
            return self.fn(crops)

    def _select(self, out: Any) -> np.ndarray | torch.Tensor:
        out = out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
        if self.keypoint_index_map is not None:
            out = out[:, self.keypoint_index_map]
        return out

    def _kind(self, out: Any) -> str:
        if self.output_kind != "auto":
            return self.output_kind
        ndim = len(out.shape)
        if ndim == 4:
            return "heatmaps"
        if ndim == 3 and out.shape[-1] in (2, 3):
            return "coords"
        raise ValueError(f"callable {self.name!r} returned shape {tuple(out.shape)}; expected "
                         "heatmaps (N,K,h,w) or keypoints (N,K,2|3)")

    def predict(self, crops: torch.Tensor, metas: dict, spec: Any,
                flip_test: bool) -> np.ndarray:
        out = self._select(self.forward(crops))
        flipped = self._select(self.forward(torch.flip(crops, dims=[3]))) if flip_test else None
        if self._kind(out) == "heatmaps":
            return decode_heatmap_output(out, flipped, metas, spec, self.input_size, self.shift)
        return decode_coord_output(_as_numpy(out), None if flipped is None else
                                   _as_numpy(flipped), metas, spec, self.input_size)


# ----------------------------------------------------------------------------- ONNX
@dataclass
class OnnxSpec:
    """How to feed an ONNX pose model and read its output (see docs/benchmark.md)."""

    input_size: tuple[int, int]                 # (width, height) of the crop
    output_kind: str                            # 'heatmaps' | 'coords' (crop pixels)
    output_name: str | None = None              # None = the first output
    input_name: str | None = None               # None = the first input
    color_order: str = "RGB"                    # 'RGB' | 'BGR'
    layout: str = "NCHW"                        # 'NCHW' | 'NHWC'
    value_range: tuple[float, float] = (0.0, 1.0)   # pixel range before mean/std
    mean: tuple[float, float, float] | None = None  # in value_range units, input channel order
    std: tuple[float, float, float] | None = None
    padding: float = 1.25                       # box enlargement of the crop
    values_per_keypoint: int = 2                # coords: flat output stride (x, y, ...)
    score_index: int | None = None              # coords: which value is the score
    score_activation: str = "none"              # 'none' | 'sigmoid'
    keypoint_index_map: list[int] | None = None  # dataset keypoint k = model keypoint map[k]
    flip_test: bool = False
    name: str = "onnx"
    extra: dict = field(default_factory=dict)


def load_onnx_spec(path: str | Path) -> OnnxSpec:
    """Read a YAML/JSON ONNX spec file; a bad file gives a one-line error naming it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX spec file not found")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot parse ONNX spec ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: ONNX spec must be a mapping of keys to values")
    known = set(OnnxSpec.__dataclass_fields__) - {"extra"}
    missing = [k for k in ("input_size", "output_kind") if k not in data]
    if missing:
        raise ValueError(f"{path}: ONNX spec lacks required key(s) {', '.join(missing)}")
    kwargs = {k: v for k, v in data.items() if k in known}
    extra = {k: v for k, v in data.items() if k not in known}
    try:
        spec = OnnxSpec(**kwargs, extra=extra)
        spec.input_size = (int(spec.input_size[0]), int(spec.input_size[1]))
        spec.value_range = (float(spec.value_range[0]), float(spec.value_range[1]))
    except (TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"{path}: bad ONNX spec value ({exc})") from None
    checks = [(spec.output_kind in OUTPUT_KINDS, f"output_kind must be one of {OUTPUT_KINDS}"),
              (spec.color_order.upper() in ("RGB", "BGR"), "color_order must be RGB or BGR"),
              (spec.layout.upper() in ("NCHW", "NHWC"), "layout must be NCHW or NHWC"),
              (spec.score_activation in ("none", "sigmoid"),
               "score_activation must be none or sigmoid"),
              ((spec.mean is None) == (spec.std is None), "give both mean and std, or neither"),
              (spec.padding > 0, "padding must be positive")]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"{path}: {message}")
    if "name" not in data:
        spec.name = path.stem
    return spec


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("the ONNX adapter needs onnxruntime: pip install 'robustpose[onnx]'"
                          ) from None
    return onnxruntime


class OnnxAdapter:
    """An ONNX pose model run by onnxruntime on CPU (or CUDA when its provider exists).

    A model whose batch dimension is fixed (e.g. BlazePose: 1) is fed one crop at a time.
    """

    def __init__(self, onnx_path: str | Path, spec: OnnxSpec | str | Path,
                 device: str = "cpu", threads: int | None = None) -> None:
        ort = _import_onnxruntime()
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise FileNotFoundError(f"{onnx_path}: ONNX model not found")
        self.spec = spec if isinstance(spec, OnnxSpec) else load_onnx_spec(spec)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"{onnx_path}: onnxruntime cannot load it "
                             f"({str(exc).splitlines()[0]})") from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        self.input_name = self.spec.input_name or next(iter(inputs))
        self.output_name = self.spec.output_name or outputs[0]
        if self.input_name not in inputs or self.output_name not in outputs:
            raise ValueError(f"{onnx_path}: spec names input {self.input_name!r} / output "
                             f"{self.output_name!r}; the model has inputs {list(inputs)} "
                             f"and outputs {outputs}")
        batch_dim = inputs[self.input_name].shape[0]
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self.name = self.spec.name
        self.input_size = self.spec.input_size
        self.padding = self.spec.padding
        self.default_flip_test = self.spec.flip_test

    def _prepare(self, crops: torch.Tensor) -> np.ndarray:
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
        return np.ascontiguousarray(x, dtype=np.float32)

    def forward(self, crops: torch.Tensor) -> np.ndarray:
        """Raw output named ``output_name`` for a batch of crops (any N)."""
        x = self._prepare(crops)
        step = self.fixed_batch or len(x)
        parts = []
        for start in range(0, len(x), max(step, 1)):
            chunk = x[start:start + step]
            pad = step - len(chunk)
            if pad:  # a fixed batch larger than the remainder: pad with zeros, drop after
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
            out = self.session.run([self.output_name], {self.input_name: chunk})[0]
            parts.append(out[:len(chunk) - pad])
        return np.concatenate(parts, axis=0)

    def _keypoints(self, raw: np.ndarray) -> np.ndarray:
        """Flat or (N,K,C) coordinate output -> (N, K_dataset, 3) crop px + score."""
        spec = self.spec
        raw = raw.reshape(raw.shape[0], -1, spec.values_per_keypoint) if raw.ndim == 2 else raw
        xy = raw[..., :2].astype(np.float64)
        if spec.score_index is not None:
            score = raw[..., spec.score_index].astype(np.float64)
            if spec.score_activation == "sigmoid":
                score = 1.0 / (1.0 + np.exp(-np.clip(score, -60, 60)))
        else:
            score = np.ones(xy.shape[:2])
        out = np.concatenate([xy, score[..., None]], axis=-1)
        return out if spec.keypoint_index_map is None else out[:, spec.keypoint_index_map]

    def _heatmaps(self, raw: np.ndarray) -> torch.Tensor:
        heatmaps = torch.from_numpy(np.asarray(raw, np.float32))
        if self.spec.keypoint_index_map is not None:
            heatmaps = heatmaps[:, self.spec.keypoint_index_map]
        return heatmaps

    def predict(self, crops: torch.Tensor, metas: dict, spec: Any,
                flip_test: bool) -> np.ndarray:
        raw = self.forward(crops)
        raw_flip = self.forward(torch.flip(crops, dims=[3])) if flip_test else None
        if self.spec.output_kind == "heatmaps":
            return decode_heatmap_output(self._heatmaps(raw), None if raw_flip is None else
                                         self._heatmaps(raw_flip), metas, spec, self.input_size)
        return decode_coord_output(self._keypoints(raw), None if raw_flip is None else
                                   self._keypoints(raw_flip), metas, spec, self.input_size)


def as_adapter(model: Any, **kwargs: Any) -> Any:
    """Wrap ``model`` as an adapter: adapters pass through, PoseModels get
    :class:`RegistryAdapter`, other callables :class:`CallableAdapter`."""
    if hasattr(model, "predict") and hasattr(model, "input_size") and hasattr(model, "padding"):
        return model
    if isinstance(model, torch.nn.Module) and hasattr(model, "output_kind"):
        input_size = kwargs.pop("input_size", None) or getattr(model, "input_size", None)
        if input_size is None:
            raise ValueError("give input_size=(width, height) for this model")
        kwargs.pop("output_kind", None)
        kwargs.pop("keypoint_index_map", None)
        kwargs.pop("flip_test", None)
        return RegistryAdapter(model, input_size, **kwargs)
    if callable(model):
        kwargs.pop("device", None)
        return CallableAdapter(model, **kwargs)
    raise TypeError(f"cannot benchmark a {type(model).__name__}: give a PoseModel, an "
                    "adapter or a callable crops -> heatmaps/keypoints")
