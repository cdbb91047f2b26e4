"""``robustpose train CONFIG [key=value ...]``: train a pose model from a YAML config.

Single process: ``robustpose train configs/coco/hrnet_w32_256x192.yaml data.root=/data/coco``.
Several GPUs / processes: ``torchrun --nproc_per_node 4 -m robustpose train CONFIG ...``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from robustpose.commands._args import (add_device_argument, add_out_argument,
                                      add_progress_argument)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML experiment config (configs/...)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted overrides, values parsed as YAML (train.lr=5e-4 data.root=/d)")
    parser.add_argument("--resume", metavar="PATH",
                        help="continue from a checkpoint; 'auto' = <output_dir>/checkpoint.pt if present")
    add_out_argument(parser, help="where checkpoints and logs go (default: the config's "
                     "output_dir, else runs/<name>)", old=("--output-dir",))
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in an output folder that holds an earlier run "
                             "(its checkpoint, best.pt, log and config are removed first)")
    add_device_argument(parser)
    add_progress_argument(parser, help="no tqdm progress bars", old=())


def run(args: argparse.Namespace) -> int:
    from robustpose.training import Trainer, load_config
    from robustpose.training.distributed import init_distributed, shutdown

    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"output_dir={args.out}")
    config = load_config(args.config, overrides)
    _check_device(args.device)
    info = init_distributed(args.device)
    folder = None
    try:
        if info.is_main:  # one writer per output folder; checked before any data is built
            from robustpose.training.output_folder import claim_output_dir

            folder = claim_output_dir(config["output_dir"] or Path("runs") / config["name"],
                                      resume=args.resume, overwrite=args.overwrite)
        trainer = Trainer(config, dist_info=info, progress=not args.no_progress)
        if args.resume:
            path = Path(args.resume)
            if args.resume == "auto":
                path = trainer.output_dir / "checkpoint.pt"
            if path.is_file():
                trainer.resume(path)
                if info.is_main:
                    print(f"resumed from {path} at epoch {trainer.start_epoch}")
            elif args.resume != "auto":
                raise FileNotFoundError(f"{path}: --resume checkpoint not found")
        history = trainer.fit()
        if info.is_main:
            last = history[-1] if history else {}
            print(f"done: {trainer.output_dir} (epochs {trainer.start_epoch}->{config['train']['epochs']}, "
                  f"best {trainer.best_metric} at epoch {trainer.best_epoch}, last {last})")
    finally:
        if folder is not None:
            folder.close()
        shutdown(info)
    return 0


def _check_device(device: str | None) -> None:
    """``--device``: cpu, cuda, cuda:N or auto (a one-line error before any work)."""
    import re

    if device is not None and not re.fullmatch(r"cpu|auto|cuda(:\d+)?", str(device)):
        raise ValueError(f"--device {device}: use cpu, cuda, cuda:N or auto")
