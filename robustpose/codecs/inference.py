"""From model outputs to image keypoints: flip test, decoding, back-projection — one path.

:func:`decode_outputs` is the single decode path (flip-test merge, the codec's
``decode``, back-projection to image pixels); :func:`predict_keypoints` runs a torch
model and feeds it; the benchmark adapters feed it the outputs of ONNX models and
callables. Two different "shifts", named once (see
:class:`~robustpose.codecs.InferenceSetting`): ``flip_shift`` moves the flipped-back
heatmaps 1 px right before averaging (HRNet ``TEST.SHIFT_HEATMAP``); ``refine`` is the
sub-pixel step of decoding (HRNet ``TEST.POST_PROCESS``).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..geometry import get_affine_transform
from .base import Codec
from .gaussian import GaussianHeatmap, flip_heatmaps
from .regression import CoordinateRegression
from .setting import InferenceSetting

__all__ = ["flip_heatmaps", "heatmaps_to_image_coords", "predict_heatmaps",
           "predict_keypoints", "decode_outputs", "codec_for_outputs"]


def heatmaps_to_image_coords(coords: np.ndarray, center: np.ndarray, scale: np.ndarray,
                             heatmap_size: Sequence[int]) -> np.ndarray:
    """Output-frame coords (N, K, 2) -> image pixels, HRNet's ``transform_preds``.

    ``center``/``scale`` (N, 2) are the crops' HRNet parameters; ``heatmap_size`` (w, h)
    is the frame the coords are in (:meth:`Codec.frame`: heatmap grid, or the crop).
    Uses the inverse of :func:`get_affine_transform` at rotation 0 for each crop.
    """
    coords = np.asarray(coords, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 2)
    out = np.empty_like(coords)
    for i in range(coords.shape[0]):
        inv = get_affine_transform(center[i], scale[i], 0, heatmap_size, inv=True)
        out[i] = coords[i] @ inv[:, :2].T.astype(np.float64) + inv[:, 2].astype(np.float64)
    return out


def _meta_array(metas: Any, key: str, n: int) -> np.ndarray:
    if isinstance(metas, Mapping):
        value = metas[key]
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        return np.asarray(value, dtype=np.float64).reshape(n, -1)
    return np.asarray([np.asarray(m[key], dtype=np.float64) for m in metas]).reshape(n, -1)


def _last(out: Any) -> Any:
    """Stacked models (hourglass) return a list: the last stack is the prediction."""
    return out[-1] if isinstance(out, (list, tuple)) else out


@torch.no_grad()
def predict_heatmaps(model: torch.nn.Module, images: torch.Tensor,
                     flip_pairs: Sequence[tuple[int, int]], flip_test: bool = True,
                     shift: bool = True) -> torch.Tensor:
    """Model heatmaps of crops N x 3 x H x W in [0, 1], averaged with the flip test
    (``shift``: the setting's ``flip_shift``)."""
    out = _last(model(images))
    if flip_test:
        flipped = _last(model(images.flip(3)))
        out = (out + flip_heatmaps(flipped, flip_pairs, shift=shift)) * 0.5
    return out


def codec_for_outputs(output_kind: str, setting: InferenceSetting,
                      input_size: Sequence[int] | None = None) -> Codec:
    """The default codec that decodes a model's outputs when none was given: HRNet
    Gaussian heatmaps (decoding is size-agnostic: the maps' grid is their frame) or
    pixel-unit coordinate regression. ``input_size`` defaults to the setting's."""
    size = tuple(input_size or setting.input_size)
    if output_kind == "coords":
        return CoordinateRegression(size)
    if output_kind != "heatmaps":
        raise ValueError(f"output_kind must be 'heatmaps' or 'coords', not {output_kind!r}")
    heatmap_size = setting.heatmap_size or (max(1, size[0] // 4), max(1, size[1] // 4))
    return GaussianHeatmap(size, heatmap_size, refine=setting.refine,
                           boundary=setting.boundary, blur_kernel=setting.dark_kernel)


def decode_outputs(codec: Codec, outputs: Any, flipped: Any, metas: Any, spec: Any,
                   setting: InferenceSetting) -> np.ndarray:
    """Raw outputs of N crops (+ those of the mirrored crops, or ``None``) -> keypoints
    (N, K, 3) float64 in image pixels: x, y, score.

    ``metas``: the batch meta (``center``, ``scale`` (N, 2), as collated from
    :class:`~robustpose.data.TopDownDataset`) or a list of per-item dicts; ``spec``: the
    keypoint spec (its ``flip_pairs``); ``setting``: the flip shift and the refinement.
    """
    if flipped is not None:
        outputs = codec.merge_flip(outputs, flipped, spec.flip_pairs, setting)
    n = int(outputs.shape[0])
    coords, scores = codec.decode(outputs, setting)
    xy = heatmaps_to_image_coords(coords, _meta_array(metas, "center", n),
                                  _meta_array(metas, "scale", n), codec.frame(outputs))
    return np.concatenate([xy, np.asarray(scores, dtype=np.float64)[..., None]], axis=-1)


@torch.no_grad()
def predict_keypoints(model: torch.nn.Module, images: torch.Tensor, metas: Any, spec: Any,
                      setting: InferenceSetting | None = None,
                      codec: Codec | None = None) -> np.ndarray:
    """Keypoints (N, K, 3) in image pixels (x, y, score) of a torch model on its crops.

    ``images``: crops N x 3 x H x W float in [0, 1] (on the model's device); ``metas`` and
    ``spec`` as in :func:`decode_outputs`; ``setting``: flip test, flip shift and
    refinement (default: :class:`InferenceSetting` at the crops' size: flip test on,
    HRNet's shift and quarter offset); ``codec``: the codec that made the training
    targets (default: :func:`codec_for_outputs` for the model's ``output_kind``).
    """
    in_size = (int(images.shape[3]), int(images.shape[2]))
    setting = setting or InferenceSetting(input_size=in_size)
    if codec is None:
        codec = codec_for_outputs(getattr(model, "output_kind", "heatmaps"), setting, in_size)
    outputs = _last(model(images))
    flipped = _last(model(images.flip(3))) if setting.flip_test else None
    return decode_outputs(codec, outputs, flipped, metas, spec, setting)
