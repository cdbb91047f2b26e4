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
  trained with the weighted cross-entropy). ``hd_scale`` (the HD region sum ``Z`` of an
  ``hdhr`` codec) adds ``D_12_hd = Z x`` the softmax reading: the HD target's scale (peak
  1), on which the MST loss reads the maps and the paper's HDHR values lie.
- Accuracy beside them: AUC of PCK over 0..30 image px and EPE
  (:func:`robustpose.evaluation.pck_auc_epe`).

Ties. The maximum ``p_(1)`` (the predicted keypoint, also R's position) is the lowest
row-major index ``y * w + x`` among the maximal pixels. D_n's top n (``ties='peak'``,
default) orders equal values by their squared distance to ``p_(1)``, then by index: pixels
tied with the n-th value that enter the selection are the ones nearest the prediction, so
a map with fewer than n positive pixels is completed around its peak, not from the crop's
corner. ``ties='index'`` is the earlier rule (lowest index first; an all-zero 32 x 24 map
then scores D_64 = 9976 by construction). A map with no positive peak (raw reading,
maximum <= 0: RCC's ReLU makes all-zero maps), and a flat map on any reading (the
softmax of an all-zero map), has no D_n and no D_(1)(2): it is *undefined*, counted
(``undefined``, ``undefined_fraction``) and left out of both means. Its position still
enters R (the decoder's rule, top-left pixel).

Keypoints not visible in the ground truth (visibility 0) are left out of every number.
NaN outputs raise a one-line ValueError. Coordinate models have no heatmaps: ``D_n`` and
``D_(1)(2)`` are then absent (``None``), never zero.
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
#: D_n's order among equal values: 'peak' (distance to the maximum, then index; default)
#: or 'index' (lowest row-major index first, the earlier rule)
DN_TIES = ("peak", "index")

__all__ = ["DN_N", "RUC_P_MAX", "NORMALISATIONS", "DN_TIES", "check_finite_heatmaps",
           "heatmap_maxima", "undefined_maps", "topk_positions", "heatmap_summary",
           "dn_per_map", "d12_per_map", "ruc_curve", "r_summary", "StabilityMetric"]


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


def _check_choice(value: str, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise ValueError(f"{key} must be one of {choices}, got {value!r}")


def _first_maximum(flat: torch.Tensor) -> torch.Tensor:
    """(M,) the lowest flat index among each row's maximal values (device-proof argmax)."""
    top = flat.max(dim=1, keepdim=True).values
    index = torch.arange(flat.shape[1], device=flat.device)
    return torch.where(flat == top, index, flat.shape[1]).min(dim=1).values


def heatmap_maxima(heatmaps: torch.Tensor) -> np.ndarray:
    """(N, K, 2) float64 x, y of each map's maximum in heatmap px (first maximum wins)."""
    maps = check_finite_heatmaps(heatmaps)
    n_maps, k, _, w = maps.shape
    index = _first_maximum(maps.flatten(2).reshape(n_maps * k, -1)).reshape(n_maps, k)
    return torch.stack([index % w, index // w], dim=-1).cpu().numpy().astype(np.float64)


def undefined_maps(heatmaps: torch.Tensor, normalisation: str = "raw") -> torch.Tensor:
    """(N, K) bool: maps without a peak, whose D_n and D_(1)(2) are undefined.

    A flat map (every pixel equal) has no peak on any reading; on the raw reading neither
    has a map whose maximum is <= 0 (e.g. all zero after RCC's ReLU: HRNet's decoder gives
    it no location). Either way its top n would be decided by the tie rule alone. A
    softmax reading is positive everywhere, so there only flat maps are undefined (the
    softmax of an all-zero map is flat: both readings agree on it)."""
    _check_choice(normalisation, NORMALISATIONS, "normalisation")
    flat = torch.as_tensor(heatmaps).flatten(2)
    top = flat.max(dim=2).values
    undefined = top == flat.min(dim=2).values
    return undefined | (top <= 0) if normalisation == "raw" else undefined


def _canonical_order(flat: torch.Tensor, width: int, ties: str) -> torch.Tensor:
    """(M, h*w) the pixel order of each row: value descending, then (``ties='peak'``) the
    squared distance to the first maximum ascending, then the index ascending."""
    if ties == "index":  # a stable sort keeps equal values in index order
        return torch.sort(flat, dim=1, descending=True, stable=True).indices
    index = torch.arange(flat.shape[1], device=flat.device)
    peak = _first_maximum(flat)[:, None]
    d2 = (index % width - peak % width) ** 2 + (index // width - peak // width) ** 2
    # lexicographic (-value, d2, index) by two stable sorts, the least significant key first
    near = torch.sort(d2, dim=1, stable=True).indices
    by_value = torch.sort(flat.gather(1, near), dim=1, descending=True, stable=True).indices
    return near.gather(1, by_value)


def topk_positions(heatmaps: torch.Tensor, n: int = DN_N,
                   ties: str = "peak") -> tuple[torch.Tensor, torch.Tensor]:
    """The n largest values of each map and their flat indices, in the canonical order.

    -> (values (N, K, n) descending, indices (N, K, n) int64, ``y * w + x``). Equal values:
    ``ties='peak'`` nearest the map's first maximum first (squared distance), then lowest
    index; ``'index'`` lowest index first. A plain :func:`torch.topk`; only maps whose
    n-th value is tied with an unselected pixel, or whose selection has tied values, are
    redone canonically (on RCC outputs: every map with fewer than n positive pixels).
    NaN / +inf (which topk ranks first) raise a one-line ValueError."""
    _check_choice(ties, DN_TIES, "ties")
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
        order = _canonical_order(sub, w, ties)[:, :n]
        values[redo], indices[redo] = sub.gather(1, order), order
    return values.reshape(n_maps, k, n), indices.reshape(n_maps, k, n)


def _dn_from_index(index: torch.Tensor, w: int) -> torch.Tensor:
    x, y = (index % w).double(), (index // w).double()
    return ((x[..., 1:] - x[..., :1]) ** 2 + (y[..., 1:] - y[..., :1]) ** 2).sum(dim=-1)


def heatmap_summary(heatmaps: torch.Tensor, n: int = DN_N, normalisation: str = "raw",
                    ties: str = "peak") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One top-n pass -> (maxima (N, K, 2) heatmap px, D_n per map (N, K), D_(1)(2) per
    map (N, K)); the same values as :func:`heatmap_maxima`, :func:`dn_per_map` and
    :func:`d12_per_map`, at the cost of one ``torch.topk``. D_n and D_(1)(2) are NaN on
    :func:`undefined_maps`."""
    _check_choice(normalisation, NORMALISATIONS, "normalisation")
    maps = torch.as_tensor(heatmaps)
    w = int(maps.shape[-1])
    values, index = topk_positions(maps, n, ties)
    dn = _dn_from_index(index, w)
    top = values[..., :2].double()
    if normalisation == "softmax":  # softmax(v1) - softmax(v2) = (e^v1 - e^v2) / sum e^v
        lse = torch.logsumexp(maps.flatten(2).double(), dim=2)
        top = torch.exp(top - lse[..., None])
    d12 = top[..., 0] - top[..., 1]
    undefined = undefined_maps(maps, normalisation)
    dn[undefined], d12[undefined] = float("nan"), float("nan")
    maxima = torch.stack([(index[..., 0] % w).double(), (index[..., 0] // w).double()], dim=-1)
    return maxima.cpu().numpy(), dn.cpu().numpy(), d12.cpu().numpy()


def dn_per_map(heatmaps: torch.Tensor, n: int = DN_N, ties: str = "peak",
               normalisation: str = "raw") -> torch.Tensor:
    """Eq. 11 per map: (N, K) ``sum_{i=2..n} ||p_(i) - p_(1)||^2`` in heatmap px^2; NaN on
    :func:`undefined_maps` (the raw reading's maps with maximum <= 0)."""
    maps = torch.as_tensor(heatmaps)
    _, index = topk_positions(maps, n, ties)
    dn = _dn_from_index(index, int(maps.shape[-1]))
    dn[undefined_maps(maps, normalisation)] = float("nan")
    return dn


def d12_per_map(heatmaps: torch.Tensor, normalisation: str = "raw") -> torch.Tensor:
    """Eq. 12 per map: (N, K) ``r_(1) - r_(2)``, on the raw maps or per-map softmax; NaN
    on :func:`undefined_maps`."""
    _check_choice(normalisation, NORMALISATIONS, "normalisation")
    maps = check_finite_heatmaps(heatmaps)
    flat = maps.flatten(2).double()
    if normalisation == "softmax":
        flat = torch.softmax(flat, dim=2)
    top2 = torch.topk(flat, 2, dim=2).values
    d12 = top2[..., 0] - top2[..., 1]
    d12[undefined_maps(maps, normalisation)] = float("nan")
    return d12


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
    return thresholds, curve, ruc_area(curve, p_max)


def ruc_area(curve: np.ndarray, p_max: int = RUC_P_MAX) -> float:
    """The RUC's normalised area: trapezoid over thresholds 0..p_max px (unit steps) / p_max
    (``p_max`` 0: the one value)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float(np.sum((curve[1:] + curve[:-1]) / 2) / p_max) if p_max > 0 else float(curve[0])


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
        ties: D_n's order among equal values (:data:`DN_TIES`, default 'peak').
        hd_scale: the HD region sum ``Z`` of an ``hdhr`` codec (softmax reading only):
            ``stats()`` then adds ``D_12_hd = Z * D_12``, the HD target's scale.

    ``accumulate(outputs, meta)``: ``outputs`` a dict with ``positions`` (N, K, 2) heatmap
    px (or crop px / stride for coordinate models; default: the maps' maxima),
    ``keypoints`` (N, K, >=2) image px and,
    for heatmap models, ``heatmaps`` (N, K, h, w); ``meta`` the batch meta (``index``,
    ``keypoints`` ground truth (N, K, 3) image px, ``bbox`` (N, 4)).
    """

    def __init__(self, num_people: int, stride: Sequence[float], reference: np.ndarray | None = None,
                 n: int = DN_N, normalisation: str = "raw", p_max: int = RUC_P_MAX,
                 auc_max: float = 30.0, ties: str = "peak",
                 hd_scale: float | None = None) -> None:
        _check_choice(normalisation, NORMALISATIONS, "normalisation")
        _check_choice(ties, DN_TIES, "dn_ties")
        if hd_scale is not None and (normalisation != "softmax" or not float(hd_scale) > 0):
            raise ValueError(f"hd_scale needs the softmax reading and a value > 0, got "
                             f"{hd_scale!r} with normalisation {normalisation!r}")
        self.ties = ties
        self.hd_scale = None if hd_scale is None else float(hd_scale)
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
                "dn_ties": self.ties, "d12_hd_scale": self.hd_scale,
                "undefined": "flat, or raw maximum <= 0: no D_n / D_(1)(2), counted",
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
            summary = heatmap_summary(outputs["heatmaps"], self.n, self.normalisation, self.ties)
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
                               "D_n": None, "D_12": None, "D_12_hd": None, "num_heatmaps": 0,
                               "undefined": 0, "undefined_fraction": None}
        if self._dn:
            dn, d12 = np.concatenate(self._dn), np.concatenate(self._d12)
            defined = ~np.isnan(dn)  # undefined maps: counted, never averaged in
            out.update({"D_n": float(dn[defined].mean()) if defined.any() else None,
                        "D_12": float(d12[defined].mean()) if defined.any() else None,
                        "num_heatmaps": int(dn.size), "undefined": int((~defined).sum()),
                        "undefined_fraction": float((~defined).mean()) if dn.size else None})
            if self.hd_scale is not None and out["D_12"] is not None:
                out["D_12_hd"] = out["D_12"] * self.hd_scale
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
