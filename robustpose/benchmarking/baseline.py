"""mCE against a baseline model's run: ``robustpose report RUN --baseline OTHER_RUN`` and
``robustpose benchmark ... --baseline OTHER_RUN`` (both call :func:`write_comparison`).

Reads two benchmark run folders (run.json + their stored cells) and compares them with
ImageNet-C's mCE / relative mCE (:func:`robustpose.evaluation.robustness.compare_to_baseline`);
the console lines and ``RUN/mce.json`` come from here. A module of its own because it
reads folders (:mod:`run_folder`, which imports :mod:`summary`).
"""
from __future__ import annotations

import json
from pathlib import Path

from robustpose.benchmarking.cells import CLEAN
from robustpose.benchmarking.summary import format_number as _f
from robustpose.benchmarking.summary import to_percent as _pct
from robustpose.benchmarking.summary import to_percent_dict as _pct_dict
from robustpose.corruptions.selection import pixel_corruptions


def compare_runs(run_dir: str | Path, baseline_dir: str | Path) -> dict:
    """mCE / relative mCE / mRR of a benchmark run folder against a baseline model's run.

    The run's pixel corruptions and severities (run.json) are compared cell by cell
    (:func:`robustpose.evaluation.robustness.compare_to_baseline`, ImageNet-C's definition,
    errors ``1 - AP``); box perturbations are left out like from mPC. Ratios in percent
    (the baseline scores 100). A clean score of 0 leaves mRR undefined (None; the mCE,
    which needs no clean score, is still given). Refuses in one line when a folder is not a
    benchmark run, the two runs measure different metrics, or the baseline lacks a cell.
    """
    from robustpose.benchmarking.run_folder import RunFolder
    from robustpose.evaluation.robustness import compare_to_baseline

    folders = [RunFolder(run_dir), RunFolder(baseline_dir)]
    for folder in folders:
        if not folder.settings_file.is_file():
            raise FileNotFoundError(f"{folder.path}: not a run folder (no run.json)")
    ours, base = (f.settings for f in folders)
    if ours.get("metric", "AP") != base.get("metric", "AP"):
        raise ValueError(f"{baseline_dir}: the baseline measures {base.get('metric', 'AP')}, the "
                         f"run {ours.get('metric', 'AP')}; mCE compares one metric")
    metric = ours.get("metric", "AP")
    names = pixel_corruptions(ours.get("corruptions", []))
    severities = [int(s) for s in ours.get("severities", [])]
    if not names:
        raise ValueError(f"{run_dir}: no pixel corruption cells to compare (clean or box only)")
    scale = float(ours.get("metric_scale", 100.0))  # stored value x scale = percent
    keep = set(names) | {CLEAN}
    records = [r for r in folders[0].records() if r["corruption"] in keep]
    baseline = [r for r in folders[1].records() if r["corruption"] in keep]
    try:
        result = compare_to_baseline(records, baseline, metric, names, severities,
                                     max_score=100.0 / scale)
    except ValueError as exc:
        raise ValueError(f"{baseline_dir}: {exc}") from None
    pct = {k: _pct(result[k]) for k in ("mCE", "relative_mCE", "mRR", "baseline_mRR")}
    return {**pct, "metric": metric, "run": str(run_dir), "baseline": str(baseline_dir),
            "model": ours.get("model"), "baseline_model": base.get("model"),
            "dataset": ours.get("dataset"), "baseline_dataset": base.get("dataset"),
            "CE": _pct_dict(result["CE"]), "relative_CE": _pct_dict(result["relative_CE"]),
            "corruptions": names, "severities": severities, "units": "percent (baseline = 100)"}


def check_baseline_folder(baseline_dir: str | Path) -> None:
    """Refuse (one line) a ``--baseline`` that is no run folder, before a run starts."""
    if not (Path(baseline_dir) / "run.json").is_file():
        raise FileNotFoundError(f"--baseline {baseline_dir}: not a run folder (no run.json)")


def write_comparison(run_dir: str | Path, baseline_dir: str | Path) -> dict:
    """:func:`compare_runs`, written to ``run_dir/mce.json`` and printed
    (:func:`format_comparison`); returns the result."""
    from robustpose.utils.io import atomic_write_text

    result = compare_runs(run_dir, baseline_dir)
    atomic_write_text(Path(run_dir) / "mce.json", json.dumps(result, indent=2) + "\n")
    print(format_comparison(result))
    return result


def _mrr_text(value: float | None) -> str:
    return "undefined (clean score 0)" if value is None else _f(value)


def format_comparison(result: dict) -> str:
    """The console lines of :func:`compare_runs`."""
    lines = [f"model {result['model']} vs baseline {result['baseline_model']} "
             f"({result['metric']}, {len(result['corruptions'])} corruptions x "
             f"{len(result['severities'])} severities)",
             f"mCE {_f(result['mCE'])}   relative mCE {_f(result['relative_mCE'])}   "
             f"mRR {_mrr_text(result['mRR'])} (baseline {_mrr_text(result['baseline_mRR'])})   "
             f"[percent; baseline mCE = 100, lower is better]"]
    if result.get("dataset") != result.get("baseline_dataset"):
        lines.append(f"note: datasets differ ({result['dataset']} vs "
                     f"{result['baseline_dataset']})")
    return "\n".join(lines)
