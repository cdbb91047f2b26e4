"""Issue 27 section 4: the PoseBench suite, the box family and the AdvMix 15 on coco_val_mini.

Runs ``robustpose benchmark`` (one resumable run folder per (model, suite) under
``runs/posebench/``) for the bundled model and the BlazePose lite ONNX model, counts each
run's CPU seconds (children's user + sys, ``OMP_NUM_THREADS=1``, one process, no loader
workers), and writes ``experiments/results/posebench/posebench.{md,json}`` from the run
folders' ``summary.json`` (never typed in): per suite the table, mPC / rPC / mRR, the box
family's headline, the CPU per cell, and the AdvMix-15 vs PoseBench-10 ranking of
corruptions (hardest first) for the models that ran both.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/posebench_study.py [--severities 1-5]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs_common import ROOT, run, tool  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "coco_val_mini"
ONNX = ROOT.parent / "shared" / "models" / "blazepose_landmark_lite.onnx"
MODELS = {"bundled": [], "blazepose_lite": ["--onnx", str(ONNX), "--onnx-spec", "blazepose"]}
#: (model, suite) pairs measured: both suites and the box family for both models, so the
#: AdvMix-vs-PoseBench ranking exists for each
PLAN = [("bundled", "posebench"), ("bundled", "box"), ("bundled", "benchmark"),
        ("blazepose_lite", "posebench"), ("blazepose_lite", "box"),
        ("blazepose_lite", "benchmark")]
#: models whose stability (R, RUC) is measured under the box family
STABILITY = ["bundled", "blazepose_lite"]
OUT = ROOT / "experiments" / "results" / "posebench"


def timed(cmd: list[str], out: Path) -> float:
    """Run ``cmd`` (one process, OMP_NUM_THREADS=1); its CPU seconds, kept in
    ``out/cpu_seconds.json`` so a rerun that only resumed reports the first run's cost."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cpu_path = out / "cpu_seconds.json"
    cpu = run(cmd, env)
    if cpu_path.is_file() and cpu < 0.5 * json.loads(cpu_path.read_text())["cpu_s"]:
        cpu = json.loads(cpu_path.read_text())["cpu_s"]  # a rerun that only resumed
    cpu_path.write_text(json.dumps({"cpu_s": cpu}))
    return cpu


def shown(cmd: list[str]) -> str:
    """The command as the docs print it (``robustpose ...``, data paths from ``..``)."""
    return " ".join(["robustpose", *cmd[1:]]).replace(str(ROOT.parent), "..")


def measure(model: str, suite: str, severities: str, runs: Path) -> dict:
    """Run (or resume) one benchmark; its card plus the CPU seconds of this call."""
    out = runs / f"{model}_{suite}"
    cmd = [tool("robustpose"), "benchmark", "--dataset", "coco-format", "--data-root", str(DATA),
           "--corruptions", suite, "--severities", severities, "--workers", "0",
           "--out", str(out), "--no-plots", "--no-progress", *MODELS[model]]
    cpu = timed(cmd, out)
    card = json.loads((out / "summary.json").read_text())
    cells = card["cells"]["expected"]
    return {"model": model, "suite": suite, "run_dir": str(out.relative_to(ROOT)),
            "command": shown(cmd), "cpu_s": round(cpu, 1), "cells": cells, "cpu_per_cell_s": round(cpu / cells, 2),
            "clean": card["clean"], "mPC": card["mPC"], "rPC": card["rPC"], "mRR": card.get("mRR"),
            "box": card.get("box"), "per_corruption": card["per_corruption"],
            "per_cell": card["per_cell"], "worst": card.get("worst"),
            "model_name": card["model"]}


def measure_stability(model: str, severities: str, runs: Path) -> dict:
    """Run (or resume) ``robustpose stability --perturbations box``: per box perturbation
    R (squared keypoint displacement, re-framed onto the clean crop's heatmap grid), RUC
    area, the median displacement in crop px, AUC / EPE; plus the CPU seconds."""
    out = runs / f"{model}_stability_box"
    cmd = [tool("robustpose"), "stability", "--dataset", "coco-format", "--data-root", str(DATA),
           "--perturbations", "box", "--severities", severities, "--workers", "0",
           "--out", str(out), "--no-plots", "--no-progress", *MODELS[model]]
    cpu = timed(cmd, out)
    card = json.loads((out / "stability.json").read_text())
    cells = card["cells"]["expected"] + 1  # and the clean cell, as the benchmark counts

    def row(stats: dict) -> dict:
        r, rc = stats.get("R_heatmap") or {}, stats.get("R_crop") or {}
        med = rc.get("median")
        return {"R_per_kp_mean_hm_px2": r.get("mean"), "R_per_kp_median_hm_px2": r.get("median"),
                "median_shift_crop_px": None if med is None else med ** 0.5,
                "RUC_area": stats.get("RUC_area"), "AUC": stats.get("AUC"),
                "EPE": stats.get("EPE")}

    return {"model": model, "run_dir": str(out.relative_to(ROOT)), "command": shown(cmd),
            "cpu_s": round(cpu, 1), "cells": cells, "cpu_per_cell_s": round(cpu / cells, 2),
            "model_name": card["model"], "clean": row(card["clean"] or {}),
            "per_perturbation": {n: row(v) for n, v in card["per_perturbation"].items()},
            "overall": row(card["overall"])}


