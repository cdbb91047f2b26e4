"""The card of a stability run folder: per cell, per perturbation, overall; and its reports.

Pooling over cells (a perturbation's severities, or every perturbed cell) is
:func:`robustpose.evaluation.stability_pooling.pool_cells`; this module reads the run
folder for it (records, ``distances/*.npz`` for the pooled medians).

The paper's Table 1 reads D_n and D_(1)(2) on the clean validation crops: that is the
card's ``clean`` entry (the main columns of the tables); the pooled perturbed reading is
``overall`` (a labelled extra).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from robustpose.benchmarking.cells import Cell
from robustpose.evaluation.stability_pooling import pool_cells
from robustpose.utils.io import atomic_write_text

DISTANCES_DIR = "distances"
STABILITY_FILE = "stability.json"
TABLE_FILE = "stability.md"
CLEAN_KEYS = ("AUC", "EPE", "D_n", "D_12", "D_12_hd", "num_heatmaps", "undefined",
              "undefined_fraction")


def distances_file(run_dir: Path, cell: Cell) -> Path:
    """``distances/<perturbation>-<severity>.npz``: (M, K) squared distances, heatmap and crop px."""
    return Path(run_dir) / DISTANCES_DIR / f"{cell.corruption}-{cell.severity}.npz"


def is_stability_folder(path: str | Path) -> bool:
    """True when ``path/run.json`` records the ``stability`` run kind."""
    from robustpose.benchmarking.run_layer import kind_of

    run = Path(path) / "run.json"
    try:
        settings = json.loads(run.read_text(encoding="utf-8"))
        return isinstance(settings, dict) and kind_of(settings) == "stability"
    except (OSError, ValueError):
        return False


def _read_distances(path: Path, rec: dict) -> dict[str, np.ndarray]:
    """Both units of one cell's distances file, flattened to float64."""
    try:
        with np.load(path) as data:
            return {unit: data[unit].astype(np.float64).reshape(-1) for unit in ("heatmap", "crop")}
    except Exception as exc:  # zero bytes, a cut zip, another file: numpy's many types
        raise ValueError(f"{path}: unreadable distances file ({type(exc).__name__}); "
                         f"delete it and the {rec['corruption']}/{rec['severity']} line "
                         "of the results store, then rerun to measure the cell again"
                         ) from None


def _squared_distances(run_dir: Path, records: Sequence[dict], unit: str,
                       cache: dict) -> list | None:
    """The cells' stored squared distances of ``unit`` (``distances/*.npz``); None when a
    file was removed by hand (the pooled median is then unknown). ``cache`` (path -> both
    units) lets one card read each file once for every pool and unit that needs it."""
    values = []
    for rec in records:
        path = distances_file(run_dir, Cell.from_json(rec))
        if path not in cache:
            if not path.is_file():
                return None
            cache[path] = _read_distances(path, rec)
        values.append(cache[path][unit])
    return values


def pool(records: Sequence[dict], run_dir: Path, p_max: int, cache: dict | None = None) -> dict[str, Any]:
    """The pooled numbers of ``records`` (perturbed cells):
    :func:`robustpose.evaluation.stability_pooling.pool_cells` over their stored metrics
    and distance files (``cache``: see :func:`_squared_distances`)."""
    cache = {} if cache is None else cache
    return pool_cells([r["metrics"] for r in records], p_max,
                      lambda unit: _squared_distances(run_dir, records, unit, cache))


