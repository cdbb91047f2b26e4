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

Every adapter has ``name``, ``inference`` (the :class:`~robustpose.codecs.InferenceSetting`:
crop size, padding, flip test, flip shift, refinement), read-only ``input_size``
(width, height), ``padding`` (box enlargement for the crop) and ``default_flip_test``
derived from it, ``forward(crops)`` (the raw model call, used for timing) and
``predict(crops, metas, spec, flip_test) -> (N, K, 3)`` keypoints (x, y, score) in image
pixels. All three decode through the same path,
:func:`robustpose.codecs.decode_outputs` (the codec's flip merge, decode and
back-projection).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from robustpose.codecs import (Codec, InferenceSetting, codec_for_outputs, decode_outputs,
                               predict_keypoints)

from robustpose.models.onnx_spec import (OUTPUT_KINDS, OnnxSpec, check_against_model,
                                         load_onnx_spec)

__all__ = ["RegistryAdapter", "CallableAdapter", "OnnxAdapter", "OnnxSpec", "load_onnx_spec",
           "as_adapter", "OUTPUT_KINDS"]


# ----------------------------------------------------------------------------- shared
def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _setting(inference: InferenceSetting | Sequence[int]) -> InferenceSetting:
    if isinstance(inference, InferenceSetting):
        return inference
    return InferenceSetting(input_size=tuple(int(v) for v in inference))


def _for_codec(outputs: Any, kind: str) -> Any:
    """Raw outputs in the type the codec decodes: float32 tensors for heatmaps (the flip
    average in float32, as for torch models), float64 arrays for coordinates."""
    if kind == "heatmaps":
        return torch.as_tensor(_as_numpy(outputs), dtype=torch.float32)
    return np.asarray(_as_numpy(outputs), dtype=np.float64)


def _predict_from_outputs(adapter: Any, crops: torch.Tensor, metas: dict, spec: Any,
                          flip_test: bool) -> np.ndarray:
    """Keypoints (N, K, 3) image px of an adapter without a torch model of its own: its
    :meth:`outputs` on the crops (and the mirrored crops) through the one decode path."""
    kind, out, codec = adapter.outputs(crops)
    flipped = adapter.outputs(torch.flip(crops, dims=[3]))[1] if flip_test else None
    return decode_outputs(codec, out, flipped, metas, spec, adapter.inference).astype(np.float32)


class _SettingView:
    """``input_size``, ``padding``, ``default_flip_test``: views of ``self.inference``."""

    inference: InferenceSetting

    @property
    def input_size(self) -> tuple[int, int]:
        return self.inference.input_size

    @property
    def padding(self) -> float:
        return self.inference.padding

    @property
    def default_flip_test(self) -> bool:
        return self.inference.flip_test


# ----------------------------------------------------------------------------- adapters
class RegistryAdapter(_SettingView):
    """A registry :class:`PoseModel`, predicted with :func:`robustpose.codecs.predict_keypoints`.

    ``inference``: the :class:`~robustpose.codecs.InferenceSetting` (or just the input
    size (w, h): then the papers' protocol — flip test, flip shift, quarter offset);
    ``codec``: the codec the model was trained with (default: HRNet Gaussian heatmaps or
    pixel coordinates, by the model's ``output_kind``).
    """

    def __init__(self, model: torch.nn.Module, inference: InferenceSetting | Sequence[int],
                 name: str = "model", device: str | torch.device = "cpu",
                 codec: Codec | None = None) -> None:
        self.inference = _setting(inference)
        kind = getattr(model, "output_kind", "heatmaps")
        self.codec = codec or codec_for_outputs(kind, self.inference)
        if self.codec.output_kind != kind:
            raise ValueError(f"codec {self.codec.name!r} decodes {self.codec.output_kind}, but "
                             f"the model outputs {kind}")
        self.model = model.eval().to(device)
        self.name = name
        self.device = torch.device(device)

    @torch.no_grad()
    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.model(crops.to(self.device))

    @torch.no_grad()
    def outputs(self, crops: torch.Tensor) -> tuple[str, Any, Codec]:
        """One forward pass -> ``(kind, outputs, codec)``: ``kind`` 'heatmaps' (float32
        tensor N x K x h x w, the last stack of stacked models) or 'coords' (float64 array
        N x K x 2|3 in crop px), in the data set's keypoint order, and the codec that
        decodes them (what stability metrics and query attacks read)."""
        out = self.forward(crops)
        out = out[-1] if isinstance(out, (list, tuple)) else out
        kind = self.codec.output_kind
        return kind, _for_codec(out, kind), self.codec

    @torch.no_grad()
    def predict(self, crops: torch.Tensor, metas: dict, spec: Any,
                flip_test: bool) -> np.ndarray:
        setting = self.inference.replace(flip_test=bool(flip_test))
        keypoints = predict_keypoints(self.model, crops.to(self.device), metas, spec,
                                      setting, self.codec)
        return _as_numpy(keypoints).astype(np.float32)


