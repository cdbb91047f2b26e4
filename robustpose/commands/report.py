"""``robustpose report RUN_DIR``: rebuild summary.json, tables and plots from the store."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a benchmark run folder (holds run.json, results*.jsonl)")
    parser.add_argument("--no-plots", action="store_true")


def run(args: argparse.Namespace) -> int:
    from robustpose.benchmarking import finalize_run
    from robustpose.benchmarking.summary import format_table

    card = finalize_run(args.run_dir, plots=not args.no_plots)
    print(format_table(card))
    print(f"rebuilt: {args.run_dir}/summary.json, table.md, table.csv"
          + ("" if args.no_plots else ", per_corruption.png, per_severity.png, heatmap.png"))
    return 0