def ranking(per_corruption: dict) -> list[str]:
    """Corruption names, hardest (lowest metric) first; ties by name."""
    return sorted(per_corruption, key=lambda n: (per_corruption[n], n))


def compare_rankings(advmix: dict, posebench: dict) -> dict:
    """Both suites' hardest-first orders and the Spearman correlation over the shared ones."""
    shared = [n for n in ranking(advmix) if n in posebench]
    a = {n: i for i, n in enumerate(r for r in ranking(advmix) if r in shared)}
    p = {n: i for i, n in enumerate(r for r in ranking(posebench) if r in shared)}
    k = len(shared)
    rho = (1 - 6 * sum((a[n] - p[n]) ** 2 for n in shared) / (k * (k * k - 1))) if k > 2 else None
    return {"advmix15_hardest_first": ranking(advmix), "posebench10_hardest_first":
            ranking(posebench), "shared": shared, "spearman_shared": rho,
            "posebench_only": [n for n in posebench if n not in advmix]}


def fmt(v: object) -> str:
    return "-" if v is None else f"{float(v):.1f}"


def markdown(results: list[dict], rankings: dict, severities: str,
             stability: list[dict] | None = None) -> str:
    lines = ["# PoseBench suite, box family and AdvMix 15 on coco_val_mini (measured)", "",
             f"Written by `experiments/posebench_study.py` from the run folders' summary.json. "
             f"AP in percent, GT boxes, flip test on, severities {severities}; CPU = user + sys "
             f"seconds of the whole command (start-up, clean cell and every cell; "
             f"OMP_NUM_THREADS=1, no loader workers, a 2-core machine shared with other jobs).",
             ""]
    lines += ["| model | suite | cells | AP* | mPC | rPC | mRR | box mean | box rel. | worst | CPU s | CPU s/cell |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in results:
        box = r.get("box") or {}
        worst = (r.get("worst") or {}).get("corruption", "-")
        lines.append(f"| {r['model']} | {r['suite']} | {r['cells']} | {fmt(r['clean'])} | "
                     f"{fmt(r['mPC'])} | {fmt(r['rPC'])} | {fmt(r['mRR'])} | "
                     f"{fmt(box.get('mean'))} | {fmt(box.get('relative'))} | {worst} | "
                     f"{r['cpu_s']:.0f} | {r['cpu_per_cell_s']:.2f} |")
    for r in results:
        sevs = sorted({int(s) for row in r["per_cell"].values() for s in row})
        lines += ["", f"## {r['model']}, {r['suite']} (AP per cell)", "",
                  "| corruption | " + " | ".join(f"s{s}" for s in sevs) + " | mean |",
                  "|---|" + "---:|" * (len(sevs) + 1)]
        for name, row in r["per_cell"].items():
            lines.append(f"| {name} | " + " | ".join(fmt(row.get(str(s))) for s in sevs)
                         + f" | {fmt(r['per_corruption'].get(name))} |")
    for model, comp in rankings.items():
        rho = comp["spearman_shared"]
        adv3, pb3 = comp["advmix15_hardest_first"][:3], comp["posebench10_hardest_first"][:3]
        lines += ["", f"## Which corruptions each suite finds hardest, {model}", "",
                  f"- AdvMix 15, hardest first: {', '.join(comp['advmix15_hardest_first'])}",
                  f"- PoseBench 10, hardest first: {', '.join(comp['posebench10_hardest_first'])}",
                  f"- AdvMix's 3 hardest: {', '.join(adv3)}; of them outside PoseBench: "
                  f"{', '.join(n for n in adv3 if n not in comp['shared']) or 'none'}",
                  f"- PoseBench's 3 hardest: {', '.join(pb3)}; of them outside AdvMix: "
                  f"{', '.join(n for n in pb3 if n in comp['posebench_only']) or 'none'}",
                  f"- the {len(comp['shared'])} shared corruptions are the same cells in both "
                  f"runs (same seed, images and severity tables), so their two orders agree by "
                  f"construction (Spearman rho {'-' if rho is None else f'{rho:.2f}'}); the "
                  f"suites differ only in which corruptions they include "
                  f"(PoseBench-only: {', '.join(comp['posebench_only'])})."]
    if stability:
        lines += ["", "## Stability under the box family (robustpose stability --perturbations box)",
                  "", "R = squared keypoint displacement between the clean and the box-perturbed "
                  "crop, re-framed onto the clean crop's heatmap grid (per keypoint, heatmap "
                  "px^2); shift = sqrt of the median R in crop px; RUC area over 0..10 heatmap "
                  "px (1 = nothing moves); severities pooled. AUC (0..30 image px) / EPE "
                  "(image px) against the ground truth.",
                  "", "| model | perturbation | R/kp mean | R/kp median | median shift (crop px) "
                  "| RUC area | AUC | EPE |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for st in stability:
            rows = [("clean", st["clean"]), *st["per_perturbation"].items(),
                    ("overall", st["overall"])]
            for name, r in rows:
                f3 = (lambda v: "-" if v is None else f"{v:.3f}")
                lines.append(f"| {st['model']} | {name} | {f3(r['R_per_kp_mean_hm_px2'])} | "
                             f"{f3(r['R_per_kp_median_hm_px2'])} | "
                             f"{fmt(r['median_shift_crop_px'])} | {f3(r['RUC_area'])} | "
                             f"{f3(r['AUC'])} | {fmt(r['EPE'])} |")
        lines += ["", "| model | cells | CPU s | CPU s/cell |", "|---|---:|---:|---:|"]
        lines += [f"| {st['model']} | {st['cells']} | {st['cpu_s']:.0f} | "
                  f"{st['cpu_per_cell_s']:.2f} |" for st in stability]
    return "\n".join(lines) + "\n"


def mce_markdown(mce: dict) -> str:
    """The mCE section: BlazePose lite against the bundled model (baseline = 100)."""
    if not mce:
        return ""
    lines = ["", "## mCE of blazepose_lite against bundled (baseline = 100, lower is better)",
             "", "`robustpose report runs/posebench/blazepose_lite_SUITE --baseline "
             "runs/posebench/bundled_SUITE` (or `benchmark ... --baseline`).", "",
             "| suite | mCE | relative mCE | mRR | baseline mRR |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {suite} | {fmt(m['mCE'])} | {fmt(m['relative_mCE'])} | {fmt(m['mRR'])} | "
              f"{fmt(m['baseline_mRR'])} |" for suite, m in mce.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--severities", default="1-5")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "posebench"))
    parser.add_argument("--only", default=None, help="model:suite,... (default: the plan)")
    parser.add_argument("--no-stability", action="store_true",
                        help="skip the stability runs under the box family")
    args = parser.parse_args(argv)
    plan = PLAN if not args.only else [tuple(p.split(":")) for p in args.only.split(",")]
    runs = Path(args.runs).resolve()  # run_dir is written relative to the repository
    results = [measure(m, s, args.severities, runs) for m, s in plan]
    stability = [] if args.no_stability else [measure_stability(m, args.severities, runs)
                                              for m in STABILITY]
    by = {(r["model"], r["suite"]): r for r in results}
    rankings = {m: compare_rankings(by[(m, "benchmark")]["per_corruption"],
                                    by[(m, "posebench")]["per_corruption"])
                for m in MODELS if (m, "benchmark") in by and (m, "posebench") in by}
    # mCE of BlazePose lite against the bundled model per suite (what report --baseline
    # and benchmark --baseline print; read from the run folders, nothing recomputed)
    from robustpose.benchmarking.baseline import compare_runs

    mce = {suite: {k: v for k, v in compare_runs(ROOT / by[("blazepose_lite", suite)]["run_dir"],
                                                 ROOT / by[("bundled", suite)]["run_dir"]).items()
                   if k in ("mCE", "relative_mCE", "mRR", "baseline_mRR", "CE")}
           for suite in ("posebench", "benchmark")
           if ("blazepose_lite", suite) in by and ("bundled", suite) in by}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "posebench.json").write_text(json.dumps({"severities": args.severities,
                                                    "results": results,
                                                    "rankings": rankings,
                                                    "stability_box": stability,
                                                    "mce_blazepose_lite_vs_bundled": mce},
                                                   indent=2) + "\n")
    (OUT / "posebench.md").write_text(markdown(results, rankings, args.severities, stability)
                                      + mce_markdown(mce))
    print((OUT / "posebench.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
