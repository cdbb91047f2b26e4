"""Regulariser-to-task gradient-norm ratio of stability-regularised rows (ST_g, ST_a, MST,
R+H+M) at the start of fine-tuning, and the weights that would make the ratios equal.

    python experiments/stable_grad_ratio.py configs/stable/synthpose_mobilenetv2_{st_g,st_a,mst,rhm}.yaml \\
        --set model.init_from=runs/stable_mini/pretrain/best.pt --batches 3 --target 1.0

Per config: a Trainer as ``robustpose train`` builds it (no validation split, no workers),
then :func:`robustpose.training.stable_ratio.gradient_ratio` on its first ``--batches``
batches: ``|| grad (weight * R) || / || grad L_task ||`` over the model's parameters. With
``--target`` also the weight giving that ratio. ``--json`` writes every number, with the
process CPU time.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def measure(configs: list[str], overrides: list[str], batches: int,
            target: float | None) -> dict:
    """{config stem: gradient_ratio(...) (+ 'matched_weight')} for each config."""
    from robustpose.training import Trainer, load_config
    from robustpose.training.stable_ratio import gradient_ratio, matched_weight

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's output_dir: never written
        for path in configs:
            config = load_config(path, [*overrides, "val.every=0", "data.num_workers=0",
                                        f"output_dir={tmp}"])
            trainer = Trainer(config, device="cpu", progress=False)
            result = gradient_ratio(trainer, batches)
            if target is not None:
                result["matched_weight"] = matched_weight(result, target)
            rows[Path(path).stem] = result
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+", help="YAML configs of regularised rows")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--target", type=float, default=None,
                        help="also print the weight that gives this ratio")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    started = time.process_time()
    try:
        rows = measure(args.configs, args.overrides, args.batches, args.target)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"stable_grad_ratio: {exc}") from None
    cpu = time.process_time() - started
    print("| config | method | weight | mean |grad task| | mean |grad R| | ratio at weight "
          "| weight for target |\n|---|---|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        task = sum(r["task_grad"]) / r["batches"]
        reg = sum(r["reg_grad"]) / r["batches"]
        matched = r.get("matched_weight")
        print(f"| {name} | {r['method']} | {r['weight_key']} {r['weight']:.4g} | {task:.4g} | "
              f"{reg:.4g} | {r['ratio']:.3g} | {'-' if matched is None else format(matched, '.4g')} |")
    print(f"({args.batches} batches per config, {cpu:.1f} s process CPU)")
    if args.json:
        Path(args.json).write_text(json.dumps({"batches": args.batches, "target": args.target,
                                               "overrides": args.overrides, "cpu_s": cpu,
                                               "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
