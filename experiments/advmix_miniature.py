"""The AdvMix miniature reproduction (issue 12): fine-tune the bundled SynthPose model with
``standard``, ``advmix`` and the ablations, benchmark each (clean + 15 x 5) on a SynthPose
validation split larger than the demo's, and tabulate AP*, mPC, rPC with the seed spread.

    python experiments/advmix_miniature.py                       # every run, then the table
    python experiments/advmix_miniature.py --runs standard:0,advmix:0
    python experiments/advmix_miniature.py --table-only          # rebuild the table
    python experiments/advmix_miniature.py --quick --out /tmp/q  # the CI-sized version

Each run is ``robustpose train configs/advmix/synthpose_<method>.yaml seed=<s>`` into
``OUT/<method>_s<s>`` (resumed from its checkpoint.pt when interrupted; validation only at
the last epoch, so ``best.pt`` is the final weights and no checkpoint is picked on images
the benchmark scores), then ``robustpose benchmark`` of that ``best.pt`` into
``OUT/<method>_s<s>/bench`` (resumable per cell) on a pre-corrupted copy of the validation
split (``OUT/val``, ``OUT/val_C``, written once; the same pixels as on-the-fly corruption).
The CPU time of each step (training, benchmark: user + sys of the child processes) goes to
``OUT/<run>/cpu.json``; the table to ``OUT/advmix_miniature.{md,json}``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from robustpose.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs_common import add_cpu, parse_runs, run as _run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "advmix"
#: (method, seeds): two seeds where the issue asks (standard, advmix), one for the ablations
RUNS = [("standard", (0, 1)), ("advmix", (0, 1)), ("advmix_reversal", (0,)),
        ("equalmix", (0, 1)), ("dirichletmix", (0, 1)), ("sequentialmix", (0,)),
        ("advmix_image", (0,)), ("advmix_wo_kd", (0,)), ("kd_only", (0,)),
        ("gridmask", (0,)), ("autoaugment", (0,)), ("transfer", (0,)),
        # issue 23: the official code's semantics (lr 1e-3 both, KD on the mix, SmoothL1, official
        # policy and U-Net), at the miniature's 600 steps and at 4x the steps
        ("advmix_official", (0, 1)), ("equalmix_official", (0, 1)),
        ("advmix_official_4x", (0,)), ("equalmix_official_4x", (0,))]
ROW_NAMES = {"standard": "Standard (fine-tune)", "advmix": "AdvMix", "advmix_reversal": "AdvMix, reversal updates",
             "equalmix": "EqualMix", "dirichletmix": "DirichletMix", "sequentialmix": "SequentialMix",
             "advmix_image": "AdvMix-Image", "advmix_wo_kd": "AdvMix w/o KD", "kd_only": "KD only",
             "gridmask": "GridMask only", "autoaugment": "AutoAugment only", "transfer": "Transfer (test-time corruptions)",
             "advmix_official": "AdvMix, official semantics", "equalmix_official": "EqualMix, official semantics",
             "advmix_official_4x": "AdvMix, official semantics, 4x steps",
             "equalmix_official_4x": "EqualMix, official semantics, 4x steps"}
QUICK_TRAIN = ["train.epochs=1", "train.max_iters_per_epoch=2", "train.batch_size=4",
               "data.train.num_images=16", "val.every=1", "val.batch_size=8"]
QUICK_BENCH = ["--corruptions", "gaussian_noise,defocus_blur", "--severities", "1,3"]


def prepare_validation(out: Path, num_images: int, env: dict, quick: bool) -> tuple[Path, Path]:
    """The validation split and its corrupted copy, written once."""
    val, val_c = out / "val", out / "val_C"
    bin_dir = Path(sys.executable).parent
    if not (val / "annotations.json").is_file():
        _run([str(bin_dir / "robustpose"), "synth", str(val), "--split", "val",
              "--num-images", str(num_images), "--no-progress"], env)
    if not (val_c / "corrupt_summary.json").is_file():
        extra = ["--corruptions", QUICK_BENCH[1], "--severities", QUICK_BENCH[3]] if quick else []
        _run([str(bin_dir / "robustpose"), "corrupt", str(val / "images"), str(val_c),
              "--annotations", str(val / "annotations.json"), "--no-progress", *extra], env)
    return val, val_c


def run_one(method: str, seed: int, out: Path, val: Path, val_c: Path, env: dict,
            quick: bool) -> None:
    """Train (or resume) and benchmark one (method, seed); skip what is already done."""
    bin_dir = Path(sys.executable).parent
    config = CONFIGS / f"synthpose_{method}.yaml"
    run_dir = out / f"{method}_s{seed}"
    if not (run_dir / "train_done").is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        # validation once, after the last epoch: best.pt is then the final weights, never
        # picked on the validation images the benchmark scores
        epochs = int(load_config(config)["train"]["epochs"])
        overrides = [f"seed={seed}"] + (QUICK_TRAIN if quick else [f"val.every={epochs}"])
        add_cpu(run_dir, "train_s", _run(
            [str(bin_dir / "robustpose"), "train", str(config), *overrides, "--device", "cpu",
             "--out", str(run_dir), "--resume", "auto", "--no-progress"], env))
        (run_dir / "train_done").write_text("")
    if not (run_dir / "bench" / "summary.json").is_file():
        add_cpu(run_dir, "bench_s", _run(
            [str(bin_dir / "robustpose"), "benchmark", "--config", str(config),
             "--checkpoint", str(run_dir / "best.pt"), "--dataset", "synth",
             "--data-root", str(val), "--corrupted-root", str(val_c),
             "--out", str(run_dir / "bench"), "--workers", "0", "--no-progress", "--no-plots",
             *(QUICK_BENCH if quick else [])], env))


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    return f" ± {(max(values) - min(values)) / 2:.1f}"


def _previous_runs(previous: Path | None) -> dict[str, list[dict]]:
    """Per-seed cards of an earlier table's JSON (``advmix_miniature.json``): runs measured
    in an earlier session whose folders are gone. The runs are deterministic per (config,
    seed), so a stored card stands for its run until the config changes."""
    if previous is None:
        return {}
    if not previous.is_file():
        raise SystemExit(f"{previous}: no such results file (--previous)")
    runs = json.loads(previous.read_text()).get("runs", {})
    return {m: [c for c in cards if c.get("seed") is not None or m == "bundled"]
            for m, cards in runs.items()}


def _comparisons(data: dict[str, list[dict]]) -> list[str]:
    """AdvMix against the fixed mixes, per protocol: the mPC difference of the seed means
    and whether the seed ranges are apart (a rough yardstick with two seeds, not a test)."""
    pairs = [("advmix", m) for m in ("equalmix", "dirichletmix", "sequentialmix")] + [
        ("advmix_official", "equalmix_official"), ("advmix_official_4x", "equalmix_official_4x")]
    lines = []
    for a, b in pairs:
        if not data.get(a) or not data.get(b):
            continue
        va, vb = [c["mPC"] for c in data[a]], [c["mPC"] for c in data[b]]
        d = float(np.mean(va) - np.mean(vb))
        if len(va) == len(vb) == 1:  # two points are always "apart": no range to read
            spread = "one seed each, compare with the seed noise"
        else:
            apart = min(va) > max(vb) or max(va) < min(vb)
            spread = f"ranges {'apart' if apart else 'overlap'}"
        lines.append(f"- {ROW_NAMES[a]} vs {ROW_NAMES[b]}: mPC {np.mean(va):.1f} vs {np.mean(vb):.1f} "
                     f"(Δ {d:+.1f}; seeds {len(va)} / {len(vb)}; {spread})")
    return lines


def build_table(out: Path, reference: Path | None = None, previous: Path | None = None) -> str:
    """The markdown table from every finished run under ``out`` (mean ± half-range over
    seeds), plus the noise verdicts; also written as ``advmix_miniature.{md,json}``.
    ``previous``: an earlier ``advmix_miniature.json`` whose runs fill in (method, seed)
    pairs that have no folder under ``out``."""
    rows, data = [], {}
    earlier = _previous_runs(previous)
    for method, _ in RUNS:
        cards = []
        for run_dir in sorted(out.glob(f"{method}_s*")):
            summary = run_dir / "bench" / "summary.json"
            if summary.is_file():
                card = json.loads(summary.read_text())
                cpu_file = run_dir / "cpu.json"
                cpu = json.loads(cpu_file.read_text()) if cpu_file.is_file() else {}
                cards.append({"seed": int(run_dir.name.rsplit("_s", 1)[1]), "AP": card["clean"],
                              "mPC": card["mPC"], "rPC": card["rPC"],
                              "train_cpu_min": round(cpu.get("train_s", 0) / 60, 1),
                              "bench_cpu_min": round(cpu.get("bench_s", 0) / 60, 1)})
        seeds = {c["seed"] for c in cards}
        cards += [dict(c, source="previous") for c in earlier.get(method, []) if c["seed"] not in seeds]
        cards.sort(key=lambda c: c["seed"])
        if cards:
            data[method] = cards
    if earlier.get("bundled"):
        data["bundled"] = [dict(c, source="previous") for c in earlier["bundled"]]
    if reference is not None and (reference / "summary.json").is_file():
        card = json.loads((reference / "summary.json").read_text())
        data["bundled"] = [{"seed": None, "AP": card["clean"], "mPC": card["mPC"], "rPC": card["rPC"],
                            "train_cpu_min": 0.0, "bench_cpu_min": None}]
    base = data.get("standard")
    noise = {k: (max(c[k] for c in base) - min(c[k] for c in base)) if base and len(base) > 1 else None
             for k in ("AP", "mPC", "rPC")}
    header = ("| row | seeds | AP* | mPC | rPC | Δ mPC vs standard | exceeds seed noise? | "
              "train CPU min / seed |\n|---|---|---|---|---|---|---|---|")
    for method in ["bundled"] + [m for m, _ in RUNS]:
        cards = data.get(method)
        if not cards:
            continue
        mean = {k: float(np.mean([c[k] for c in cards])) for k in ("AP", "mPC", "rPC")}
        cell = {k: f"{mean[k]:.1f}{_spread([c[k] for c in cards])}" for k in ("AP", "mPC", "rPC")}
        delta, verdict = "", ""
        if base and method not in ("standard", "bundled"):
            d = mean["mPC"] - float(np.mean([c["mPC"] for c in base]))
            delta = f"{d:+.1f}"
            if noise["mPC"] is not None:
                verdict = "yes" if abs(d) > noise["mPC"] else "no"
        name = "Bundled model (start of every run)" if method == "bundled" else ROW_NAMES[method]
        seeds = ",".join(f"{c['seed']}{'*' if c.get('source') == 'previous' else ''}"
                         for c in cards) if method != "bundled" else "-"
        train = f"{np.mean([c['train_cpu_min'] for c in cards]):.1f}"
        rows.append(f"| {name} | {seeds} | {cell['AP']} | {cell['mPC']} | {cell['rPC']} | {delta} | "
                    f"{verdict} | {train} |")
    noise_line = ("seed noise (standard, |s0 - s1|): " + ", ".join(
        f"{k} {v:.1f}" for k, v in noise.items() if v is not None)) if base and len(base) > 1 else \
        "seed noise: not measured (one standard seed)"
    spreads = [f"{ROW_NAMES[m]} {max(c['mPC'] for c in v) - min(c['mPC'] for c in v):.1f}"
               for m, v in data.items() if m != "bundled" and len(v) > 1]
    spread_line = ("mPC seed range (|s0 - s1|) per row: " + ", ".join(spreads)) if spreads else ""
    footnote = ("\\* measured in an earlier session: the stored card of the same config and seed "
                "(`--previous`)"
                if any(c.get("source") == "previous" for v in data.values() for c in v) else "")
    text = "\n".join([header, *rows, "", noise_line, spread_line, footnote, "",
                      *_comparisons(data), ""])
    (out / "advmix_miniature.md").write_text(text)
    (out / "advmix_miniature.json").write_text(json.dumps({"runs": data, "noise": noise}, indent=1) + "\n")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "runs" / "advmix_mini"))
    parser.add_argument("--runs", default=None, help="method:seed,... (default: every run)")
    parser.add_argument("--val-images", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="OMP/torch threads per child (default 1)")
    parser.add_argument("--reference", default=None,
                        help="benchmark run folder of the bundled model on the same split (a table row)")
    parser.add_argument("--previous", default=None,
                        help="an earlier advmix_miniature.json: its (method, seed) cards fill in the table "
                             "where no folder exists, and are not run again unless --runs names them")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 training steps, 8 images, 2x2 cells")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    runs = parse_runs(args.runs, RUNS)
    if args.previous and not args.runs:  # the stored cards stand for their runs
        stored = _previous_runs(Path(args.previous))
        runs = [(m, s) for m, s in runs if s not in {c["seed"] for c in stored.get(m, [])}]
    if not args.table_only:
        val, val_c = prepare_validation(out, 8 if args.quick else args.val_images, env, args.quick)
        for method, seed in runs:
            run_one(method, seed, out, val, val_c, env, args.quick)
    print(build_table(out, Path(args.reference) if args.reference else None,
                      Path(args.previous) if args.previous else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
