"""When can a heatmap's maximum not move? Theorem 3 of the stable-heatmap paper, corrected.

For a map ``r`` (h x w) with maximum ``r_1`` at ``p*`` and second-largest value ``r_2``,
and an output change ``dr``:

- the paper's condition: ``r_1 - r_2 >= sqrt(sum dr^2 + h w dr(p*)^2)``. It is *not*
  sufficient: ``r = [[2.03, 1], [0, 0]]``, ``dr = [[-0.1, 1], [0, 0]]`` meets it
  (1.03 >= sqrt(1.05) = 1.025) and the maximum moves (1.93 < 2).
- the corrected one: ``r_1 - r_2 > sqrt(2 sum dr^2)``. Proof: the maximum moves (or ties)
  only if some ``j != p*`` has ``r_j + dr_j >= r_1 + dr_1``, i.e.
  ``r_1 - r_2 <= r_1 - r_j <= dr_j - dr_1 <= |dr_j| + |dr_1|
  <= sqrt(2 (dr_j^2 + dr_1^2)) <= sqrt(2 sum dr^2)``. The constant is tight:
  ``r = (m, 0)``, ``dr = (-m/2, m/2)`` has ``sqrt(2 sum dr^2) = m`` and ends in a tie.

docs/stable.md gives the same in prose.
"""
from __future__ import annotations

import numpy as np

RULES = ("corrected", "paper")

__all__ = ["RULES", "margin_condition", "argmax_moved"]


def _flat(maps: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(f"{what}: expected (..., h, w) maps, got shape {arr.shape}")
    return arr.reshape(arr.shape[:-2] + (-1,))


def margin_condition(r: np.ndarray, dr: np.ndarray, rule: str = "corrected") -> np.ndarray:
    """(...) bool: whether ``r``'s margin ``r_1 - r_2`` meets ``rule``'s bound for ``dr``.

    ``r``, ``dr``: (..., h, w) maps of one shape (any units, the same for both).
    ``'corrected'``: ``r_1 - r_2 > sqrt(2 sum dr^2)`` (sufficient for the maximum to stay);
    ``'paper'``: ``r_1 - r_2 >= sqrt(sum dr^2 + h w dr(p*)^2)`` (Theorem 3 as printed; not
    sufficient), ``p*`` the first maximum of ``r``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    flat, delta = _flat(r, "r"), _flat(dr, "dr")
    if flat.shape != delta.shape:
        raise ValueError(f"r and dr differ in shape: {np.shape(r)} vs {np.shape(dr)}")
    top2 = -np.sort(-flat, axis=-1)[..., :2]
    margin = top2[..., 0] - top2[..., 1]
    energy = (delta ** 2).sum(axis=-1)
    if rule == "corrected":
        return margin > np.sqrt(2.0 * energy)
    at_peak = np.take_along_axis(delta, flat.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    return margin >= np.sqrt(energy + flat.shape[-1] * at_peak ** 2)


def argmax_moved(r: np.ndarray, dr: np.ndarray) -> np.ndarray:
    """(...) bool: whether the first maximum of ``r + dr`` differs from that of ``r``."""
    flat, delta = _flat(r, "r"), _flat(dr, "dr")
    return flat.argmax(axis=-1) != (flat + delta).argmax(axis=-1)
