"""``robustpose benchmark``: AP*/PCKh*, mPC, rPC, tables and plots in one resumable run.

With no arguments: the bundled model on the SynthPose validation split, clean + the 15
benchmark corruptions x 5 severities (what ``make demo`` runs).
"""
from __future__ import annotations

import argparse

from robustpose.benchmarking.sources import DATASETS
from robustpose.commands import add_model_arguments
from robustpose.evaluation.oks_nms import NMS_MODES, SCORE_MODES



def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = add_model_arguments(parser)
    model.add_argument("--extra", help="for --model: the official MODEL.EXTRA block as YAML/JSON "
                       "text, or an official experiment YAML (its MODEL.EXTRA, IMAGE_SIZE, "
                       "NUM_JOINTS are used)")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="synth", choices=DATASETS)
    data.add_argument("--data-root", help="dataset root folder")
    data.add_argument("--annotations", help="annotation file (overrides the dataset's default)")
    data.add_argument("--detections", help="person boxes, COCO results json (default: GT boxes)")
    data.add_argument("--corrupted-root", help="read pre-generated -C folders "
                      "(ROOT/<corruption>/<severity>/...) instead of corrupting on the fly")
    data.add_argument("--corrupted-layout", default="robustpose", choices=("robustpose", "advmix"),
                      help="-C folder layout: robustpose (ROOT/name/1..5/rel path) or advmix "
                      "(ROOT/name/0..4/file name)")
    data.add_argument("--max-images", type=int, help="only the first N images (smoke runs)")
    data.add_argument("--spec", help="keypoint preset of a COCO-format set (e.g. rhd, "
                      "onehand10k; default: picked from the json's keypoint names, docs/data.md)")
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
    metric.add_argument("--area-rule", choices=("json", "bbox", "crowdpose"),
                        help="GT area that scales OKS: json (the json's area), bbox (w*h of the "
                        "GT box), crowdpose (0.53*w*h; default for --dataset crowdpose and "
                        "CrowdPose's keypoints); default: the set's own rule")
    run.add_argument("--batch-size", type=int, default=32)
    run.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    run.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", help="run folder (default runs/benchmark/<model>__<dataset>)")
    run.add_argument("--shard", help="i/n: evaluate every n-th cell from the i-th (0-based); "
                     "torchrun's RANK/WORLD_SIZE are used when set")
    run.add_argument("--save-predictions", action="store_true",
                     help="write the COCO results json of every cell")
    run.add_argument("--no-plots", action="store_true")
    run.add_argument("--quiet", action="store_true",
                     help="no progress bars (drawn only when stderr is a terminal; the line "
                     "per finished cell is printed either way)")


def run(args: argparse.Namespace) -> int:
    from robustpose.benchmarking import parse_shard, run_benchmark
    from robustpose.commands import CommandError, check_model_arguments

    if args.batch_size < 1 or args.workers < 0:
        raise CommandError("--batch-size must be >= 1 and --workers >= 0")
    check_model_arguments(args)
    try:
        card = run_benchmark(args.model, checkpoint=args.checkpoint, config=args.config,
                             onnx=args.onnx, onnx_spec=args.onnx_spec, dataset=args.dataset,
                             data_root=args.data_root, annotations=args.annotations,
                             detections=args.detections, corrupted_root=args.corrupted_root,
                             corrupted_layout=args.corrupted_layout,
                             corruptions=args.corruptions, severities=args.severities,
                             flip_test=args.flip_test, score_mode=args.score_mode,
                             nms_mode=args.nms_mode,
                             keypoint_score_thr=args.keypoint_score_thr, nms_thr=args.nms_thr,
                             area_rule=args.area_rule,
                             batch_size=args.batch_size,
                             workers=args.workers, device=args.device, seed=args.seed,
                             out=args.out, shard=parse_shard(args.shard),
                             save_predictions=args.save_predictions,
                             max_images=args.max_images, spec=args.spec, input_size=args.input_size,
                             extra=args.extra,
                             plots=not args.no_plots, progress=not args.quiet,
                             print_table=True)
    except ImportError as exc:  # the onnx extra missing: one line naming it
        raise CommandError(str(exc)) from None
    if not card.pop("printed", True):  # another torchrun rank reports
        return 0
    print(f"results: {card['run_dir']} (summary.json, table.md, table.csv"
          + (", plots)" if not card.get("incomplete") else ")"))
    return 0
