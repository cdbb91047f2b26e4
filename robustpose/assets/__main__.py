"""``python -m robustpose.assets WEIGHTS CONFIG``: pack trained weights as the bundled model.

Writes robustpose/assets/models/<BUNDLED_NAME> (fp16 weights + meta), then scores the
packed file on the config's val split (``robustpose test``'s evaluation) and records that
AP in its meta.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustpose.assets", description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="trained weights, e.g. runs/synthpose_shufflenetv2/best.pt")
    parser.add_argument("config", help="the training config (configs/synthpose_shufflenetv2.yaml)")
    parser.add_argument("--out", help="output file (default: the bundled checkpoint path)")
    parser.add_argument("--no-eval", action="store_true", help="skip scoring on the val split")
    args = parser.parse_args(argv)

    from robustpose.assets import export_bundled

    path = export_bundled(args.weights, args.config, args.out)
    if not args.no_eval:
        from robustpose.config import load_config
        from robustpose.training.evaluate import evaluate_checkpoint

        stats, _metric = evaluate_checkpoint(load_config(args.config), str(path), device="cpu")
        ap = float(stats["AP"])
        export_bundled(args.weights, args.config, args.out, val_ap=ap)
        print(f"val AP of the packed fp16 model: {100 * ap:.1f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
