"""Stability metrics of the stable-heatmap paper (Zhang et al., Neurocomputing 2022).

How far a prediction moves when its input is perturbed slightly, next to how accurate it
is. All positions are the heatmap maxima (integer grid positions, no sub-pixel step):

- ``R`` (Eq. 10): ``R(T, T^mp) = sum over images x and perturbed copies x' of
  ||p(x) - p(x')||^2``, the squared distance between the keypoint predicted on the clean
  crop and on its perturbed copy. Reported as the paper's sum, and per keypoint (mean and
  median of the squared distance) so numbers compare across set sizes; in heatmap pixels
  (the paper's unit) and in input-crop pixels (heatmap px x the stride of each axis).
- ``RUC``: for ``P = 0, 1, ..., P_max`` heatmap px the fraction of keypoints that moved by
  at most ``P``; its area by the trapezoid rule divided by ``P_max`` (1 = nothing moved).
  ``P_max`` defaults to :data:`RUC_P_MAX` = 10 heatmap px (40 crop px at stride 4: past
  that a keypoint has jumped to another body part and the curve is flat).
- ``D_n`` (Eq. 11, n = 64): per heatmap ``sum over i = 2..n of ||p_(i) - p_(1)||^2``,
  ``p_(i)`` the position of the i-th largest value; the mean over heatmaps.
- ``D_(1)(2)`` (Eq. 12): the mean over heatmaps of ``r_(1) - r_(2)``, the largest minus
  the second-largest value: on the raw output (``normalisation='raw'``, models trained on
  Gaussian targets) or after a per-heatmap softmax over the pixels (``'softmax'``, models
  trained with the weighted cross-entropy).
- Accuracy beside them: AUC of PCK over 0..30 image px and EPE
  (:func:`robustpose.evaluation.pck_auc_epe`).

Ties are broken by the lowest row-major index (``y * w + x``): a flat map's maximum is
its top-left pixel and its top-n are its first n pixels. Keypoints not visible in the
ground truth (visibility 0) are left out of every number. NaN outputs raise a one-line
ValueError. Coordinate models have no heatmaps: ``D_n`` and ``D_(1)(2)`` are then absent
(``None``), never zero.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from robustpose.evaluation.pck import pck_auc_epe
from robustpose.utils.conventions import to_numpy as _to_numpy
from robustpose.utils.io import atomic_write_text

DN_N = 64          #: the paper's n of D_n
RUC_P_MAX = 10     #: heatmap px; the RUC curve's last threshold
NORMALISATIONS = ("raw", "softmax")

__all__ = ["DN_N", "RUC_P_MAX", "NORMALISATIONS", "check_finite_heatmaps", "heatmap_maxima",
           "topk_positions", "heatmap_summary", "dn_per_map", "d12_per_map", "ruc_curve", "r_summary",
           "StabilityMetric"]


def check_finite_heatmaps(heatmaps: torch.Tensor, what: str = "heatmaps") -> torch.Tensor:
    """``heatmaps`` (N, K, h, w) as float tensor; a one-line ValueError on NaN/inf or a bad shape."""
    maps = torch.as_tensor(heatmaps)
    if maps.ndim != 4:
        raise ValueError(f"{what}: expected (N, K, h, w), got shape {tuple(maps.shape)}")
    maps = maps.float()
    bad = ~torch.isfinite(maps).flatten(2).all(dim=2)
    if bool(bad.any()):
        raise ValueError(f"{what}: {int(bad.sum())} of {bad.numel()} heatmaps hold NaN or inf "
                         "values (a diverged model?)")
    return maps


def heatmap_maxima(heatmaps: torch.Tensor) -> np.ndarray:
    """(N, K, 2) float64 x, y of each map's maximum in heatmap px (first maximum wins)."""
    maps = check_finite_heatmaps(heatmaps)
    w = maps.shape[3]
    flat = maps.flatten(2)
    # torch.argmax returns the first maximal index; made explicit (and device-proof) by
    # taking the smallest index among the values equal to the max
    top = flat.max(dim=2, keepdim=True).values
    index = torch.where(flat == top, torch.arange(flat.shape[2], device=flat.device),
                        flat.shape[2]).min(dim=2).values
    return torch.stack([index % w, index // w], dim=-1).cpu().numpy().astype(np.float64)


def topk_positions(heatmaps: torch.Tensor, n: int = DN_N) -> tuple[torch.Tensor, torch.Tensor]:
    """The n largest values of each map and their flat indices, ties -> lowest index.

    -> (values (N, K, n) descending, indices (N, K, n) int64, ``y * w + x``). A plain
    :func:`torch.topk`; only maps whose n-th value is tied with an unselected pixel, or
    whose selection has tied values, are redone canonically (rare on real outputs).
    NaN / +inf (which topk ranks first) raise a one-line ValueError."""
    maps = torch.as_tensor(heatmaps)
    if maps.ndim != 4:
        raise ValueError(f"heatmaps: expected (N, K, h, w), got shape {tuple(maps.shape)}")
    n_maps, k, h, w = maps.shape
    if n > h * w:
        raise ValueError(f"D_n with n={n} needs maps of >= {n} pixels, got {h}x{w}")
    flat = maps.reshape(n_maps * k, h * w).float()
    # one value more than asked: the (n+1)-th equals the n-th exactly when an unselected
    # pixel ties with the selection's last one, so one comparison of neighbours in the
    # sorted top finds every tie that could make topk's order differ from the canonical one
    # (a separate scan of the whole map for boundary ties cost as much as topk itself)
    extra = 1 if n < h * w else 0
    values, indices = torch.topk(flat, n + extra, dim=1, sorted=True)
    bad = ~torch.isfinite(values[:, 0])
    if bool(bad.any()):  # topk ranks NaN and +inf first: one look at the top value
        raise ValueError(f"heatmaps: {int(bad.sum())} of {bad.numel()} heatmaps hold NaN or "
                         "inf values (a diverged model?)")
    tied = (values[:, 1:] == values[:, :-1]).any(dim=1)
    values, indices = values[:, :n], indices[:, :n]
    redo = torch.nonzero(tied).flatten()
    if redo.numel():
        sub = flat[redo]
        order = torch.sort(sub, dim=1, descending=True, stable=True)  # stable: index ascending
        values[redo], indices[redo] = order.values[:, :n], order.indices[:, :n]
    return values.reshape(n_maps, k, n), indices.reshape(n_maps, k, n)


def heatmap_summary(heatmaps: torch.Tensor, n: int = DN_N,
                    normalisation: str = "raw") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One top-n pass -> (maxima (N, K, 2) heatmap px, D_n per map (N, K), D_(1)(2) per
    map (N, K)); the same values as :func:`heatmap_maxima`, :func:`dn_per_map` and
    :func:`d12_per_map`, at the cost of one ``torch.topk``."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    maps = torch.as_tensor(heatmaps)
    w = int(maps.shape[-1])
    values, index = topk_positions(maps, n)
    x, y = (index % w).double(), (index // w).double()
    dn = ((x[..., 1:] - x[..., :1]) ** 2 + (y[..., 1:] - y[..., :1]) ** 2).sum(dim=-1)
    top = values[..., :2].double()
    if normalisation == "softmax":  # softmax(v1) - softmax(v2) = (e^v1 - e^v2) / sum e^v
        lse = torch.logsumexp(maps.flatten(2).double(), dim=2)
        top = torch.exp(top - lse[..., None])
    d12 = top[..., 0] - top[..., 1]
    maxima = torch.stack([x[..., 0], y[..., 0]], dim=-1)
    return maxima.cpu().numpy(), dn.cpu().numpy(), d12.cpu().numpy()


def dn_per_map(heatmaps: torch.Tensor, n: int = DN_N) -> torch.Tensor:
    """Eq. 11 per map: (N, K) ``sum_{i=2..n} ||p_(i) - p_(1)||^2`` in heatmap px^2."""
    w = int(torch.as_tensor(heatmaps).shape[-1])
    _, index = topk_positions(heatmaps, n)
    x, y = (index % w).double(), (index // w).double()
    return ((x[..., 1:] - x[..., :1]) ** 2 + (y[..., 1:] - y[..., :1]) ** 2).sum(dim=-1)


def d12_per_map(heatmaps: torch.Tensor, normalisation: str = "raw") -> torch.Tensor:
    """Eq. 12 per map: (N, K) ``r_(1) - r_(2)``, on the raw maps or per-map softmax."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    maps = check_finite_heatmaps(heatmaps)
    flat = maps.flatten(2).double()
    if normalisation == "softmax":
        flat = torch.softmax(flat, dim=2)
    top2 = torch.topk(flat, 2, dim=2).values
    return top2[..., 0] - top2[..., 1]


def ruc_curve(distances: np.ndarray, p_max: int = RUC_P_MAX) -> tuple[np.ndarray, np.ndarray, float]:
    """RUC of distances (any shape, heatmap px; NaN = left out).

    -> (thresholds 0..p_max, fraction with distance <= P at each, normalised area)."""
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    d = d[~np.isnan(d)]
    thresholds = np.arange(0, int(p_max) + 1, dtype=np.float64)
    if d.size == 0:
        return thresholds, np.full(thresholds.shape, np.nan), float("nan")
    # a tolerance: sqrt of an integer squared distance is not exact in floating point
    curve = np.array([(d <= p + 1e-9).mean() for p in thresholds])
    area = float(np.sum((curve[1:] + curve[:-1]) / 2) / p_max) if p_max > 0 else float(curve[0])
    return thresholds, curve, area


def r_summary(squared: np.ndarray) -> dict[str, Any]:
    """Eq. 10 from squared distances (any shape; NaN = left out): sum, per-keypoint mean
    and median, and the count."""
    d2 = np.asarray(squared, dtype=np.float64).reshape(-1)
    d2 = d2[~np.isnan(d2)]
    if d2.size == 0:
        return {"sum": 0.0, "mean": None, "median": None, "count": 0}
    return {"sum": float(d2.sum()), "mean": float(d2.mean()), "median": float(np.median(d2)),
            "count": int(d2.size)}


class StabilityMetric:
    """R, RUC, D_n, D_(1)(2), AUC and EPE of one cell, openpifpaf-shaped.

    Args:
        num_people: M, the people of the data set (``meta['index']`` < M).
        stride: (sx, sy) crop px per heatmap px (input size / heatmap size).
        reference: (M, K, 2) heatmap-px positions on the clean crops (from the clean
            cell's :meth:`positions`), or None for the clean cell itself (no R / RUC).
        n, normalisation, p_max, auc_max: D_n's n, D_(1)(2)'s normalisation, RUC's P_max
            (heatmap px), the AUC range (image px).

    ``accumulate(outputs, meta)``: ``outputs`` a dict with ``positions`` (N, K, 2) heatmap
    px (or crop px / stride for coordinate models; default: the maps' maxima),
    ``keypoints`` (N, K, >=2) image px and,
    for heatmap models, ``heatmaps`` (N, K, h, w); ``meta`` the batch meta (``index``,
    ``keypoints`` ground truth (N, K, 3) image px, ``bbox`` (N, 4)).
    """

    def __init__(self, num_people: int, stride: Sequence[float], reference: np.ndarray | None = None,
                 n: int = DN_N, normalisation: str = "raw", p_max: int = RUC_P_MAX,
                 auc_max: float = 30.0) -> None:
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
        self.num_people, self.stride = int(num_people), (float(stride[0]), float(stride[1]))
        self.reference = None if reference is None else np.asarray(reference, np.float64)
        self.n, self.normalisation, self.p_max = int(n), normalisation, int(p_max)
        self.auc_max = float(auc_max)
        self.reset()

    @property
    def conventions(self) -> dict[str, Any]:
        return {"metric": "stability", "dn_n": self.n, "d12_normalisation": self.normalisation,
                "ruc_p_max_heatmap_px": self.p_max, "auc_max_px": self.auc_max,
                "stride": list(self.stride), "positions": "heatmap maxima, ties -> lowest index",
                "visible_only": True}

    def reset(self) -> None:
        self._positions = np.full((self.num_people, 0, 2), np.nan)
        self._visible = np.zeros((self.num_people, 0), bool)
        self._seen = np.zeros(self.num_people, bool)
        self._pred: list[np.ndarray] = []
        self._gt: list[np.ndarray] = []
        self._boxes: list[np.ndarray] = []
        self._dn: list[np.ndarray] = []
        self._d12: list[np.ndarray] = []

    def accumulate(self, outputs: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        index = _to_numpy(meta["index"]).astype(np.int64).reshape(-1)
        gt = _to_numpy(meta["keypoints"]).astype(np.float64)
        summary = None
        if outputs.get("heatmaps") is not None:
            summary = heatmap_summary(outputs["heatmaps"], self.n, self.normalisation)
        positions = np.asarray(outputs["positions"] if outputs.get("positions") is not None
                               else summary[0], np.float64)
        if positions.ndim != 3 or positions.shape[1] != gt.shape[1]:
            given = positions.shape[1] if positions.ndim == 3 else tuple(positions.shape)
            raise ValueError(f"stability: the model gives {given} keypoints per person, the "
                             f"data set has {gt.shape[1]} (a model for another keypoint set?)")
        if np.isnan(positions).any():
            raise ValueError("stability: predicted positions hold NaN values")
        if self._positions.shape[1] != positions.shape[1]:
            self._positions = np.full((self.num_people,) + positions.shape[1:], np.nan)
            self._visible = np.zeros((self.num_people, positions.shape[1]), bool)
        visible = gt[:, :, 2] > 0
        self._positions[index] = positions
        self._visible[index] = visible
        self._seen[index] = True
        self._pred.append(np.asarray(outputs["keypoints"], np.float64)[:, :, :2])
        self._gt.append(gt)
        self._boxes.append(_to_numpy(meta["bbox"]).astype(np.float64).reshape(-1, 4))
        if summary is not None:
            _, dn, d12 = summary
            self._dn.append(dn[visible])
            self._d12.append(d12[visible])

    def positions(self) -> np.ndarray:
        """(M, K, 2) heatmap-px positions seen so far (NaN rows: people not seen)."""
        return self._positions.copy()

    def squared_distances(self) -> tuple[np.ndarray, np.ndarray]:
        """(M, K) squared clean-vs-perturbed distances in heatmap px^2 and crop px^2
        (NaN: not seen, or not visible in the ground truth)."""
        if self.reference is None:
            raise ValueError("stability: no clean reference positions (the clean cell)")
        delta = self._positions - self.reference
        heat = (delta ** 2).sum(axis=-1)
        crop = (delta[..., 0] * self.stride[0]) ** 2 + (delta[..., 1] * self.stride[1]) ** 2
        hidden = ~self._visible_mask()
        heat[hidden], crop[hidden] = np.nan, np.nan
        return heat, crop

    def _visible_mask(self) -> np.ndarray:
        """(M, K) True where the person was seen and the keypoint is visible in the GT."""
        return self._visible & self._seen[:, None]

    def stats(self) -> dict[str, Any]:
        """Every number of the cell (JSON-ready; ``None`` = absent)."""
        if not self._pred:
            raise ValueError("stability: nothing accumulated")
        acc = pck_auc_epe(np.concatenate(self._pred), np.concatenate(self._gt),
                          np.concatenate(self._boxes), auc_max=self.auc_max)
        out: dict[str, Any] = {"AUC": acc["AUC"], "EPE": acc["EPE"],
                               "D_n": None, "D_12": None, "num_heatmaps": 0}
        if self._dn:
            dn, d12 = np.concatenate(self._dn), np.concatenate(self._d12)
            out.update({"D_n": float(dn.mean()) if dn.size else None,
                        "D_12": float(d12.mean()) if d12.size else None,
                        "num_heatmaps": int(dn.size)})
        if self.reference is not None:
            heat, crop = self.squared_distances()
            _, curve, area = ruc_curve(np.sqrt(heat), self.p_max)
            out.update({"R_heatmap": r_summary(heat), "R_crop": r_summary(crop),
                        "RUC": [None if np.isnan(v) else float(v) for v in curve],
                        "RUC_area": None if np.isnan(area) else area})
        return out

    def write_predictions(self, path: str | Path) -> None:
        """The positions (heatmap px) per person index as JSON (what R was computed on)."""
        rows = [{"index": int(i), "positions": self._positions[i].tolist()}
                for i in np.flatnonzero(self._seen)]
        atomic_write_text(path, json.dumps(rows))
