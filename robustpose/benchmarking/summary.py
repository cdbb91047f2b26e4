"""The robustness card (``summary.json``) of a run, built from its results store.

Figures are in percent (AP x 100, like the papers). mPC / rPC / per-family / per-severity
come from :func:`robustpose.evaluation.summarize_robustness` over the stored records, so
a report rebuilt later from the store gives the same card.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from robustpose.benchmarking.cells import CLEAN
from robustpose.corruptions.selection import pixel_corruptions
from robustpose.evaluation.robustness import BENCHMARK_CORRUPTIONS
from robustpose.utils.io import atomic_write_text


def _pct(value: Any, scale: float = 100.0) -> float | None:
    return None if value is None else round(scale * float(value), 4)


def _pct_dict(values: Any, scale: float = 100.0) -> dict:
    if not isinstance(values, dict):
        return {}
    return {str(k): _pct(v, scale) for k, v in values.items()}


def build_card(records: Sequence[dict], settings: dict,
               corruptions: Sequence[str] | None = None) -> dict:
    """Card from cell records + the run settings (``run.json``)."""
    from robustpose.evaluation import summarize_robustness

    metric = settings.get("metric", "AP")
    scale = float(settings.get("metric_scale", 100.0))  # stored value -> percent
    names = list(corruptions if corruptions is not None else settings.get("corruptions", []))
    severities = [int(s) for s in settings.get("severities", [])]
    expected = {(CLEAN, 0)} | {(c, s) for c in names for s in severities}
    present = {(r["corruption"], int(r["severity"])) for r in records}
    per_cell: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    for record in records:
        for item in record.get("skipped_images", []):
            skipped.setdefault(item["path"], item["problem"])
        if record["corruption"] != CLEAN and record.get(metric) is not None:
            per_cell.setdefault(record["corruption"], {})[str(int(record["severity"]))] = \
                _pct(record[metric], scale)
    missing = sorted(expected - present)
    clean_records = [r for r in records if r["corruption"] == CLEAN]
    # mPC / rPC / mRR are over the pixel corruptions; box perturbations get their own block
    pixel = pixel_corruptions(names)
    boxes = [n for n in names if n not in pixel]
    if pixel and not missing:
        summary = summarize_robustness(list(records), metric=metric, corruptions=pixel,
                                       severities=severities)
    else:  # clean only, or an unfinished run (other shards still running): no mPC yet
        summary = {"clean": clean_records[0].get(metric) if clean_records else None}
    worst = summary.get("worst")
    if isinstance(worst, dict):
        worst = {"corruption": worst.get("corruption"),
                 "value": _pct(worst.get("value"), scale)}
    card = {
        "model": settings.get("model"), "dataset": settings.get("dataset"),
        "metric": metric, "units": "percent",
        "model_info": settings.get("model_info", {}),
        "conventions": settings.get("conventions", {}),
        "corruptions": names, "severities": severities,
        "clean": _pct(summary.get("clean"), scale), "mPC": _pct(summary.get("mPC"), scale),
        "rPC": _pct(summary.get("rPC")),  # a ratio -> percent
        # PoseBench's mRR: with the one clean score as denominator it is rPC (computed by
        # its own definition, evaluation.robustness.mean_resilience_rate, and shown labelled)
        "mRR": _pct(_mrr(records, metric, pixel, severities) if summary.get("mPC") is not None
                    else None),
        "per_corruption": {**_pct_dict(summary.get("per_corruption"), scale),
                           **_box_means(per_cell, boxes, severities, missing)},
        "per_family": _pct_dict(summary.get("per_family"), scale),
        "per_severity": _pct_dict(summary.get("per_severity"), scale),
        "per_cell": per_cell, "worst": worst,
        "cells": {"expected": len(expected), "done": len(expected & present),
                  "missing": [f"{c}/{s}" for c, s in missing]},
        "skipped_images": [{"path": p, "problem": q} for p, q in sorted(skipped.items())],
        "dropped_annotations": list(settings.get("dropped_annotations", [])),
        "seconds": round(sum(float(r.get("elapsed_s", 0.0)) for r in records), 1),
    }
    if boxes:
        card["box"] = box_block(card, boxes)
    if set(pixel) != set(BENCHMARK_CORRUPTIONS) and pixel:
        card["mPC_note"] = f"mPC over {len(pixel)} corruption(s), not the paper's 15."
    if severities != [1, 2, 3, 4, 5] and names:
        card["mPC_note"] = (card.get("mPC_note", "") + f" Severities {severities} only.").strip()
    return card


def _mrr(records: Sequence[dict], metric: str, names: Sequence[str],
         severities: Sequence[int]) -> float | None:
    """PoseBench's mRR (a ratio) of the stored cells, or None without a clean score."""
    from robustpose.evaluation.robustness import cell_grid, mean_resilience_rate

    grid = cell_grid(records, metric)
    if not names or not grid.get(CLEAN, {}).get(0):
        return None
    return mean_resilience_rate(grid, names, severities)