class CallableAdapter(_SettingView):
    """Any callable ``crops (N,3,H,W) float [0,1] RGB -> heatmaps or crop-pixel keypoints``.

    ``output_kind`` 'auto' decides per call: a 4-D output is heatmaps (N,K,h,w), a 3-D one
    is keypoints (N,K,2|3) in pixels of the ``input_size`` crop. ``keypoint_index_map``
    picks and orders the dataset's keypoints from the model's (None = identity).
    ``input_size``, ``padding``, ``flip_test`` and ``shift`` (the flip shift) make the
    :class:`~robustpose.codecs.InferenceSetting`, or give ``inference`` whole.
    """

    def __init__(self, fn: Callable, input_size: tuple[int, int] = (192, 256),
                 name: str | None = None, padding: float = 1.25, output_kind: str = "auto",
                 keypoint_index_map: Sequence[int] | None = None, flip_test: bool = False,
                 shift: bool = True, inference: InferenceSetting | None = None) -> None:
        if output_kind not in OUTPUT_KINDS + ("auto",):
            raise ValueError(f"output_kind must be one of {OUTPUT_KINDS + ('auto',)}, "
                             f"got {output_kind!r}")
        self.fn = fn
        self.inference = inference or InferenceSetting(
            input_size=(int(input_size[0]), int(input_size[1])), padding=padding,
            flip_test=flip_test, flip_shift=shift)
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.output_kind = output_kind
        self.keypoint_index_map = (None if keypoint_index_map is None
                                   else [int(i) for i in keypoint_index_map])
        self._codecs: dict[str, Codec] = {}

    def forward(self, crops: torch.Tensor) -> Any:
        with torch.no_grad():
            return self.fn(crops)

    def _select(self, out: Any) -> np.ndarray | torch.Tensor:
        if out is None or isinstance(out, (dict, str, bytes)):
            raise ValueError(f"callable {self.name!r} returned {type(out).__name__}; expected "
                             "heatmaps (N,K,h,w) or keypoints (N,K,2|3) as a tensor or array")
        if not isinstance(out, torch.Tensor):
            try:  # None, a dict, ragged lists: name the callable, not numpy's dtype rules
                out = torch.as_tensor(np.asarray(out, dtype=np.float32))
            except (TypeError, ValueError):
                raise ValueError(f"callable {self.name!r} returned {type(out).__name__}; "
                                 "expected heatmaps (N,K,h,w) or keypoints (N,K,2|3) as a "
                                 "tensor or array") from None
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

    def codec(self, kind: str) -> Codec:
        """The codec decoding outputs of ``kind`` (one per kind, built on first use)."""
        if kind not in self._codecs:
            self._codecs[kind] = codec_for_outputs(kind, self.inference)
        return self._codecs[kind]

    def outputs(self, crops: torch.Tensor) -> tuple[str, Any, Codec]:
        """One call -> ``(kind, outputs, codec)`` as :meth:`RegistryAdapter.outputs`."""
        out = self._select(self.forward(crops))
        kind = self._kind(out)
        return kind, _for_codec(out, kind), self.codec(kind)

    def predict(self, crops: torch.Tensor, metas: dict, spec: Any,
                flip_test: bool) -> np.ndarray:
        return _predict_from_outputs(self, crops, metas, spec, flip_test)


