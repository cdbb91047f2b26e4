"""``robustpose benchmark``: AP*/PCKh*, mPC, rPC, tables and plots in one resumable run.

With no arguments: the bundled model on the SynthPose validation split, clean + the 15
benchmark corruptions x 5 severities (what ``make demo`` runs).
"""
from __future__ import annotations

import argparse

from robustpose.commands._args import (add_data_arguments, add_model_arguments,
                                      add_out_argument, add_progress_argument, add_run_arguments)
from robustpose.evaluation.coco_conventions import AREA_RULES
from robustpose.evaluation.oks_nms import NMS_MODES, SCORE_MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = add_model_arguments(parser)
    model.add_argument("--extra", help="for --model: the official MODEL.EXTRA block as YAML/JSON "
                       "text, or an official experiment YAML (its MODEL.EXTRA, IMAGE_SIZE, "
                       "NUM_JOINTS are used)")
    add_data_arguments(parser)
    run = parser.add_argument_group("run")
    run.add_argument("--corruptions", default="benchmark",
                     help="benchmark (15), all (19), validation (4), a family, or names a,b,c")
    run.add_argument("--severities", default="1-5", help="e.g. 1-5, 3 or 1,3,5")
    run.add_argument("--flip-test", dest="flip_test", action="store_true", default=None,
                     help="average with the flipped crop (default: the model's convention)")
    run.add_argument("--no-flip-test", dest="flip_test", action="store_false")
    metric = parser.add_argument_group(
        "OKS AP metric (mmpose CocoMetric names; defaults: HRNet's protocol; not for mpii)")
    metric.add_argument("--score-mode", choices=SCORE_MODES,
                        help="person score COCOeval ranks by: bbox_keypoint (default: box score "
                        "x mean of the keypoint scores > --keypoint-score-thr), keypoint (plain "
                        "mean of the keypoint scores) or bbox (box score only)")
    metric.add_argument("--nms-mode", choices=NMS_MODES,
                        help="oks_nms (default: greedy OKS-NMS per image) or none")
    metric.add_argument("--keypoint-score-thr", type=float,
                        help="threshold of the bbox_keypoint mean (default 0.2)")
    metric.add_argument("--nms-thr", type=float,
                        help="OKS-NMS drops a person with OKS > this to a better one (default 0.9)")
    metric.add_argument("--area-rule", choices=AREA_RULES,
                        help="GT area that scales OKS: json (the json's area), bbox (w*h of the "
                        "GT box), crowdpose (0.53*w*h; default for --dataset crowdpose and "
                        "CrowdPose's keypoints); default: the set's own rule")
    add_run_arguments(run, batch_size=32, shard=True)
    add_out_argument(run, help="run folder (default runs/benchmark/<model>__<dataset>)")
    run.add_argument("--save-predictions", action="store_true",
                     help="write the COCO results json of every cell")
    run.add_argument("--no-plots", action="store_true")
    run.add_argument("--baseline", metavar="BASELINE_RUN",
                     help="a baseline model's benchmark run folder: when the run completes, "
                          "print mCE / relative mCE against it and write OUT/mce.json "
                          "(as robustpose report OUT --baseline BASELINE_RUN)")
    add_progress_argument(run, help="no progress bars (drawn only when stderr is a terminal) "
                          "and no start line (the line per finished cell is printed either way)")


def run(args: argparse.Namespace) -> int:
    from robustpose.benchmarking import parse_shard, run_benchmark
    from robustpose.commands._args import (CommandError, check_model_arguments,
                                          check_run_arguments, data_options, resolve_device)

    check_run_arguments(args)
    check_model_arguments(args)
    if args.baseline:  # a wrong folder is refused before the run, not after it
        from robustpose.benchmarking.baseline import check_baseline_folder

        check_baseline_folder(args.baseline)
    data = data_options(args, run_benchmark, "benchmark")
    try:
        card = run_benchmark(args.model, checkpoint=args.checkpoint, config=args.config,
                             onnx=args.onnx, onnx_spec=args.onnx_spec, **data,
                             corruptions=args.corruptions, severities=args.severities,
                             flip_test=args.flip_test, score_mode=args.score_mode,
                             nms_mode=args.nms_mode,
                             keypoint_score_thr=args.keypoint_score_thr, nms_thr=args.nms_thr,
                             area_rule=args.area_rule,
                             batch_size=args.batch_size,
                             workers=args.workers, device=resolve_device(args.device),
                             seed=args.seed,
                             out=args.out, shard=parse_shard(args.shard),
                             save_predictions=args.save_predictions,
                             input_size=args.input_size,
                             extra=args.extra,
                             plots=not args.no_plots, progress=not args.no_progress,
                             print_table=True)
    except ImportError as exc:  # the onnx extra missing: one line naming it
        raise CommandError(str(exc)) from None
    if not card.pop("printed", True):  # another torchrun rank reports
        return 0
    print(f"results: {card['run_dir']} (summary.json, table.md, table.csv"
          + (", plots)" if not card.get("incomplete") else ")"))
    if args.baseline:
        if card.get("incomplete"):  # a shard: the comparison needs every cell
            print(f"mCE: skipped, the run is incomplete (robustpose report {card['run_dir']} "
                  f"--baseline {args.baseline} once every cell is in)")
        else:
            from robustpose.benchmarking.baseline import write_comparison

            write_comparison(card["run_dir"], args.baseline)
    return 0
