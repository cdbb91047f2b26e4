"""``robustpose evaluate``: metrics of a predictions file against a ground-truth file."""
from __future__ import annotations

import argparse
import json
import math

from robustpose.evaluation.coco_conventions import AREA_RULES, CROWD_STAT_NAMES
from robustpose.evaluation.files import FORMATS, evaluate_file


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True,
                        help="ground truth: COCO keypoint json (coco, pck) or MPII HRNet json / gt_valid.mat (mpii)")
    parser.add_argument("--results", required=True, help="predictions json (see docs/evaluation.md)")
    parser.add_argument("--format", choices=FORMATS, default="coco",
                        help="coco: OKS AP (pycocotools); mpii: PCKh; pck: PCK/AUC/EPE (default coco)")
    parser.add_argument("--sigmas", type=_floats, default=None,
                        help="coco: OKS sigmas, one per keypoint, comma or space separated "
                             "(default: the preset --spec names, else the one the category's "
                             "keypoint names in order (and the json's info.description) pick)")
    parser.add_argument("--spec", default=None,
                        help="coco: the keypoint set's preset, whose sigmas score it: coco, "
                             "ochuman, mpii, crowdpose, rhd, onehand10k, freihand, "
                             "coco_wholebody_hand (needed where hand sets share names; docs/data.md)")
    parser.add_argument("--area-rule", choices=AREA_RULES, default=None,
                        help="coco: GT area that scales OKS: json (the json's area), bbox (w*h "
                             "of the GT box), crowdpose (0.53*w*h); default: the set's own rule")
    parser.add_argument("--threshold-test", choices=("<=", "<"), default=None,
                        help="hit test at the threshold (mpii default '<=' as HRNet; pck default '<' as mmpose)")
    parser.add_argument("--pred-offset", type=float, default=0.0,
                        help="mpii: px added to predictions before comparing (default 0: results are "
                             "in the annotation file's frame; 1.0 for 0-based predictions vs MATLAB GT)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="mpii: score only the people that have a prediction")
    parser.add_argument("--pck-thr", type=float, default=0.2, help="pck: threshold x max(box w, h) (0.2)")
    parser.add_argument("--auc-method", choices=("trapezoid", "mmpose"), default="trapezoid",
                        help="pck: AUC over 0..30 px, RHD-authors trapezoid (default) or mmpose mean")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="coco: show pycocotools' output")


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def run(args: argparse.Namespace) -> int:
    if args.format == "coco":
        opts = {"sigmas": args.sigmas, "verbose": args.verbose, "area_rule": args.area_rule,
                "spec": args.spec}
    elif args.format == "mpii":
        opts = {"threshold_test": args.threshold_test or "<=", "pred_offset": args.pred_offset,
                "allow_missing": args.allow_missing}
    else:
        opts = {"thr": args.pck_thr, "auc_method": args.auc_method,
                "threshold_test": args.threshold_test or "<"}
    stats = evaluate_file(args.annotations, args.results, args.format, **opts)
    stats = {k: _clean(v) for k, v in stats.items()}
    stats["format"] = args.format
    if args.json:
        print(json.dumps(stats))
        return 0
    main = {"coco": ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"),
            "mpii": ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "PCKh", "PCKh@0.1"),
            "pck": ("PCK", "AUC", "EPE")}[args.format]
    main += tuple(k for k in CROWD_STAT_NAMES if k in stats)  # CrowdPose's crowd-index AP
    for key in main:
        value = stats.get(key)
        print(f"{key:>10s}  {'n/a' if value is None else f'{value:.4f}'}")
    if "area_rule" in stats:  # what scaled OKS (CrowdPose's 0.53*w*h, the json's area, ...)
        print(f"{'area_rule':>10s}  {stats['area_rule']}")
    return 0
