"""Adapters: anything that maps person crops to keypoints, behind one interface.

A benchmark needs one operation from a model: *crops in, keypoints in image pixels out*.
Three kinds of model provide it here:

- :class:`RegistryAdapter` — a :class:`robustpose.models.PoseModel` (registry architecture
  with official or robustpose weights), decoded with the paper conventions
  (:func:`robustpose.codecs.predict_keypoints`: flip test, quarter-pixel shift).
- :class:`OnnxAdapter` — an ONNX file run by onnxruntime, described by a spec file
  (:func:`load_onnx_spec`) or a preset name (``movenet``, ``blazepose``, ``rtmpose``):
  input size / dtype / range / layout, output kind (``heatmaps``, ``coords``, ``simcc``)
  and roles, coordinate order and units, and the keypoint index map (docs/models.md).
  It lives in :mod:`robustpose.models.onnx_adapter` (``.tflite`` files:
  :mod:`robustpose.models.tflite_adapter`), re-exported here.
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

from typing import Any, Callable, Sequence

import numpy as np
import torch

from robustpose.codecs import Codec, InferenceSetting, codec_for_outputs, predict_keypoints

from robustpose.models.adapter_base import (_as_numpy, _for_codec, _predict_from_outputs,
                                            _setting, _SettingView)
from robustpose.models.onnx_adapter import OnnxAdapter
from robustpose.models.onnx_spec import OUTPUT_KINDS, OnnxSpec, load_onnx_spec

__all__ = ["RegistryAdapter", "CallableAdapter", "OnnxAdapter", "OnnxSpec", "load_onnx_spec",
           "as_adapter", "OUTPUT_KINDS"]


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
