"""Pooling stability cells: a perturbation's severities, or every perturbed cell, as one.

The numbers of :mod:`robustpose.evaluation.stability` summed over cells: R's sum adds up
(the paper's Eq. 10 sums over every perturbed copy), its per-keypoint mean is the pooled
sum / count, its median the median of the pooled squared distances; the RUC curve is the
count-weighted mean of the cells' curves (the fraction over the pooled keypoints), its
area :func:`~robustpose.evaluation.stability.ruc_area`; D_n and D_(1)(2) (and
``D_12_hd``) are means over the pooled *defined* heatmaps, the undefined ones (no positive
peak) summed into ``undefined`` / ``undefined_fraction``; AUC and EPE are means over cells.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from robustpose.evaluation.stability import ruc_area


def pooled_median(parts: Sequence[np.ndarray] | None) -> float | None:
    """Median of the pooled squared distances (NaN = left out); None when unknown (no
    array given) or empty."""
    if parts is None:
        return None
    values = [np.asarray(p, np.float64).reshape(-1) for p in parts]
    pooled = np.concatenate([v[~np.isnan(v)] for v in values]) if values else np.zeros(0)
    return float(np.median(pooled)) if pooled.size else None


def pool_cells(metrics: Sequence[dict], p_max: int,
               squared: Callable[[str], Sequence[np.ndarray] | None]) -> dict[str, Any]:
    """The pooled numbers of cells (their ``StabilityMetric.stats()`` dicts), as the module
    doc says. ``squared(unit)`` ('heatmap' | 'crop') gives the cells' squared distances
    (heatmap px^2 / crop px^2) for the pooled median, or None when they are not at hand;
    it is called only for a unit with a positive count."""
    out: dict[str, Any] = {"cells": len(metrics)}
    for unit in ("heatmap", "crop"):
        parts = [m.get(f"R_{unit}") or {} for m in metrics]
        total = float(sum(p.get("sum") or 0.0 for p in parts))
        count = int(sum(p.get("count") or 0 for p in parts))
        out[f"R_{unit}"] = {"sum": total, "count": count,
                            "mean": total / count if count else None,
                            "median": pooled_median(squared(unit)) if count else None}
    counts = np.array([(m.get("R_heatmap") or {}).get("count") or 0 for m in metrics], float)
    curves = [m.get("RUC") for m in metrics]
    if counts.sum() > 0 and all(c is not None and None not in c for c in curves):
        curve = (np.asarray(curves, float) * counts[:, None]).sum(axis=0) / counts.sum()
        out["RUC"], out["RUC_area"] = curve.tolist(), ruc_area(curve, p_max)
    else:
        out["RUC"], out["RUC_area"] = None, None
    maps = np.array([m.get("num_heatmaps") or 0 for m in metrics], float)
    undefined = np.array([m.get("undefined") or 0 for m in metrics], float)
    defined = maps - undefined  # each cell's mean is over its defined maps
    for key in ("D_n", "D_12", "D_12_hd"):
        vals = [m.get(key) for m in metrics]
        keep = defined > 0  # a cell whose every map is undefined has no mean to weigh
        if defined.sum() > 0 and all(v is not None for v, k in zip(vals, keep) if k):
            out[key] = float(sum(v * d for v, d, k in zip(vals, defined, keep) if k)
                             / defined.sum())
        else:
            out[key] = None  # coordinate models (or no HD scale): absent, never zero
    out["num_heatmaps"] = int(maps.sum())
    out["undefined"] = int(undefined.sum())
    out["undefined_fraction"] = float(undefined.sum() / maps.sum()) if maps.sum() else None
    for key in ("AUC", "EPE"):
        vals = [m.get(key) for m in metrics if m.get(key) is not None]
        out[key] = float(np.mean(vals)) if vals else None
    return out
