"""``robustpose report RUN_DIR``: rebuild summary.json, tables and plots from the store."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a benchmark, attack or stability run folder (holds run.json, results*.jsonl)")
    parser.add_argument("more_dirs", nargs="*", metavar="RUN_DIR",
                        help="more `robustpose stability` run folders: compared side by side")
    parser.add_argument("--out", default="runs/stability/compare",
                        help="where a comparison of several stability folders is written")
    parser.add_argument("--no-plots", action="store_true")


def run(args: argparse.Namespace) -> int:
    from robustpose.benchmarking import finalize_run
    from robustpose.benchmarking.summary import format_table

    if args.more_dirs or _stability(args.run_dir):  # stability folders (docs/stability.md)
        from robustpose.benchmarking.stability_card import report_stability_folders

        return report_stability_folders([args.run_dir, *args.more_dirs], args.out,
                                        plots=not args.no_plots)
    from robustpose.benchmarking.attack_card import is_attack_folder, write_attack_reports

    if is_attack_folder(args.run_dir):  # `robustpose attack` folders (docs/attacks.md)
        from robustpose.benchmarking import RunFolder

        write_attack_reports(RunFolder(args.run_dir), plots=not args.no_plots)
        print(f"rebuilt: {args.run_dir}/attack.json, attack.md"
              + ("" if args.no_plots else " and the attack plots"))
        return 0
    card = finalize_run(args.run_dir, plots=not args.no_plots)
    print(format_table(card))
    print(f"rebuilt: {args.run_dir}/summary.json, table.md, table.csv"
          + ("" if args.no_plots else ", per_corruption.png, per_severity.png, heatmap.png"))
    return 0


def _stability(run_dir: str) -> bool:
    from robustpose.benchmarking.stability_card import is_stability_folder

    return is_stability_folder(run_dir)
