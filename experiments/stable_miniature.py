"""The stable-heatmap-regression miniature (issue 15): MobileNetV2 on SynthPose, pre-trained
once from scratch, then every row fine-tuned from that one checkpoint with the same
schedule; each measured by ``robustpose stability`` on the held-out five perturbations
(D_n, D_(1)(2), R, RUC, clean AUC / EPE), tabulated with the seed spread and the paper's
claims checked against the measured numbers.

    python experiments/stable_miniature.py                      # everything, then the table
    python experiments/stable_miniature.py --runs baseline_ft:0,rcc:0
    python experiments/stable_miniature.py --prepare-only --threads 2  # the shared pre-training
    python experiments/stable_miniature.py --table-only
    python experiments/stable_miniature.py --quick --out /tmp/q  # the CI-sized version
    python experiments/stable_miniature.py --match-ratio 1.0     # + the ratio-matched rows
    python experiments/stable_miniature.py --remeasure           # stability runs of an older rule

Layout under ``OUT`` (default ``runs/stable_mini``): ``pretrain/`` (the shared checkpoint,
``configs/stable/synthpose_mobilenetv2_baseline.yaml``), ``<row>_s<seed>/`` (training,
resumed from its checkpoint.pt when interrupted; validation only at the last epoch so
``best.pt`` is the final weights), ``<row>_s<seed>/stability/`` (the stability run
folder, resumable per cell), ``<row>_s<seed>/stability_softmax/`` (D_(1)(2) of every row on
one scale: pixel softmax, severity 3), ``val/`` (the validation split, written once), ``cpu.json``
per run (user + sys CPU seconds of the child processes), and ``stable_miniature.{md,json}``.

The table's main D_n and D_(1)(2) are the paper's Table 1 reading, on the clean crops; the
pooled perturbed reading is a labelled extra. ``--match-ratio R`` measures the regulariser-to-
task gradient-norm ratio of ST_g, ST_a, MST and R+H+M on the shared checkpoint
(``experiments/stable_grad_ratio.py``, into ``grad_ratio.json``), writes the weights giving
ratio R to ``matched_weights.json``, and adds the rows ``<row>_m`` trained with them.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs_common import add_cpu as _add_cpu, parse_runs, run as _run, tool as _tool  # noqa: E402
from stable_claims import claims as _claims, mean as _mean, seed_noise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "stable"
PRETRAIN = "baseline"
#: (row, config suffix, seeds): >= 2 seeds for the ablation rows, 1 for the baselines
ROWS = [("baseline_ft", "Baseline", (0, 1)), ("rcc", "RCC", (0, 1)), ("hdhr", "HDHR", (0, 1)),
        ("mst", "MST", (0, 1)), ("rhm", "R+H+M", (0, 1)),
        ("at", "AT", (0,)), ("augmix", "AugMix", (0,)), ("lipschitz", "Lipschitz", (0,)),
        ("pg", "PG", (0,)), ("st_g", "ST_g", (0,)), ("st_a", "ST_a", (0,))]
#: ratio-matched variants (--match-ratio): row -> the row whose config they reweight
MATCHED = {"st_g_m": "st_g", "st_a_m": "st_a", "mst_m": "mst", "rhm_m": "rhm"}
MATCHED_ROWS = [("st_g_m", "ST_g (matched)", (0,)), ("st_a_m", "ST_a (matched)", (0,)),
                ("mst_m", "MST (matched)", (0,)), ("rhm_m", "R+H+M (matched)", (0,))]
ALL_ROWS = ROWS + MATCHED_ROWS
NAMES = {row: name for row, name, _ in ALL_ROWS}
ABLATION = ("baseline_ft", "rcc", "hdhr", "mst", "rhm")   # the paper's ablation; the rest: baselines
QUICK_TRAIN = ["train.epochs=1", "train.max_iters_per_epoch=2", "train.batch_size=4",
               "data.train.num_images=16", "val.batch_size=8"]
QUICK_STABILITY = ["--perturbations", "gaussian_blur,saturate", "--severities", "1,3"]
#: D_n, D_12 (raw | softmax as run), D_12_mst (the MST loss's scale: raw | Z x softmax),
#: D_12_softmax (every row on the pixel softmax) and undefined: clean crops (Table 1);
#: *_pooled: over the perturbed cells (the earlier protocol, an extra)
COLUMNS = ("D_n", "D_12", "D_12_mst", "D_12_softmax", "undefined", "D_n_pooled",
           "D_12_pooled", "undefined_pooled", "R", "RUC", "AUC", "EPE", "AP")
HEADERS = ("D_n", "D_(1)(2)", "D_(1)(2) MST scale", "D_(1)(2) softmax", "undefined",
           "D_n pooled", "D_(1)(2) pooled", "undefined pooled", "R / kp", "RUC area",
           "AUC (clean)", "EPE (clean)", "val AP")
MATCHED_FILE = "matched_weights.json"


def _train(config: Path, run_dir: Path, overrides: list[str], env: dict) -> None:
    """``robustpose train`` into ``run_dir`` unless it finished; its CPU time to cpu.json."""
    if (run_dir / "train_done").is_file():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    seconds = _run([_tool("robustpose"), "train", str(config), *overrides, "--device", "cpu",
                    "--out", str(run_dir), "--resume", "auto", "--no-progress"], env)
    _add_cpu(run_dir, "train_s", seconds)
    (run_dir / "train_done").write_text("")


def _schedule(quick: bool, epochs: int) -> list[str]:
    return QUICK_TRAIN + ["val.every=1"] if quick else [f"val.every={epochs}"]


def prepare(out: Path, num_images: int, env: dict, quick: bool) -> tuple[Path, Path]:
    """The validation split (written once) and the shared pre-trained checkpoint."""
    val = out / "val"
    if not (val / "annotations.json").is_file():
        _run([_tool("robustpose"), "synth", str(val), "--split", "val", "--num-images",
              str(num_images), "--no-progress"], env)
    pretrain = out / "pretrain"
    # the pre-training keeps its config's validation cadence: its curve is what chose its length
    _train(CONFIGS / f"synthpose_mobilenetv2_{PRETRAIN}.yaml", pretrain,
           ["seed=0", *(QUICK_TRAIN + ["val.every=1"] if quick else [])], env)
    return val, pretrain / "best.pt"


def match_ratio(out: Path, init: Path, target: float, env: dict, quick: bool) -> dict:
    """``OUT/matched_weights.json``: per regularised row, the weight at which its
    regulariser's gradient norm is ``target`` x its task loss's, measured on the shared
    checkpoint's first batches (written once; another target is refused)."""
    path = out / MATCHED_FILE
    if path.is_file():
        matched = json.loads(path.read_text())
        if matched["target_ratio"] != target:
            raise SystemExit(f"{path}: holds weights matched to ratio {matched['target_ratio']}, "
                             f"asked {target}; use another --out")
        return matched
    configs = [str(CONFIGS / f"synthpose_mobilenetv2_{MATCHED[row]}.yaml") for row, _, _ in MATCHED_ROWS]
    overrides = ["seed=0", f"model.init_from={init}", *(QUICK_TRAIN if quick else [])]
    seconds = _run([sys.executable, str(ROOT / "experiments" / "stable_grad_ratio.py"), *configs,
                    "--batches", "1" if quick else "3", "--target", str(target),
                    "--json", str(out / "grad_ratio.json"),
                    *(x for o in overrides for x in ("--set", o))], env)
    measured = json.loads((out / "grad_ratio.json").read_text())["rows"]
    rows = {}
    for row, _, _ in MATCHED_ROWS:
        m = measured[f"synthpose_mobilenetv2_{MATCHED[row]}"]
        rows[row] = {"key": m["weight_key"], "weight": m["matched_weight"],
                     "config_weight": m["weight"], "config_ratio": m["ratio"]}
    matched = {"target_ratio": target, "cpu_s": round(seconds, 1), "rows": rows}
    path.write_text(json.dumps(matched, indent=1) + "\n")
    return matched


