"""Highly differentiated heatmaps (HDHR, stable heatmap regression Sec. 3.2), codec ``hdhr``.

Encode: joint k's target is ``HD(p) = alpha ** d(p, p_k)`` for ``d <= t_hd`` and 0 beyond,
``d`` the distance in heatmap pixels between pixel ``p`` and the keypoint's heatmap pixel
``p_k`` (paper: chessboard ``max(|dx|, |dy|)``, alpha = 0.7, T_hd = 8; options ``'euclidean'``
``sqrt(dx^2 + dy^2)`` and ``'cityblock'`` ``|dx| + |dy|``). ``p_k`` is rounded exactly as
:class:`~robustpose.codecs.GaussianHeatmap` rounds its peak (HRNet: ``int(x / stride + 0.5)``,
truncation toward zero), so both codecs put a keypoint on the same pixel. ``encode`` returns
``target`` (K, h, w) float32, ``target_weight`` (K,) (0 for an unlabelled joint and for one
whose nonzero region misses the map entirely, as HRNet does for its 3-sigma square) and
``target_labels`` (K, h, w) float32, the multi-label map ``y = (HD > 0)`` of the weighted
cross-entropy (Eq. 8, ``robustpose.losses.WeightedCrossEntropyLoss``).

Decode: the model outputs logits ``r``; the prediction is the argmax of the per-joint pixel
softmax, which is the argmax of ``r`` itself (softmax is strictly increasing), so no softmax
is computed for the position (ties: the lowest row-major index). Refinement follows the
:class:`~robustpose.codecs.InferenceSetting`: ``'quarter'`` moves 0.25 px towards the
higher neighbour on each axis (HRNet's rule, with its border condition): the sign of a
neighbour difference is the same on logits and on their softmax, so it is applied to the
logits unchanged, and it is kept as the default because HDHR, like HRNet's Gaussian, puts
the target on the rounded pixel and the neighbour asymmetry of a trained model carries the
sub-pixel rest; ``'none'`` gives the integer argmax; ``'dark'`` is refused (DARK's Taylor
step assumes a Gaussian, i.e. a quadratic log-map; an HD map is linear in ``d``).

Scores: ``score='mass'`` (default) is the softmax mass within ``t_hd`` (the codec's own
distance) of the argmax, in [0, 1]: the probability that the keypoint lies there, 1 at the
optimum of the weighted cross-entropy (whose softmax is ``HD / sum HD``, all inside the
region). ``score='max'`` is the softmax maximum itself (``1 / sum HD`` = 1 / 51.0 ~ 0.02 at
that optimum for the defaults: far below COCO's keypoint score threshold of 0.2).

Flip test: the logits of the mirrored crop are mirrored, the pairs swapped and shifted as
heatmaps are (``setting.flip_shift``), then averaged with the unmirrored logits (the
average of logits is a normalised geometric mean of the two softmax maps).
``output_normalisation = 'softmax'``: what D_(1)(2) of a stability run applies to this
codec's outputs (``robustpose stability --normalisation auto``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .base import Codec, register_codec
from .gaussian import _as_numpy, flip_heatmaps, refine_quarter
from .setting import BOUNDARIES, InferenceSetting

__all__ = ["HDHRCodec", "DISTANCES", "hd_offsets"]

DISTANCES = ("chessboard", "euclidean", "cityblock")
SCORES = ("mass", "max")
REFINES_HDHR = ("quarter", "none")


def _distance(dx: np.ndarray, dy: np.ndarray, metric: str) -> np.ndarray:
    dx, dy = np.abs(dx), np.abs(dy)
    if metric == "chessboard":
        return np.maximum(dx, dy)
    if metric == "cityblock":
        return dx + dy
    return np.sqrt(dx * dx + dy * dy)


def hd_offsets(t_hd: int, distance: str = "chessboard") -> np.ndarray:
    """(M, 2) integer (dx, dy) offsets with ``d <= t_hd``: the support of one HD map."""
    r = np.arange(-t_hd, t_hd + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    keep = _distance(dx, dy, distance) <= t_hd + 1e-9
    return np.stack([dx[keep], dy[keep]], axis=1).astype(np.int64)


@register_codec("hdhr")
class HDHRCodec(Codec):
    """Keypoints (input px) <-> K x h x w highly differentiated heatmaps (module docstring).

    Args:
        input_size, heatmap_size: (width, height) in px.
        alpha: base of ``alpha ** d`` (0 < alpha < 1; paper 0.7).
        t_hd: largest distance with a nonzero value, heatmap px (paper 8).
        distance: 'chessboard' (paper), 'euclidean' or 'cityblock'.
        refine: default sub-pixel step ('quarter' or 'none'); a setting passed to
            :meth:`decode` overrides it. ``boundary``: HRNet's or mmpose's border rule.
        score: 'mass' (softmax mass within t_hd of the argmax) or 'max' (softmax maximum).
    """

    name = "hdhr"
    output_kind = "heatmaps"
    output_normalisation = "softmax"

    def __init__(self, input_size: Sequence[int] = (192, 256),
                 heatmap_size: Sequence[int] = (48, 64), alpha: float = 0.7, t_hd: int = 8,
                 distance: str = "chessboard", refine: str = "quarter",
                 boundary: str = "hrnet", score: str = "mass") -> None:
        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"hdhr: alpha must lie in (0, 1), got {alpha!r}")
        if int(t_hd) != t_hd or int(t_hd) < 0:
            raise ValueError(f"hdhr: t_hd must be an integer >= 0 (heatmap px), got {t_hd!r}")
        if distance not in DISTANCES:
            raise ValueError(f"hdhr: distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
        self._check_refine(refine)
        if boundary not in BOUNDARIES:
            raise ValueError(f"hdhr: boundary must be 'hrnet' or 'mmpose', not {boundary!r}")
        if score not in SCORES:
            raise ValueError(f"hdhr: score must be one of {', '.join(SCORES)}, got {score!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.alpha, self.t_hd, self.distance = float(alpha), int(t_hd), distance
        self.refine, self.boundary, self.score = refine, boundary, score
        self.stride = (self.input_size[0] / self.heatmap_size[0],
                       self.input_size[1] / self.heatmap_size[1])
        self.offsets = hd_offsets(self.t_hd, distance)

    @staticmethod
    def _check_refine(refine: str) -> None:
        if refine == "dark":
            raise ValueError("hdhr: refine 'dark' does not apply (DARK assumes Gaussian maps); "
                             "use val.refine quarter or none")
        if refine not in REFINES_HDHR:
            raise ValueError(f"hdhr: refine must be 'quarter' or 'none', not {refine!r}")

    @property
    def region_sum(self) -> float:
        """``sum HD`` of a keypoint whose whole region lies on the map (the normaliser of the
        softmax at the weighted cross-entropy's optimum)."""
        dx, dy = self.offsets[:, 0], self.offsets[:, 1]
        return float(np.sum(self.alpha ** _distance(dx, dy, self.distance)))

    def encode(self, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        """``target`` (K, h, w) HD maps in [0, 1], ``target_weight`` (K,) and
        ``target_labels`` (K, h, w) = (target > 0); keypoints (K, 3) in input-crop px."""
        kpts = np.asarray(keypoints, dtype=np.float64)
        if kpts.ndim != 2 or kpts.shape[1] < 3:
            raise ValueError(f"hdhr: keypoints must be (K, 3) x, y, visibility, got {kpts.shape}")
        k = kpts.shape[0]
        w, h = self.heatmap_size
        maps = np.zeros((k, h, w), dtype=np.float32)
        weights = (kpts[:, 2] > 0).astype(np.float32)
        xs = np.arange(w, dtype=np.float64)[None, :]
        ys = np.arange(h, dtype=np.float64)[:, None]
        for j in range(k):
            if weights[j] <= 0.5:
                continue
            mu_x = int(kpts[j, 0] / self.stride[0] + 0.5)  # as GaussianHeatmap (HRNet)
            mu_y = int(kpts[j, 1] / self.stride[1] + 0.5)
            d = _distance(xs - mu_x, ys - mu_y, self.distance)
            inside = d <= self.t_hd + 1e-9
            if not inside.any():  # the region misses the map: unsupervised, as HRNet
                weights[j] = 0
                continue
            maps[j] = np.where(inside, self.alpha ** d, 0.0)
        return {"target": maps, "target_weight": weights,
                "target_labels": (maps > 0).astype(np.float32)}

    def decode(self, outputs: Any, setting: InferenceSetting | None = None, *,
               refine: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Logits N x K x h x w -> coords (N, K, 2) float32 in heatmap px, scores (N, K)."""
        logits = _as_numpy(outputs)
        if logits.ndim != 4:
            raise ValueError(f"hdhr: outputs must be N x K x h x w, got shape {logits.shape}")
        if not np.isfinite(logits).all():
            raise ValueError("hdhr: outputs hold NaN or inf values (a diverged model?)")
        n, k, h, w = logits.shape
        flat = logits.reshape(n, k, h * w)
        index = flat.argmax(axis=2)  # numpy: the first maximum
        coords = np.stack([index % w, index // w], axis=-1).astype(np.float32)
        scores = self._scores(flat, index, w, h)
        mode = refine or (setting.refine if setting is not None else self.refine)
        self._check_refine(mode)
        if mode == "none":
            return coords, scores
        boundary = setting.boundary if setting is not None else self.boundary
        return refine_quarter(coords, logits, boundary), scores

    def _scores(self, flat: np.ndarray, index: np.ndarray, w: int, h: int) -> np.ndarray:
        shifted = flat.astype(np.float64) - flat.max(axis=2, keepdims=True)
        prob = np.exp(shifted)
        prob /= prob.sum(axis=2, keepdims=True)
        if self.score == "max":
            return np.take_along_axis(prob, index[..., None], axis=2)[..., 0].astype(np.float32)
        px, py = index % w, index // w
        qx = px[..., None] + self.offsets[:, 0]  # (N, K, M)
        qy = py[..., None] + self.offsets[:, 1]
        valid = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
        flat_q = np.where(valid, qy * w + qx, 0)
        mass = np.where(valid, np.take_along_axis(prob, flat_q, axis=2), 0.0).sum(axis=2)
        return np.clip(mass, 0.0, 1.0).astype(np.float32)

    def flip_back(self, outputs: Any, flip_pairs: Sequence[tuple[int, int]],
                  setting: InferenceSetting | None = None) -> Any:
        """:func:`flip_heatmaps` on the logits, with the setting's ``flip_shift``."""
        return flip_heatmaps(outputs, flip_pairs,
                             shift=True if setting is None else setting.flip_shift)

    def frame(self, outputs: Any) -> tuple[int, int]:
        return int(outputs.shape[-1]), int(outputs.shape[-2])

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "alpha": self.alpha,
                "t_hd": self.t_hd, "distance": self.distance, "refine": self.refine,
                "boundary": self.boundary, "score": self.score}
