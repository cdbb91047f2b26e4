"""``robustpose report RUN_DIR``: rebuild a run folder's reports, dispatched through the
run-kind registry by the kind its run.json records."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a benchmark, attack or stability run folder (holds run.json, results*.jsonl)")
    parser.add_argument("more_dirs", nargs="*", metavar="RUN_DIR",
                        help="more `robustpose stability` run folders: compared side by side")
    parser.add_argument("--out", default="runs/stability/compare",
                        help="where a comparison of several stability folders is written")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--baseline", metavar="BASELINE_RUN",
                        help="a baseline model's benchmark run folder: print mCE / relative mCE "
                             "(ImageNet-C) of RUN_DIR against it, and write RUN_DIR/mce.json")


def run(args: argparse.Namespace) -> int:
    """Each folder's recorded kind (run.json) rebuilds its reports: benchmark (summary.json,
    tables), stability (docs/stability.md; several folders compared), attack (docs/attacks.md)."""
    from robustpose.benchmarking import run_layer

    if args.baseline:  # the comparison only; the folder's reports stay as they are
        from robustpose.benchmarking.baseline import write_comparison

        write_comparison(args.run_dir, args.baseline)
        return 0
    return run_layer.report_folders([args.run_dir, *args.more_dirs], args.out,
                                    plots=not args.no_plots)