def run_row(row: str, seed: int, out: Path, val: Path, init: Path, env: dict, quick: bool,
            remeasure: bool = False) -> None:
    """Fine-tune one (row, seed) from the shared checkpoint, then its stability run."""
    config = CONFIGS / f"synthpose_mobilenetv2_{MATCHED.get(row, row)}.yaml"
    run_dir = out / f"{row}_s{seed}"
    weight = []
    if row in MATCHED:
        if not (out / MATCHED_FILE).is_file():
            raise SystemExit(f"{row}: no {out / MATCHED_FILE}; run with --match-ratio first")
        m = json.loads((out / MATCHED_FILE).read_text())["rows"][row]
        weight = [f"train.method_args.{m['key']}={m['weight']}"]
    _train(config, run_dir, [f"seed={seed}", f"model.init_from={init}", *weight,
                             *_schedule(quick, 2)], env)
    cells = QUICK_STABILITY if quick else ["--perturbations", "heldout5", "--severities", "1-5"]
    _stability(config, run_dir, "stability", val, cells, env, remeasure)
    # D_(1)(2) on one scale for every row: the pixel softmax (the HDHR rows' own reading) on
    # the middle severity only, so the Gaussian and the HDHR rows can be compared at all
    one_scale = cells[:-1] + (["3"] if not quick else ["1"])
    _stability(config, run_dir, "stability_softmax", val,
               [*one_scale, "--normalisation", "softmax", "--no-plots"], env, remeasure)