def build_stability_card(folder: Any) -> dict:
    """The card of a :class:`RunFolder` written by ``robustpose stability``."""
    settings, records = folder.settings, folder.records()
    if not records:
        raise ValueError(f"{folder.path}: no finished cell in the results store yet")
    p_max = int(settings.get("conventions", {}).get("ruc_p_max", 10))
    clean = next((r["metrics"] for r in records if r["corruption"] == "clean"), None)
    perturbed = [r for r in records if r["corruption"] != "clean"]
    # every perturbation any run of the folder asked for (run.json's list grows with each
    # rerun's request, as the benchmark's corruptions do), then any stored cell's name that
    # an older run.json lacks: a measured perturbation always has its row
    names = list(dict.fromkeys(list(settings.get("perturbations", []))
                               + [r["corruption"] for r in perturbed]))
    severities = sorted({int(s) for s in settings.get("severities", [])}
                        | {int(r["severity"]) for r in perturbed})
    distances: dict = {}  # each cell's file is read once for its row and the overall pool
    per = {n: pool([r for r in perturbed if r["corruption"] == n], folder.path, p_max, distances)
           for n in names if any(r["corruption"] == n for r in perturbed)}
    present = {(r["corruption"], int(r["severity"])) for r in perturbed}
    missing = [f"{n}/{s}" for n in names for s in severities if (n, s) not in present]
    expected = len(names) * len(severities)
    return {"kind": "stability", "model": settings["model"], "dataset": settings["dataset"],
            "conventions": settings.get("conventions", {}),
            "clean": None if clean is None else {k: clean.get(k) for k in CLEAN_KEYS},
            "per_perturbation": per,
            "per_cell": {f"{r['corruption']}/{r['severity']}": r["metrics"] for r in perturbed},
            "overall": pool(perturbed, folder.path, p_max, distances) if perturbed else None,
            "ruc_thresholds_heatmap_px": list(range(p_max + 1)),
            "perturbations": names, "severities": severities,
            "cells": {"done": len(perturbed), "expected": expected, "missing": missing},
            "incomplete": bool(missing) or clean is None}


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_stability_table(cards: Sequence[dict]) -> str:
    """Markdown: one row per (model, perturbation) plus overall: R (sum, per-keypoint mean
    and median, heatmap px^2), RUC area, D_n, D_(1)(2), D_(1)(2) on the HD scale, the
    undefined maps' fraction, AUC, EPE. The clean row is the paper's Table 1 reading."""
    lines = ["| model | perturbation | R sum | R/kp mean | R/kp median | RUC area | D_n "
             "| D_(1)(2) | D_(1)(2) x Z | undefined | AUC | EPE |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for card in cards:
        rows = list(card["per_perturbation"].items()) + [("overall", card["overall"])]
        if card.get("clean"):
            rows.insert(0, ("clean (Table 1)", card["clean"]))
        for name, row in rows:
            if row is None:
                continue
            r = row.get("R_heatmap") or {}
            lines.append(f"| {card['model']} | {name} | {_fmt(r.get('sum'), '.0f')} | "
                         f"{_fmt(r.get('mean'), '.3f')} | {_fmt(r.get('median'), '.3f')} | "
                         f"{_fmt(row.get('RUC_area'), '.3f')} | {_fmt(row.get('D_n'), '.1f')} | "
                         f"{_fmt(row.get('D_12'), '.4f')} | {_fmt(row.get('D_12_hd'), '.4f')} | "
                         f"{_fmt(row.get('undefined_fraction'), '.3f')} | {_fmt(row.get('AUC'), '.3f')} | "
                         f"{_fmt(row.get('EPE'), '.2f')} |")
    return "\n".join(lines)


def write_stability_reports(folder: Any, plots: bool = True) -> dict:
    """``stability.json``, ``stability.md`` and (``plots``) the PNGs of one run folder."""
    card = build_stability_card(folder)
    atomic_write_text(folder.path / STABILITY_FILE, json.dumps(card, indent=2))
    atomic_write_text(folder.path / TABLE_FILE, format_stability_table([card]) + "\n")
    if plots:
        from robustpose.reports.stability_plots import write_stability_plots

        card["plots"] = [str(p) for p in write_stability_plots([card], folder.path)]
    return card


def compare_stability(run_dirs: Sequence[str | Path], out: str | Path,
                      plots: bool = True) -> tuple[list[dict], str]:
    """Cards of several stability run folders side by side: ``out/stability_compare.md``
    and (``plots``) Fig. 6 with one bar per model, Fig. 7 with every model's curve."""
    from robustpose.benchmarking.run_folder import RunFolder

    cards = [build_stability_card(RunFolder(d)) for d in run_dirs]
    names = [c["model"] for c in cards]
    if len(set(names)) < len(names):  # two runs of one model: label them by folder
        for card, d in zip(cards, run_dirs):
            card["model"] = f"{card['model']} ({Path(d).name})"
    table = format_stability_table(cards)
    atomic_write_text(Path(out) / "stability_compare.md", table + "\n")
    if plots:
        from robustpose.reports.stability_plots import write_stability_plots

        write_stability_plots(cards, Path(out))
    return cards, table


def report_stability_folders(run_dirs: Sequence[str | Path], out: str | Path,
                             plots: bool = True) -> int:
    """``robustpose report``: one stability folder -> its reports rebuilt; several ->
    compared in ``out``. Prints the table; refuses a folder of another command."""
    from robustpose.benchmarking.run_folder import RunFolder

    for d in run_dirs:
        if not (Path(d) / "run.json").is_file():
            raise FileNotFoundError(f"{d}: not a run folder (no run.json)")
        if not is_stability_folder(d):
            raise ValueError(f"{d}: not a `robustpose stability` run folder; several folders "
                             "are compared only for stability runs")
    if len(run_dirs) == 1:
        card = write_stability_reports(RunFolder(run_dirs[0]), plots=plots)
        print(format_stability_table([card]))
        print(f"rebuilt: {run_dirs[0]}/{STABILITY_FILE}, {TABLE_FILE}"
              + ("" if not plots else ", stability_R.png, stability_RUC.png, stability_table1.png"))
        return 0
    _, table = compare_stability(run_dirs, out, plots=plots)
    print(table)
    print(f"compared {len(run_dirs)} runs: {out}/stability_compare.md"
          + ("" if not plots else ", stability_R.png, stability_RUC.png, stability_table1.png"))
    return 0
