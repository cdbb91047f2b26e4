"""mPC / rPC, mRR, mCE and the per-corruption, per-severity and per-family tables of a benchmark.

Definitions (AdvMix paper, following Michaelis et al. / mmdetection's robustness tools):
``clean`` = the metric on the uncorrupted set (cell ``corruption='clean', severity=0``);
``mPC`` = mean over the 15 benchmark corruptions of the mean over severities 1..5;
``rPC`` = mPC / clean (a ratio; multiply by 100 for the papers' percent).
PoseBench (Ma et al. 2024) reports ``mRR`` (mean resilience rate, as Robo3D / RoboBEV):
``RR_c = sum_s A_{c,s} / (S * clean)``, ``mRR = mean_c RR_c``; with the one clean score as
every denominator this is ``mean_c mean_s A_{c,s} / clean = mPC / clean = rPC`` over the same
corruptions and severities (tested), so mRR is rPC under PoseBench's name and corruption set.
``mCE`` (ImageNet-C, Hendrycks & Dietterich 2019) compares a model with a baseline model:
``CE_c = sum_s E_{c,s} / sum_s E^base_{c,s}`` with the error ``E = 1 - A`` (``max_score - A``),
``mCE = mean_c CE_c``; relative ``CE_c = sum_s (E_{c,s} - E_clean) / sum_s (E^base_{c,s} -
E^base_clean)``. Lower is better; the baseline scores 1 (100 %).
Everything is computed from stored cells (records of :class:`ResultsStore`), or from the
``{corruption: {severity: value}}`` grids of :func:`cell_grid` (pure functions).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from robustpose.corruptions import CORRUPTION_NAMES
from robustpose.corruptions import FAMILIES as _FAMILIES

#: the 15 corruptions of mPC, in the corruption engine's order (its tables are the source)
BENCHMARK_CORRUPTIONS: tuple[str, ...] = tuple(CORRUPTION_NAMES[:15])
FAMILIES: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _FAMILIES.items()}

SEVERITIES = (1, 2, 3, 4, 5)
CLEAN = "clean"


def metric_value(record: Mapping[str, Any], metric: str) -> float:
    """The value of ``metric`` in a stored cell (``record['metrics'][metric]`` or top level)."""
    metrics = record.get("metrics", record)
    if metric not in metrics:
        raise ValueError(f"cell {cell_name(record)} has no metric {metric!r} "
                         f"(has: {', '.join(sorted(map(str, metrics)))})")
    return float(metrics[metric])


def cell_name(record: Mapping[str, Any]) -> str:
    return f"{record.get('corruption')}/{record.get('severity')}"


def cell_grid(records: Iterable[Mapping[str, Any]], metric: str = "AP") -> dict[str, dict[int, float]]:
    """``{corruption: {severity: value}}`` of one model/dataset's cells (clean -> {0: v})."""
    grid: dict[str, dict[int, float]] = {}
    for rec in records:
        name, sev = str(rec["corruption"]), int(rec["severity"])
        value = metric_value(rec, metric)
        if sev in grid.get(name, {}) and grid[name][sev] != value:
            raise ValueError(f"two different values for cell {name}/{sev}: "
                             f"{grid[name][sev]} and {value}")
        grid.setdefault(name, {})[sev] = value
    return grid


def summarize_robustness(records: Iterable[Mapping[str, Any]], metric: str = "AP",
                         corruptions: Sequence[str] | None = None,
                         severities: Sequence[int] = SEVERITIES,
                         require_clean: bool = True) -> dict[str, Any]:
    """Robustness summary of ONE (model, dataset) from its cells.

    Args:
        records: cells with ``corruption``, ``severity`` and ``metrics[metric]``.
        metric: e.g. 'AP' or 'PCKh'.
        corruptions: the corruptions averaged into mPC (default: the 15 benchmark ones).
        severities: default 1..5.
        require_clean: error when the clean cell is missing (else clean/rPC are None).
    Returns:
        ``clean``, ``mPC``, ``rPC`` (ratio), ``per_corruption`` {name: mean over
        severities}, ``per_severity`` {s: mean over corruptions}, ``per_family``
        {family: mean of its corruptions}, ``worst`` {corruption, value}, and ``metric``.
    Raises:
        ValueError naming every missing (corruption, severity) cell.
    """
    records = list(records)
    keys = {(r.get("model"), r.get("dataset")) for r in records}
    if len(keys) > 1:
        raise ValueError(f"records mix {len(keys)} (model, dataset) pairs; summarise one at a "
                         f"time (got {sorted(map(str, keys))[:3]}...)")
    names = tuple(corruptions) if corruptions is not None else BENCHMARK_CORRUPTIONS
    sevs = tuple(int(s) for s in severities)
    grid = cell_grid(records, metric)
    missing = [f"{c}/{s}" for c in names for s in sevs if s not in grid.get(c, {})]
    clean = grid.get(CLEAN, {}).get(0)
    if clean is None and require_clean:
        missing.insert(0, f"{CLEAN}/0")
    if missing:
        raise ValueError(f"missing {len(missing)} cell(s) for {metric}: {', '.join(missing[:20])}"
                         + (" ..." if len(missing) > 20 else ""))
    per_corruption = {c: float(np.mean([grid[c][s] for s in sevs])) for c in names}
    per_severity = {s: float(np.mean([grid[c][s] for c in names])) for s in sevs}
    per_family = {fam: float(np.mean([per_corruption[c] for c in members]))
                  for fam, members in FAMILIES.items()
                  if all(c in per_corruption for c in members)}
    m_pc = float(np.mean(list(per_corruption.values())))
    worst = min(per_corruption, key=per_corruption.get)
    return {"metric": metric, "clean": clean, "mPC": m_pc,
            "rPC": (m_pc / clean) if clean else None,
            "per_corruption": per_corruption, "per_severity": per_severity,
            "per_family": per_family, "worst": {"corruption": worst, "value": per_corruption[worst]},
            "corruptions": list(names), "severities": list(sevs)}