def _stale(folder: Path) -> bool:
    """A stability folder measured before D_n's tie rule and undefined maps (run.json
    without ``dn_ties``): its D_n / D_(1)(2) are not comparable with the current ones."""
    run = folder / "run.json"
    return run.is_file() and "dn_ties" not in json.loads(run.read_text()).get("conventions", {})


def _stability(config: Path, run_dir: Path, name: str, val: Path, cells: list[str],
               env: dict, remeasure: bool = False) -> None:
    """``robustpose stability`` of ``run_dir/best.pt`` into ``run_dir/name`` unless complete;
    a stale folder (:func:`_stale`) is moved to ``name.superseded`` with ``remeasure``."""
    if _stale(run_dir / name):
        if not remeasure:
            raise SystemExit(f"{run_dir / name}: measured with the earlier D_n tie rule; rerun "
                             "with --remeasure (moves it to .superseded)")
        (run_dir / name).rename(run_dir / f"{name}.superseded")
    card = run_dir / name / "stability.json"
    if card.is_file() and not json.loads(card.read_text()).get("incomplete"):
        return
    seconds = _run([_tool("robustpose"), "stability", "--config", str(config),
                    "--checkpoint", str(run_dir / "best.pt"), "--dataset", "synth",
                    "--data-root", str(val), "--out", str(run_dir / name),
                    "--workers", "0", "--no-progress", *cells], env)
    _add_cpu(run_dir, f"{name}_s", seconds)


def _measures(card: dict) -> dict:
    overall, clean = card["overall"], card["clean"]
    normalisation = card.get("conventions", {}).get("d12_normalisation")
    # the MST loss's r: raw maps for Gaussian rows, Z x softmax for HDHR rows
    mst_scale = clean.get("D_12_hd") if normalisation == "softmax" else clean.get("D_12")
    return {"D_n": clean.get("D_n"), "D_12": clean.get("D_12"), "D_12_mst": mst_scale,
            "undefined": clean.get("undefined_fraction"),
            "D_n_pooled": overall.get("D_n"), "D_12_pooled": overall.get("D_12"),
            "undefined_pooled": overall.get("undefined_fraction"),
            "R": overall["R_heatmap"]["mean"], "RUC": overall["RUC_area"],
            "AUC": clean["AUC"], "EPE": clean["EPE"], "normalisation": normalisation}


def _final_val_ap(run_dir: Path) -> float | None:
    """The last validation AP in the run's log.csv (x 100, flip test, the config's val split)."""
    log = run_dir / "log.csv"
    if not log.is_file():
        return None
    with log.open() as f:
        values = [r["val_AP"] for r in csv.DictReader(f) if r.get("val_AP")]
    return 100 * float(values[-1]) if values else None


