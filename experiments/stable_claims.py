"""The verdicts of the stable-heatmap-regression miniature (``stable_miniature.py``): the
paper's claims checked against the row means of its table, with the reproduction report's
rule that a difference within the seed noise is ``not shown``.

``data`` maps a row key to its cards (one dict per seed, ``stable_miniature.collect``).
"""
from __future__ import annotations

import numpy as np


def mean(cards: list[dict], key: str) -> float | None:
    values = [c[key] for c in cards if c[key] is not None]
    return float(np.mean(values)) if values else None


def seed_noise(data: dict[str, list[dict]], key: str) -> float | None:
    """The yardstick of one column: the largest seed range (max - min) among the rows
    measured with two or more seeds; None where no row has two."""
    ranges = [max(v) - min(v) for v in ([c[key] for c in cards if c[key] is not None]
                                        for cards in data.values()) if len(v) > 1]
    return max(ranges) if ranges else None


def _values(data: dict[str, list[dict]], row: str, key: str) -> list[float]:
    return [c[key] for c in data[row] if c[key] is not None]


def _verdict(data: dict[str, list[dict]], a: str, b: str, key: str, wanted: bool) -> str:
    """``yes`` / ``no`` for rows ``a`` and ``b`` whose means differ in (``wanted``) or against
    the claimed direction; ``not shown`` where they are not apart. Apart: where a row has two
    or more seeds, the two seed ranges do not overlap (the AdvMix table's rule); between two
    one-seed rows, the difference exceeds the column's ``seed_noise``."""
    va, vb = _values(data, a, key), _values(data, b, key)
    if len(va) > 1 or len(vb) > 1:
        apart = min(va) > max(vb) or max(va) < min(vb)
    else:
        noise = seed_noise(data, key)
        apart = noise is None or abs(va[0] - vb[0]) > noise
    if not apart:
        return "not shown (within the seed noise)"
    return "yes" if wanted else "no"


def claims(data: dict[str, list[dict]], names: dict[str, str], columns: tuple[str, ...],
           matched_rows: set[str]) -> list[tuple[str, str, str]]:
    """(claim, measured, holds?) for the paper's claims, from the row means; D_n and
    D_(1)(2) on the clean crops (its Table 1), the pooled reading marked as an extra. Two
    rows that are not apart (``_verdict``) give ``not shown``."""
    m = {row: {k: mean(cards, k) for k in columns} for row, cards in data.items()}
    rows = []

    def compare(claim: str, a: str, b: str, key: str, spec: str, lower: bool) -> None:
        x, y = m[a][key], m[b][key]
        if x is not None and y is not None:
            rows.append((claim, f"{names[a]} {x:{spec}} -> {names[b]} {y:{spec}}",
                         _verdict(data, a, b, key, y < x if lower else y > x)))

    def best_ruc(claim: str, candidates: dict[str, dict], winner: str) -> None:
        ranked = sorted(candidates, key=lambda r: -candidates[r]["RUC"])
        # the claimed winner against the best of the others
        other = ranked[1] if ranked[0] == winner else ranked[0]
        rows.append((claim, ", ".join(f"{names[r]} {candidates[r]['RUC']:.3f}" for r in ranked),
                     _verdict(data, winner, other, "RUC", ranked[0] == winner)))

    if "baseline_ft" in m and "rcc" in m:
        compare("RCC lowers D_n", "baseline_ft", "rcc", "D_n", ".1f", True)
        compare("RCC lowers D_n (extra: pooled perturbed cells, not the paper's protocol)",
                "baseline_ft", "rcc", "D_n_pooled", ".1f", True)
    if "baseline_ft" in m and "hdhr" in m:
        compare("HDHR raises D_(1)(2) (as read: raw maps vs softmax, not one scale)",
                "baseline_ft", "hdhr", "D_12", ".3g", False)
        compare("HDHR raises D_(1)(2), MST scale (raw maps vs Z x softmax)",
                "baseline_ft", "hdhr", "D_12_mst", ".3g", False)
        compare("HDHR raises D_(1)(2), one scale (pixel softmax)",
                "baseline_ft", "hdhr", "D_12_softmax", ".2e", False)
    plain = {r: v for r, v in m.items() if r not in matched_rows and v["RUC"] is not None}
    if "rhm" in plain and len(plain) > 1:
        best_ruc("R+H+M gives the best RUC", plain, "rhm")
    if all(r in plain for r in ("baseline_ft", "mst", "rhm")):
        # the same Baseline under both: comparing the gains is comparing the two rows
        base = m["baseline_ft"]["RUC"]
        gain_mst, gain_all = m["mst"]["RUC"] - base, m["rhm"]["RUC"] - base
        rows.append(("MST alone helps less than with HDHR (RUC gain over Baseline)",
                     f"MST {gain_mst:+.3f}, R+H+M {gain_all:+.3f}",
                     _verdict(data, "mst", "rhm", "RUC", gain_mst < gain_all)))
    if "baseline_ft" in m and "rhm" in m and None not in (m["baseline_ft"]["AUC"], m["rhm"]["AUC"]):
        a, b = m["baseline_ft"]["AUC"], m["rhm"]["AUC"]
        holds = "yes" if 0 < a - b <= 0.05 else ("no (it rose)" if b >= a else "no (dropped > 0.05)")
        rows.append(("clean accuracy drops a little (AUC, drop in (0, 0.05])",
                     f"Baseline {a:.3f} -> R+H+M {b:.3f}", holds))
    matched = {r: v for r, v in m.items() if r in matched_rows and v["RUC"] is not None}
    if "rhm_m" in matched and len(matched) > 1:
        best_ruc("R+H+M gives the best RUC, regularisers at one gradient ratio", matched, "rhm_m")
    return rows