def _box_means(per_cell: dict, boxes: Sequence[str], severities: Sequence[int],
               missing: Sequence[tuple]) -> dict:
    """{box perturbation: mean over severities, percent} once all their cells are in."""
    if any(c in boxes for c, _ in missing):
        return {}
    return {name: round(sum(per_cell[name][str(s)] for s in severities) / len(severities), 4)
            for name in boxes if name in per_cell}


def box_block(card: dict, boxes: Sequence[str]) -> dict:
    """The box perturbations' headline: ``mean`` (over perturbations and severities,
    percent, like mPC) and ``relative`` (mean / clean, percent, like rPC); None until every
    box cell is in. Magnitudes: :data:`robustpose.data.box_perturbations.BOX_MAGNITUDES`."""
    from robustpose.data.box_perturbations import BOX_MAGNITUDES

    means = [card["per_corruption"].get(n) for n in boxes]
    mean = None if any(m is None for m in means) else round(sum(means) / len(means), 4)
    clean = card.get("clean")
    return {"perturbations": list(boxes), "mean": mean,
            "relative": round(100.0 * mean / clean, 4) if mean is not None and clean else None,
            "magnitudes": {n: list(BOX_MAGNITUDES[n]) for n in boxes},
            "units": "mean: percent of the metric; relative: percent of clean; magnitudes: "
                     "fractions of the box's width / height per severity 1..5"}


def write_card(card: dict, run_dir: Path) -> Path:
    path = Path(run_dir) / "summary.json"
    atomic_write_text(path, json.dumps(card, indent=2, sort_keys=False) + "\n")
    return path


def format_table(card: dict) -> str:
    """The console table: headline figures, then per corruption x severity."""
    from robustpose.reports.tables import metric_settings_text, ordered_corruptions

    metric = card["metric"]
    lines = [f"model {card['model']}  dataset {card['dataset']}",
             f"{metric}* {_f(card['clean'])}   mPC {_f(card['mPC'])}   rPC {_f(card['rPC'])}"
             + (f"   worst: {card['worst']['corruption']} ({_f(card['worst']['value'])})"
                if card.get("worst") else "")]
    severities = card["severities"]
    if card["per_cell"]:
        lines.append(f"{'corruption':<20}" + "".join(f"{'s' + str(s):>7}" for s in severities)
                     + f"{'mean':>8}")
        for name in ordered_corruptions(card["per_cell"]):
            row = card["per_cell"][name]
            lines.append(f"{name:<20}" + "".join(f"{_f(row.get(str(s))):>7}" for s in severities)
                         + f"{_f(card['per_corruption'].get(name)):>8}")
    box = card.get("box")
    if box:  # the box perturbations' headline (not in mPC)
        lines.append(f"box perturbations ({', '.join(box['perturbations'])}): mean "
                     f"{_f(box['mean'])}   relative {_f(box['relative'])} % of {metric}*")
    metric_text = metric_settings_text(card)
    if metric_text:
        lines.append(f"metric: {metric_text}")
    if card.get("mPC_note"):  # fewer corruptions/severities than the paper's: say so here too
        lines.append(f"note: {card['mPC_note']}")
    if card["cells"]["missing"]:
        lines.append(f"missing cells ({len(card['cells']['missing'])}): "
                     + ", ".join(card["cells"]["missing"][:8]))
    if card["skipped_images"]:
        lines.append(f"skipped images: {len(card['skipped_images'])} (unreadable, or too "
                     f"small/large to corrupt; listed in summary.json, their people count "
                     f"as misses)")
    if card.get("dropped_annotations"):
        ids = ", ".join(str(d.get("ann_id")) for d in card["dropped_annotations"][:5])
        lines.append(f"dropped people: {len(card['dropped_annotations'])} (ground-truth box with "
                     f"no positive width and height: annotation {ids}; listed in summary.json, "
                     f"they count as misses)")
    return "\n".join(lines)


def _f(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"



# public names of the card's number rules (benchmarking.baseline formats with them)
to_percent, to_percent_dict, format_number = _pct, _pct_dict, _f