def _one_scale_d12(run_dir: Path) -> float | None:
    """D_(1)(2) of the clean crops on the pixel softmax (every row on one scale)."""
    card = run_dir / "stability_softmax" / "stability.json"
    return json.loads(card.read_text())["clean"].get("D_12") if card.is_file() else None


def collect(out: Path) -> dict[str, list[dict]]:
    data: dict[str, list[dict]] = {}
    for row, _, _ in ALL_ROWS:
        for run_dir in sorted(out.glob(f"{row}_s*")):
            card_file = run_dir / "stability" / "stability.json"
            if not card_file.is_file():
                continue
            for name in ("stability", "stability_softmax"):
                if _stale(run_dir / name):  # never mix the two tie rules in one table
                    raise SystemExit(f"{run_dir / name}: measured with the earlier D_n tie "
                                     "rule; rerun with --remeasure")
            cpu_file = run_dir / "cpu.json"
            cpu = json.loads(cpu_file.read_text()) if cpu_file.is_file() else {}
            data.setdefault(row, []).append({
                "seed": int(run_dir.name.rsplit("_s", 1)[1]),
                **_measures(json.loads(card_file.read_text())), "AP": _final_val_ap(run_dir),
                "D_12_softmax": _one_scale_d12(run_dir),
                "train_cpu_min": round(cpu.get("train_s", 0.0) / 60, 1)})
    return data


def _cell(cards: list[dict], key: str, spec: str) -> str:
    values = [c[key] for c in cards if c[key] is not None]
    if not values:
        return "absent"
    text = format(np.mean(values), spec)
    if len(values) > 1:
        text += " ± " + format((max(values) - min(values)) / 2, spec)
    return text