# ----------------------------------------------------------------------------- ONNX
def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("the ONNX adapter needs onnxruntime: pip install 'robustpose[onnx]'"
                          ) from None
    return onnxruntime


class OnnxAdapter(_SettingView):
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
        # every spec-versus-model rule in one place (onnx_spec), at load: a mismatch is one
        # line naming the model and the key, never a traceback from the first batch
        self.model_label = str(onnx_path)
        declared_in, _, self.num_keypoints = check_against_model(
            self.spec, self.session.get_inputs(), self.session.get_outputs(), self.model_label)
        self.input_name = declared_in.name
        self.output_name = self.spec.output_name or self.session.get_outputs()[0].name
        batch_dim = declared_in.shape[0]
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self.name = self.spec.name
        spec_ = self.spec
        self.inference = InferenceSetting(
            input_size=spec_.input_size, padding=spec_.padding, flip_test=spec_.flip_test,
            flip_shift=spec_.flip_shift, refine=spec_.refine, dark_kernel=spec_.dark_kernel)
        self.codec = codec_for_outputs(spec_.output_kind, self.inference)

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
            try:
                out = self.session.run([self.output_name], {self.input_name: chunk})[0]
            except Exception as exc:  # onnxruntime's own exception types: one line
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ValueError(f"{self.model_label}: onnxruntime failed on input "
                                 f"{self.input_name!r} of shape {list(chunk.shape)} ({first:.200}); "
                                 f"check input_size, layout and value_range of "
                                 f"{getattr(self.spec, 'source', 'the ONNX spec')}") from None
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
        return torch.sigmoid(heatmaps) if self.spec.heatmap_activation == "sigmoid" else heatmaps

    def outputs(self, crops: torch.Tensor) -> tuple[str, Any, Codec]:
        """One run -> ``(kind, outputs, codec)`` as :meth:`RegistryAdapter.outputs`."""
        kind = self.spec.output_kind
        read = self._heatmaps if kind == "heatmaps" else self._keypoints
        return kind, _for_codec(read(self.forward(crops)), kind), self.codec

    def predict(self, crops: torch.Tensor, metas: dict, spec: Any,
                flip_test: bool) -> np.ndarray:
        return _predict_from_outputs(self, crops, metas, spec, flip_test)


def as_adapter(model: Any, **kwargs: Any) -> Any:
    """Wrap ``model`` as an adapter: adapters pass through, PoseModels get
    :class:`RegistryAdapter`, other callables :class:`CallableAdapter`.

    For PoseModels, ``inference`` (an InferenceSetting) or its pieces ``input_size``,
    ``padding``, ``shift`` / ``flip_shift``, ``post_process`` / ``refine`` and
    ``dark_kernel`` describe the crops and decoding; ``name``, ``device`` and ``codec``
    go to the adapter.
    """
    if hasattr(model, "predict") and hasattr(model, "input_size") and hasattr(model, "padding"):
        return model
    if isinstance(model, torch.nn.Module) and hasattr(model, "output_kind"):
        inference = kwargs.pop("inference", None)
        given_size = kwargs.pop("input_size", None)
        input_size = given_size or getattr(model, "input_size", None)
        fields = {new: kwargs.pop(old) for old, new in (
            ("padding", "padding"), ("shift", "flip_shift"), ("flip_shift", "flip_shift"),
            ("post_process", "refine"), ("refine", "refine"), ("dark_kernel", "dark_kernel"))
            if old in kwargs}
        for unused in ("output_kind", "keypoint_index_map", "flip_test"):
            kwargs.pop(unused, None)  # callable options; the benchmark's flip_test rules
        if inference is None:
            if input_size is None:
                raise ValueError("give input_size=(width, height) for this model")
            inference = InferenceSetting(input_size=tuple(input_size), **fields)
        else:
            inference = inference.replace(**fields, **({"input_size": tuple(given_size)}
                                                       if given_size else {}))
        return RegistryAdapter(model, inference, **kwargs)
    if callable(model):
        kwargs.pop("device", None)
        return CallableAdapter(model, **kwargs)
    raise TypeError(f"cannot benchmark a {type(model).__name__}: give a PoseModel, an "
                    "adapter or a callable crops -> heatmaps/keypoints")
