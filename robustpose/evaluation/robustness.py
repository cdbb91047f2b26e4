"""mPC / rPC and the per-corruption, per-severity and per-family tables of a benchmark.

Definitions (AdvMix paper, following Michaelis et al. / mmdetection's robustness tools):
``clean`` = the metric on the uncorrupted set (cell ``corruption='clean', severity=0``);
``mPC`` = mean over the 15 benchmark corruptions of the mean over severities 1..5;
``rPC`` = mPC / clean (a ratio; multiply by 100 for the papers' percent).
Everything is computed from stored cells (records of :class:`ResultsStore`).
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
