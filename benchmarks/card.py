"""CPU time of one ``robustpose card`` against its three faces run as separate commands.

Both sides run as child processes with OMP_NUM_THREADS=1 (their CPU time: user + system
of the children, from ``resource.getrusage``), on the same model, data and grid: the
card's ``--budget`` and the ``benchmark`` / ``attack`` / ``stability`` commands given that
budget's grid (benchmarking.card_run.BUDGETS; the benchmark with the box perturbations). Prints one line per side and the ratio
card / separate (the issue's target: <= 0.9).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/card.py [--budget quick] [--max-images 16]
        [-- MODEL ARGS, e.g. --onnx FILE --onnx-spec blazepose --dataset coco-format ...]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def child_cpu(command: list[str]) -> float:
    """Run ``command``; its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    from robustpose.benchmarking.card_run import BUDGETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="quick", choices=tuple(BUDGETS))
    parser.add_argument("--max-images", type=int, help="default: the budget's")
    parser.add_argument("--attack", default="igsm", choices=("igsm", "spsa"),
                        help="the attack the card will choose for this model")
    parser.add_argument("model_args", nargs="*", help="after --: model and data flags")
    args = parser.parse_args()
    plan = BUDGETS[args.budget]
    images = args.max_images if args.max_images is not None else plan.max_images
    common = [*args.model_args, "--no-progress", "--no-plots"]
    common += [] if images is None else ["--max-images", str(images)]
    loader = ["--workers", "0"]  # the attack command reads crops in-process anyway
    tool = [sys.executable, "-m", "robustpose"]
    steps = plan.steps if args.attack == "igsm" else plan.spsa_steps
    # the card's benchmark face runs the box perturbations beside the 15 (card_run)
    grid = f"{plan.corruptions},{plan.box}" if plan.box else plan.corruptions
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        card = child_cpu([*tool, "card", *common, *loader, "--budget", args.budget,
                          "--out", str(root / "card")])
        faces = {
            "benchmark": [*tool, "benchmark", *common, *loader, "--corruptions", grid,
                          "--severities", plan.severities, "--out", str(root / "b")],
            "attack": [*tool, "attack", args.attack, *common, "--eps", plan.eps, "--steps", str(steps), "--spsa-samples",
                       str(plan.spsa_samples), "--out", str(root / "a")],
            "stability": [*tool, "stability", *common, *loader, "--perturbations", plan.perturbations,
                          "--severities", plan.stability_severities, "--out", str(root / "s")],
        }
        separate = {face: child_cpu(command) for face, command in faces.items()}
    total = sum(separate.values())
    print(f"card ({args.budget}, {images or 'all'} images): {card:.1f} CPU s")
    print("separate commands: " + ", ".join(f"{k} {v:.1f}" for k, v in separate.items())
          + f" = {total:.1f} CPU s")
    print(f"card / separate = {card / total:.2f} (target <= 0.9)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
