"""``robustpose test CONFIG --checkpoint PATH [key=value ...]``: validation metrics of a
trained (or official) checkpoint on the config's val split; also under torchrun."""
from __future__ import annotations

import argparse
import json

from robustpose.commands._args import (add_device_argument, add_out_argument,
                                      add_progress_argument)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML experiment config the model was trained with")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    parser.add_argument("--checkpoint", required=True,
                        help="robustpose, official HRNet/SBL or mmpose checkpoint (weights_only)")
    add_device_argument(parser)
    add_out_argument(parser, help="write the metrics as JSON here", old=("--output",))
    parser.add_argument("--predictions", help="write the keypoint predictions (COCO results json)")
    add_progress_argument(parser, help="no tqdm progress bars", old=())


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
    if args.out:
        atomic_write_text(args.out, json.dumps(stats, indent=2) + "\n")
    if args.predictions:
        if not hasattr(metric, "write_predictions"):
            raise ValueError(f"{args.predictions}: this metric cannot write predictions")
        metric.write_predictions(args.predictions)
    return 0