def summarize_store(records: Iterable[Mapping[str, Any]], metric: str = "AP",
                    **kwargs: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """:func:`summarize_robustness` for every (model, dataset) found in ``records``."""
    groups: dict[tuple[str, str], list] = {}
    for rec in records:
        groups.setdefault((rec.get("model"), rec.get("dataset")), []).append(rec)
    return {key: summarize_robustness(recs, metric, **kwargs) for key, recs in groups.items()}


def severity_table(records: Iterable[Mapping[str, Any]], metric: str = "AP",
                   corruptions: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows ``{corruption, family, s1..s5, mean}`` for the cells present (None where absent)."""
    grid = cell_grid(records, metric)
    names = corruptions if corruptions is not None else [c for c in grid if c != CLEAN]
    family_of = {c: fam for fam, members in FAMILIES.items() for c in members}
    rows = []
    for c in names:
        cells = grid.get(c, {})
        row: dict[str, Any] = {"corruption": c, "family": family_of.get(c)}
        row.update({f"s{s}": cells.get(s) for s in SEVERITIES})
        present = [cells[s] for s in SEVERITIES if s in cells]
        row["mean"] = float(np.mean(present)) if len(present) == len(SEVERITIES) else None
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- mRR and mCE

Grid = Mapping[str, Mapping[int, float]]


def _cell(grid: Grid, corruption: str, severity: int, whose: str = "model") -> float:
    """``grid[corruption][severity]``, or a one-line ValueError naming the missing cell."""
    try:
        return float(grid[corruption][severity])
    except KeyError:
        raise ValueError(f"the {whose} has no cell {corruption}/{severity}") from None


def _selection(grid: Grid, corruptions: Sequence[str] | None) -> tuple[str, ...]:
    """The corruptions to average: given, else every corruption of ``grid`` but clean."""
    names = tuple(corruptions) if corruptions is not None else tuple(c for c in grid if c != CLEAN)
    if not names:
        raise ValueError("no corruption cells to average (the grid holds clean only)")
    return names


def resilience_rates(grid: Grid, corruptions: Sequence[str] | None = None,
                     severities: Sequence[int] = SEVERITIES) -> dict[str, float]:
    """PoseBench's resilience rate per corruption: ``RR_c = sum_s A_{c,s} / (S * clean)``.

    Args:
        grid: ``{corruption: {severity: score}}`` with the clean cell ``{'clean': {0: score}}``
            (:func:`cell_grid` of one model's records); scores in any unit (AP 0..1, PCKh %).
        corruptions: the corruptions to rate (default: every one in ``grid``).
        severities: default 1..5.
    Returns:
        ``{corruption: RR}``, ratios (1.0 = no loss; x 100 for PoseBench's percent).
    Raises:
        ValueError naming the first missing cell, or a clean score of 0.
    """
    clean = _cell(grid, CLEAN, 0)
    if clean == 0:
        raise ValueError("the clean score is 0: resilience rates are undefined")
    sevs = tuple(int(s) for s in severities)
    return {c: sum(_cell(grid, c, s) for s in sevs) / (len(sevs) * clean)
            for c in _selection(grid, corruptions)}


def mean_resilience_rate(grid: Grid, corruptions: Sequence[str] | None = None,
                         severities: Sequence[int] = SEVERITIES) -> float:
    """PoseBench's mRR: the mean of :func:`resilience_rates` (a ratio). Equals rPC
    (``summarize_robustness(...)['rPC']``) over the same corruptions and severities."""
    rates = resilience_rates(grid, corruptions, severities)
    return float(np.mean(list(rates.values())))


def _errors(grid: Grid, corruption: str, severities: Sequence[int], max_score: float,
            whose: str) -> list[float]:
    out = []
    for s in severities:
        value = _cell(grid, corruption, s, whose)
        if not 0 <= value <= max_score:
            raise ValueError(f"the {whose}'s cell {corruption}/{s} is {value}, outside 0..{max_score} "
                             f"(pass max_score=100 for scores in percent)")
        out.append(max_score - value)
    return out


def corruption_errors(grid: Grid, baseline: Grid, corruptions: Sequence[str] | None = None,
                      severities: Sequence[int] = SEVERITIES, *, max_score: float = 1.0,
                      relative: bool = False) -> dict[str, float]:
    """ImageNet-C's corruption error of a model against a baseline model, per corruption.

    ``CE_c = sum_s (max_score - A_{c,s}) / sum_s (max_score - B_{c,s})``; with ``relative``,
    each error first loses the model's own clean error:
    ``sum_s (E_{c,s} - E_clean) / sum_s (E^B_{c,s} - E^B_clean)``.

    Args:
        grid, baseline: ``{corruption: {severity: score}}`` of the model and of the baseline
            (:func:`cell_grid`; ``relative`` needs both clean cells).
        corruptions: default every corruption of ``grid``; the baseline must have each cell.
        max_score: the score of no error (1 for AP, 100 for a metric in percent).
    Returns:
        ``{corruption: CE}`` ratios (1.0 = as the baseline; lower is better).
    Raises:
        ValueError naming the first cell the model or the baseline lacks, a score outside
        0..max_score, or a baseline with no error to divide by.
    """
    sevs = tuple(int(s) for s in severities)
    names = _selection(grid, corruptions)
    out = {}
    for c in names:  # check the baseline's cells before any division
        _errors(baseline, c, sevs, max_score, "baseline")
    for c in names:
        ours = _errors(grid, c, sevs, max_score, "model")
        base = _errors(baseline, c, sevs, max_score, "baseline")
        if relative:
            ours_clean = _errors(grid, CLEAN, (0,), max_score, "model")[0]
            base_clean = _errors(baseline, CLEAN, (0,), max_score, "baseline")[0]
            ours = [e - ours_clean for e in ours]
            base = [e - base_clean for e in base]
        denominator = sum(base)
        if denominator == 0:
            raise ValueError(f"the baseline's {'relative ' if relative else ''}error on {c} sums to 0: "
                             f"its corruption error is undefined")
        out[c] = sum(ours) / denominator
    return out


def mean_corruption_error(grid: Grid, baseline: Grid, corruptions: Sequence[str] | None = None,
                          severities: Sequence[int] = SEVERITIES, *, max_score: float = 1.0,
                          relative: bool = False) -> float:
    """ImageNet-C's mCE (``relative=True``: relative mCE): the mean of
    :func:`corruption_errors` (a ratio; x 100 for the papers' percent; the baseline's is 1)."""
    errors = corruption_errors(grid, baseline, corruptions, severities, max_score=max_score,
                               relative=relative)
    return float(np.mean(list(errors.values())))


def compare_to_baseline(records: Iterable[Mapping[str, Any]],
                        baseline_records: Iterable[Mapping[str, Any]], metric: str = "AP",
                        corruptions: Sequence[str] | None = None,
                        severities: Sequence[int] = SEVERITIES, *,
                        max_score: float = 1.0) -> dict[str, Any]:
    """mCE, relative mCE and mRR of one model's cells against a baseline run's cells.

    Returns ``{'metric', 'mCE', 'relative_mCE', 'CE': {c: ratio}, 'relative_CE': {c: ratio},
    'mRR', 'baseline_mRR', 'corruptions', 'severities'}``; refuses (ValueError, one line)
    when the baseline lacks a cell of the model's selection.
    """
    grid, base = cell_grid(records, metric), cell_grid(baseline_records, metric)
    names = _selection(grid, corruptions)
    kw = {"max_score": max_score}
    ce = corruption_errors(grid, base, names, severities, **kw)
    rel = corruption_errors(grid, base, names, severities, relative=True, **kw)
    return {"metric": metric, "mCE": float(np.mean(list(ce.values()))),
            "relative_mCE": float(np.mean(list(rel.values()))), "CE": ce, "relative_CE": rel,
            # a clean score of 0 leaves the resilience rate undefined (None), not the mCE
            "mRR": mean_resilience_rate(grid, names, severities) if _cell(grid, CLEAN, 0) else None,
            "baseline_mRR": (mean_resilience_rate(base, names, severities)
                             if _cell(base, CLEAN, 0, "baseline") else None),
            "corruptions": list(names), "severities": [int(s) for s in severities]}