def plot(out: Path, data: dict[str, list[dict]]) -> list[Path]:
    """``stable_miniature.png`` (clean D_n, clean one-scale D_(1)(2), RUC area and clean AUC
    per row: bar = seed mean, whisker = seed range) and ``stable_miniature_RUC.png`` (every
    row's seed-0 RUC curve)."""
    from robustpose.reports.plots import _pyplot, _save
    from robustpose.reports.stability_plots import plot_ruc

    rows = [(row, name) for row, name, _ in ALL_ROWS if data.get(row)]
    if not rows:
        return []
    plt = _pyplot()
    panels = (("D_n", "D_n, clean crops (lower: steadier)"),
              # the paper's mixed reading (raw maps vs softmax) cannot share an axis
              ("D_12_softmax", "D_(1)(2), pixel softmax, clean (higher: steadier)"),
              ("RUC", "RUC area (higher: steadier)"), ("AUC", "clean AUC (higher: better)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8))
    x = np.arange(len(rows))
    for ax, (key, title) in zip(axes, panels):
        values = [[c[key] for c in data[row] if c[key] is not None] for row, _ in rows]
        mean = [np.mean(v) if v else np.nan for v in values]
        low = [m - min(v) if v else 0 for m, v in zip(mean, values)]
        high = [max(v) - m if v else 0 for m, v in zip(mean, values)]
        ax.bar(x, mean, yerr=[low, high], capsize=3,
               color=["#4C72B0" if row in ABLATION else "#DD8452" if row in MATCHED
                      else "#8C8C8C" for row, _ in rows])
        ax.set_xticks(x, [name for _, name in rows], rotation=45, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        if key == "D_12_softmax":
            ax.set_yscale("log")  # 2e-5 .. 5e-4 across rows
    fig.suptitle("stable-heatmap miniature (MobileNetV2, SynthPose, held-out five perturbations)",
                 fontsize=10)
    fig.tight_layout()
    paths = [_save(fig, out / "stable_miniature.png")]
    cards = []
    for row, name in rows:
        card = json.loads((out / f"{row}_s{data[row][0]['seed']}" / "stability" /
                           "stability.json").read_text())
        cards.append({**card, "model": name})
    return paths + [plot_ruc(cards, out / "stable_miniature_RUC.png")]


def build_table(out: Path) -> str:
    data = collect(out)
    lines = ["| row | seeds | " + " | ".join(HEADERS) + " | train CPU min |",
             "|---|---|" + "---|" * (len(HEADERS) + 1)]
    # the softmax D_(1)(2) of a Gaussian-trained map is ~1e-5 (a near-uniform softmax)
    specs = {"D_n": ".1f", "D_12": ".3g", "D_12_mst": ".3g", "D_12_softmax": ".2e",
             "undefined": ".3f", "D_n_pooled": ".1f", "D_12_pooled": ".3g",
             "undefined_pooled": ".3f", "R": ".2f", "RUC": ".3f", "AUC": ".3f", "EPE": ".2f",
             "AP": ".1f"}
    for row, name, _ in ALL_ROWS:
        cards = data.get(row)
        if cards:
            cells = " | ".join(_cell(cards, k, specs[k]) for k in COLUMNS)
            seeds = ",".join(str(c["seed"]) for c in cards)
            lines.append(f"| {name} | {seeds} | {cells} | {_mean(cards, 'train_cpu_min'):.1f} |")
    found = _claims(data, NAMES, COLUMNS, set(MATCHED))
    noise = {k: seed_noise(data, k) for k in ("D_n", "D_12_mst", "D_12_softmax", "RUC")}
    if found:
        lines += ["", "| claim | measured | holds? |", "|---|---|---|",
                  *(f"| {c} | {v} | {h} |" for c, v, h in found), "",
                  "Verdicts: rows with two seeds count as apart when their seed ranges do not "
                  "overlap; two one-seed rows when they differ by more than the seed noise, the "
                  "largest seed range among the two-seed rows: " + ", ".join(
                      f"{k} {format(v, specs[k])}" for k, v in noise.items() if v is not None)]
    if (out / MATCHED_FILE).is_file():
        matched = json.loads((out / MATCHED_FILE).read_text())
        lines += ["", f"Matched rows: weights for a regulariser / task gradient-norm ratio of "
                  f"{matched['target_ratio']} ({MATCHED_FILE}):", "",
                  "| row | weight | config weight | ratio at config weight |", "|---|---|---|---|",
                  *(f"| {NAMES[r]} | {v['key']} {v['weight']:.4g} | {v['config_weight']:.4g} | "
                    f"{v['config_ratio']:.3g} |" for r, v in matched["rows"].items())]
    text = "\n".join(lines) + "\n"
    (out / "stable_miniature.md").write_text(text)
    (out / "stable_miniature.json").write_text(json.dumps(
        {"runs": data, "claims": [list(c) for c in found], "seed_noise": noise}, indent=1) + "\n")
    plot(out, data)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "runs" / "stable_mini"))
    parser.add_argument("--runs", default=None, help="row:seed,... (default: every row)")
    parser.add_argument("--val-images", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="OMP/torch threads per child")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 steps each, 8 images, 2x2 cells")
    parser.add_argument("--prepare-only", action="store_true",
                        help="the validation split and the shared pre-training, no rows")
    parser.add_argument("--match-ratio", type=float, default=None, metavar="RATIO",
                        help="weights for this regulariser/task gradient ratio; adds the "
                             "<row>_m rows (" + ", ".join(MATCHED) + ")")
    parser.add_argument("--remeasure", action="store_true",
                        help="redo stability runs measured with the earlier D_n tie rule "
                             "(moved to <name>.superseded; checkpoints are kept)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    # the matched rows join the default selection once their weights exist (or are asked)
    matched_on = args.match_ratio is not None or (out / MATCHED_FILE).is_file()
    runs = parse_runs(args.runs, [(row, seeds) for row, _, seeds in ALL_ROWS]) if args.runs \
        else parse_runs(None, [(row, seeds) for row, _, seeds in (ALL_ROWS if matched_on else ROWS)])
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    if not args.table_only:
        val, init = prepare(out, 8 if args.quick else args.val_images, env, args.quick)
        if args.match_ratio is not None:
            match_ratio(out, init, args.match_ratio, env, args.quick)
        for row, seed in [] if args.prepare_only else runs:
            run_row(row, seed, out, val, init, env, args.quick, args.remeasure)
    print(build_table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
