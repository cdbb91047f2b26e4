"""``robustpose test CONFIG --checkpoint PATH [key=value ...]``: validation metrics of a
trained (or official) checkpoint on the config's val split; also under torchrun."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML experiment config the model was trained with")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    parser.add_argument("--checkpoint", required=True,
                        help="robustpose, official HRNet/SBL or mmpose checkpoint (weights_only)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--output", help="write the metrics as JSON here")
    parser.add_argument("--predictions", help="write the keypoint predictions (COCO results json)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")


def run(args: argparse.Namespace) -> int:
    from robustpose.training import load_config
    from robustpose.training.evaluate import evaluate_checkpoint
    from robustpose.utils.io import atomic_write_text

    config = load_config(args.config, args.overrides)
    stats, metric = evaluate_checkpoint(config, args.checkpoint, device=args.device,
                                        progress=not args.no_progress)
    if stats is None:  # not rank 0
        return 0
    width = max(len(k) for k in stats) if stats else 0
    for key, value in stats.items():
        print(f"{key:<{width}}  {value:.4f}")
    if args.output:
        atomic_write_text(args.output, json.dumps(stats, indent=2) + "\n")
    if args.predictions:
        if not hasattr(metric, "write_predictions"):
            raise ValueError(f"{args.predictions}: this metric cannot write predictions")
        metric.write_predictions(args.predictions)
    return 0
