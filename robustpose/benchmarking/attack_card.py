"""The card of an attack run folder: clean numbers, per cell attacked and relative values
(``attack.json``), the markdown table (``attack.md``) and the plots."""
from __future__ import annotations

from typing import Any

from robustpose.benchmarking.attack_cells import key_from_json

COMMAND = "attack"


def is_attack_folder(path: Any) -> bool:
    """True when ``path/run.json`` records the ``attack`` run kind."""
    import json
    from pathlib import Path

    from robustpose.benchmarking.run_layer import kind_of

    try:
        settings = json.loads((Path(path) / "run.json").read_text(encoding="utf-8"))
        return isinstance(settings, dict) and kind_of(settings) == COMMAND
    except (OSError, ValueError):
        return False


def build_card(folder: Any) -> dict:
    """The run's card: clean numbers, then per cell attacked and relative values."""
    settings = folder.settings
    records = folder.refresh().records()
    clean = next((r for r in records if r["corruption"] == "clean"), None)
    rows = []
    for r in records:
        if r["corruption"] == "clean":
            continue
        cell = key_from_json(r)  # typed, from any schema version (parsed once, here)
        row = {k: r.get(k) for k in ("metric_value", "pck", "target_pck", "queries_per_crop",
                                     "elapsed_s", "epochs_run", "stopped_early", "fit_people",
                                     "holdout_people", "uap_curve")}
        row.update(attack=cell.attack, surrogate=cell.surrogate, eps=cell.eps,
                   steps=cell.steps, targeted=cell.targeted, all_stacks=cell.all_stacks,
                   loss=cell.loss, mode=cell.mode, key=cell.label)
        if clean is not None:
            row["relative_metric"] = _ratio(r.get("metric_value"), clean.get("metric_value"))
            row["relative_pck"] = _ratio(r.get("pck"), clean.get("pck"))
            row["relative_pck_per_joint"] = [
                _ratio(a, b) for a, b in zip(r.get("pck_per_joint") or [],
                                             clean.get("pck_per_joint") or [])]
        rows.append(row)
    rows.sort(key=lambda x: (str(x.get("surrogate")), x["targeted"], x["steps"], x["eps"]))
    return {"command": COMMAND, "model": settings["model"], "dataset": settings["dataset"],
            "attack": settings.get("attack"), "metric": settings.get("metric"),
            "keypoint_names": settings.get("keypoint_names"),
            "num_people": settings.get("num_people"),
            "clean": None if clean is None else {"metric_value": clean.get("metric_value"),
                                                 "pck": clean.get("pck"),
                                                 "pck_per_joint": clean.get("pck_per_joint")},
            "cells": rows, "settings": settings.get("conventions")}


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or not b:
        return None
    return round(float(a) / float(b), 6)


def format_attack_table(card: dict) -> str:
    """Markdown table: one row per cell (values as percent; relative as fractions)."""
    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    def rel(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}"

    metric = card.get("metric") or "metric"
    scale = 100.0 if metric == "AP" else 1.0
    clean = card.get("clean") or {}
    cv = clean.get("metric_value")
    lines = [f"{card['model']} on {card['dataset']} ({card.get('num_people')} people); clean "
             f"{metric} {'-' if cv is None else f'{cv * scale:.1f}'}, PCK@0.1 {pct(clean.get('pck'))}",
             *_loss_lines(card.get("settings") or {}),
             "", f"| cell | eps | steps | {metric} | rel. {metric} | PCK@0.1 | rel. PCK | target PCK | queries/crop |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in card["cells"]:
        mv = r.get("metric_value")
        lines.append(f"| {r['key']} | {r['eps']:g} | {r['steps']} | "
                     f"{'-' if mv is None else f'{mv * scale:.1f}'} | {rel(r.get('relative_metric'))} | "
                     f"{pct(r.get('pck'))} | {rel(r.get('relative_pck'))} | {pct(r.get('target_pck'))} | "
                     f"{r.get('queries_per_crop') or '-'} |")
    return "\n".join(lines) + "\n"


def _loss_lines(settings: dict) -> list[str]:
    """'loss: <name> (<why>)' per attacked model (runs from before loss_used: nothing)."""
    used, why = settings.get("loss_used") or {}, settings.get("loss_source") or {}
    return ["", *(f"loss{'' if k == 'model' else f' on {k}'}: {v} ({why.get(k, '?')})"
                  for k, v in used.items())] if used else []


def write_attack_reports(folder: Any, plots: bool = True) -> dict:
    """``attack.json``, ``attack.md`` (and the PNGs) from the folder's records."""
    import json

    from robustpose.utils.io import atomic_write_text

    card = build_card(folder)
    atomic_write_text(folder.path / "attack.json", json.dumps(card, indent=2, sort_keys=True))
    atomic_write_text(folder.path / "attack.md", format_attack_table(card))
    if plots and card["cells"]:
        from robustpose.reports.attack_plots import write_attack_plots

        card["plots"] = [str(p) for p in write_attack_plots(card, folder.path)]
    return card


def cell_line(record: dict, metric: str) -> str:
    """One printed line per finished cell."""
    def num(v: Any, scale: float = 100.0) -> str:
        return "-" if v is None else f"{scale * v:5.1f}"

    scale = 100.0 if metric == "AP" else 1.0
    label = "clean" if record["corruption"] == "clean" else \
        f"{record['corruption']}/{record['severity']}"
    extra = f"  target PCK {num(record.get('target_pck'))}" if record.get("target_pck") is not None else ""
    queries = f"  queries/crop {record['queries_per_crop']}" if record.get("queries_per_crop") else ""
    return (f"{label:<28} {metric} {num(record.get('metric_value'), scale)}  "
            f"PCK@0.1 {num(record.get('pck'))}{extra}{queries}  ({record['elapsed_s']:.1f} s)")


def store_cells(run: Any, cells: Any, run_cell: Any) -> list[dict]:
    """Compute ``run_cell(cell)`` for each cell in order, append each record to the run
    folder as soon as it is done (a stopped run resumes after it) and print its line."""
    import sys

    written = []
    for i, cell in enumerate(cells):
        record = run_cell(cell)
        run.folder.append(record)
        written.append(record)
        if run.progress:
            print(f"[{i + 1:>3}/{len(cells)}] {cell_line(record, run.source.metric_name)}")
            sys.stdout.flush()
    return written
