"""``robustpose train CONFIG [key=value ...]``: train a pose model from a YAML config.

Single process: ``robustpose train configs/coco/hrnet_w32_256x192.yaml data.root=/data/coco``.
Several GPUs / processes: ``torchrun --nproc_per_node 4 -m robustpose train CONFIG ...``.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML experiment config (configs/...)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted overrides, values parsed as YAML (train.lr=5e-4 data.root=/d)")
    parser.add_argument("--resume", metavar="PATH",
                        help="continue from a checkpoint; 'auto' = <output_dir>/checkpoint.pt if present")
    parser.add_argument("--output-dir", help="where checkpoints and logs go (default runs/<name>)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")


def run(args: argparse.Namespace) -> int:
    from robustpose.training import Trainer, load_config
    from robustpose.training.distributed import init_distributed, shutdown

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    config = load_config(args.config, overrides)
    info = init_distributed(args.device)
    try:
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
        shutdown(info)
    return 0
