"""Localisation apart from scoring: per-person OKS of saved predictions, and how well the
person score ranks it (docs/models.md, "Why BlazePose heavy scores below lite").

COCO AP sorts people by their score, so two models that localise alike can part on AP when
one's score says less about its own accuracy. This reads ``predictions/clean-0.json`` of
benchmark runs made with ``--save-predictions`` (ground-truth boxes: one prediction per
annotated person), matches each annotated person (``num_keypoints > 0``, not crowd) to the
prediction of its image with the highest OKS, and prints per model: the mean per-person
OKS (score-free), the mean per-keypoint OKS term per joint, and the Pearson correlation of
the person score with the person's OKS::

    python experiments/score_calibration.py ../shared/data/coco_val_mini/annotations.json \\
        RUN_DIR [RUN_DIR ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from robustpose.utils.conventions import COCO_SIGMAS  # noqa: E402


def person_oks(annotations: dict, predictions: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(P, 17) per-keypoint OKS terms (NaN where not labelled) and (P,) matched scores."""
    by_image: dict = {}
    for pred in predictions:
        by_image.setdefault(pred["image_id"], []).append(pred)
    variances = (2.0 * np.asarray(COCO_SIGMAS)) ** 2
    terms, scores = [], []
    for ann in annotations["annotations"]:
        if ann.get("iscrowd") or not ann.get("num_keypoints"):
            continue
        gt = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        labelled = gt[:, 2] > 0
        best, best_oks = None, -1.0
        for pred in by_image.get(ann["image_id"], []):
            kp = np.asarray(pred["keypoints"], np.float64).reshape(-1, 3)
            d2 = ((kp[:, :2] - gt[:, :2]) ** 2).sum(1)
            term = np.exp(-d2 / (2.0 * ann["area"] * variances + np.spacing(1)))
            if term[labelled].mean() > best_oks:
                best, best_oks = (term, pred["score"]), term[labelled].mean()
        if best is None:
            raise SystemExit(f"image {ann['image_id']}: no prediction (was the run made with "
                             "ground-truth boxes and --save-predictions?)")
        terms.append(np.where(labelled, best[0], np.nan))
        scores.append(best[1])
    return np.asarray(terms), np.asarray(scores)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("annotations", type=Path)
    parser.add_argument("runs", type=Path, nargs="+", help="benchmark run folders")
    args = parser.parse_args(argv)
    annotations = json.loads(args.annotations.read_text())
    names = annotations["categories"][0]["keypoints"]
    rows = {}
    for run in args.runs:
        path = run / "predictions" / "clean-0.json"
        if not path.is_file():
            raise SystemExit(f"{path}: not found (run the benchmark with --save-predictions)")
        terms, scores = person_oks(annotations, json.loads(path.read_text()))
        oks = np.nanmean(terms, axis=1)
        rows[run.name] = terms
        spread = oks.std() > 0 and scores.std() > 0  # a constant has no correlation
        corr = f"{np.corrcoef(scores, oks)[0, 1]:.2f}" if spread else "undefined (constant)"
        print(f"{run.name}: {len(oks)} people, mean OKS {oks.mean():.3f}, corr(score, OKS) {corr}")
    print("| joint | " + " | ".join(rows) + " |\n|---|" + "---:|" * len(rows))
    for j, name in enumerate(names):
        print(f"| {name} | " + " | ".join(f"{np.nanmean(t[:, j]):.3f}" for t in rows.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
