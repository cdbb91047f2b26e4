"""Coordinate regression (DeepPose): the target *is* the keypoint position.

Registered as ``regression``. ``units='pixels'`` (default, as
:class:`~robustpose.models.resnet.DeepPoseResNet` outputs by default): targets and model
outputs are (x, y) in input-crop pixels; ``units='normalized'``: ``(x / W, y / H)`` with
0 = left/top edge and 1 = right/bottom edge of the crop. Decoding is direct: the output
frame is the crop, so back-projection uses the input size. A model may append a score
column (N, K, 3); without one every score is 1.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .base import Codec, register_codec
from .setting import InferenceSetting

__all__ = ["CoordinateRegression"]

UNITS = ("pixels", "normalized")


def _as_float64(outputs: Any) -> np.ndarray:
    if hasattr(outputs, "detach"):
        outputs = outputs.detach().float().cpu().numpy()
    return np.asarray(outputs, dtype=np.float64)


@register_codec("regression")
class CoordinateRegression(Codec):
    """Keypoints (input px) <-> K x 2 coordinate targets (DeepPose)."""

    name = "regression"
    output_kind = "coords"

    def __init__(self, input_size: Sequence[int] = (192, 256), units: str = "pixels") -> None:
        if units not in UNITS:
            raise ValueError(f"units must be 'pixels' or 'normalized', not {units!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.units = units

    def _to_pixels(self) -> np.ndarray:
        """Multiplier output units -> crop pixels, per axis (x, y)."""
        if self.units == "pixels":
            return np.ones(2)
        return np.array(self.input_size, dtype=np.float64)

    def encode(self, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        """``target`` (K, 2) float32 in the codec's units, ``target_weight`` (K,) float32:
        1 for labelled keypoints (also outside the crop: a coordinate can point there)."""
        kpts = np.asarray(keypoints, dtype=np.float64)
        weight = (kpts[:, 2] > 0).astype(np.float32)
        target = kpts[:, :2] / self._to_pixels()
        target = target * weight[:, None]  # unlabelled: zeros, never supervised
        return {"target": target.astype(np.float32), "target_weight": weight}

    def decode(self, outputs: Any,
               setting: InferenceSetting | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, 2|3) outputs -> coords (N, K, 2) float64 crop px, scores (N, K) (the third
        column, else 1). ``setting`` is not used: there is no refinement step."""
        out = _as_float64(outputs)
        if out.ndim != 3 or out.shape[-1] not in (2, 3):
            raise ValueError(f"coordinate outputs must be N x K x 2 (or 3 with a score), "
                             f"got shape {out.shape}")
        coords = out[..., :2] * self._to_pixels()
        scores = out[..., 2] if out.shape[-1] == 3 else np.ones(out.shape[:2])
        return coords, scores

    def flip_back(self, outputs: Any, flip_pairs: Sequence[tuple[int, int]],
                  setting: InferenceSetting | None = None) -> np.ndarray:
        """Mirror ``x -> W - 1 - x`` (in pixels) and swap each left/right pair; a score
        column moves with its keypoint."""
        out = _as_float64(outputs)
        perm = np.arange(out.shape[1])
        for a, b in flip_pairs:
            perm[a], perm[b] = b, a
        out = out[:, perm].copy()
        scale = self._to_pixels()[0]
        out[..., 0] = ((self.input_size[0] - 1) - out[..., 0] * scale) / scale
        return out

    def merge_flip(self, outputs: Any, flipped: Any, flip_pairs: Sequence[tuple[int, int]],
                   setting: InferenceSetting | None = None) -> np.ndarray:
        return (_as_float64(outputs) + self.flip_back(flipped, flip_pairs, setting)) * 0.5

    def frame(self, outputs: Any) -> tuple[int, int]:
        return self.input_size

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "input_size": list(self.input_size), "units": self.units}
