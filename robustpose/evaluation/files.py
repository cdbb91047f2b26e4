"""Score a predictions file against a ground-truth file (``robustpose evaluate``).

Formats:

- ``coco``: COCO keypoint results list ``[{image_id, category_id?, keypoints: [x, y, s]*K,
  score}]`` -> pycocotools COCOeval as is (no rescoring / NMS: the file is taken as final);
  the GT area by the set's rule (``area_rule``), AP(E/M/H) when images carry ``crowdIndex``.
- ``mpii``: a JSON list, one entry per person of the MPII annotation file, either
  HRNet-style ``{image, center, scale, joints: 16 x 2|3}`` or COCO-style
  ``{keypoints: [x, y, s]*16}``. An entry's person is its ``index`` field (position in the
  annotation list) or else its position in the results list; an ``image`` field, when
  present, must name that person's image. Coordinates are in the annotation file's frame
  (MATLAB 1-based for the HRNet json) unless ``pred_offset`` says otherwise.
- ``pck``: COCO-style list ``[{image_id, keypoints, bbox? | ann_id?}]`` against a COCO-format
  file (e.g. RHD); each entry is matched by ``ann_id``, else the only annotated instance of
  the image, else the highest box IoU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from robustpose.evaluation.coco import check_coco_results, evaluate_coco_results, load_coco_ground_truth
from robustpose.evaluation.pck import load_pck_ground_truth, match_instances, pck_auc_epe
from robustpose.evaluation.pckh import load_mpii_ground_truth, pckh_table
from robustpose.evaluation.results_io import as_list_of_dicts, finite_numbers, read_json

FORMATS = ("coco", "mpii", "pck")


def _spec_sigmas(annotations: str | Path, spec: str, sigmas: Sequence[float] | None) -> Any:
    """Sigmas of preset ``spec`` for the file's keypoint category (the loader's
    :func:`~robustpose.data.spec_for_annotations`: counts must agree; ``sigmas`` win)."""
    from robustpose.data import spec_for_annotations

    data = read_json(annotations, "annotation file")
    cats = [c for c in data.get("categories") or [] if isinstance(c, dict) and c.get("keypoints")] \
        if isinstance(data, dict) else []
    if not cats:  # not a keypoint file: the ground-truth loader says what is wrong
        return sigmas
    # the category the ground truth scores (the first with keypoints)
    return spec_for_annotations(data, spec, sigmas, str(annotations), category=cats[0]).sigmas


def evaluate_coco_file(annotations: str | Path, results: str | Path,
                       sigmas: Sequence[float] | None = None, verbose: bool = False,
                       area_rule: str | None = None, spec: str | None = None) -> dict[str, Any]:
    """OKS AP of a results file as is; ``area_rule`` as in :class:`CocoKeypointMetric`
    (the rule used is returned as ``area_rule``). Sigmas: ``sigmas``, else preset ``spec``
    (``--spec``), else the preset :func:`robustpose.data.resolve_spec` picks for the
    category, the rule the loader and the benchmark use."""
    if spec is not None:
        sigmas = _spec_sigmas(annotations, spec, sigmas)
    gt = load_coco_ground_truth(annotations, sigmas, area_rule)
    preds = check_coco_results(read_json(results, "results file"), gt, results)
    out: dict[str, Any] = evaluate_coco_results(gt, preds, verbose=verbose)
    out["num_predictions"] = len(preds)
    out["area_rule"] = gt.area_rule
    return out


def read_mpii_results(results: str | Path, gt: dict[str, Any], pred_offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(index (M,), joints (M, 16, 2)) of an MPII results file, checked against ``gt``."""
    entries = as_list_of_dicts(read_json(results, "results file"), results)
    n = len(gt["head_size"])
    index, joints = [], []
    for i, entry in enumerate(entries):
        person = entry.get("index", i)
        if isinstance(person, bool) or not isinstance(person, int) or not 0 <= person < n:
            raise ValueError(f"{results}: entry {i}: person index {person!r} outside 0..{n - 1} "
                             "of the annotation file")
        where = f"entry {i} (person {person}, {gt['images'][person] or 'image ?'})"
        image = entry.get("image")
        if image is not None and gt["images"][person] is not None and image != gt["images"][person]:
            raise ValueError(f"{results}: entry {i}: image {image!r} does not match person "
                             f"{person} of the annotation file ({gt['images'][person]!r})")
        if "joints" in entry:
            raw = entry["joints"]
            width = len(raw[0]) if isinstance(raw, list) and raw and isinstance(raw[0], list) else 0
            if width not in (2, 3):
                raise ValueError(f"{results}: {where}: joints must be 16 rows of [x, y] or [x, y, s]")
            arr = finite_numbers(raw, results, where, "joints", length=16 * width,
                                 stride=width).reshape(16, width)
        elif "keypoints" in entry:
            arr = finite_numbers(entry["keypoints"], results, where, "keypoints", length=48,
                                 stride=3).reshape(16, 3)
        else:
            raise ValueError(f"{results}: {where}: needs 'joints' or 'keypoints'")
        index.append(person), joints.append(arr[:, :2] + pred_offset)
    if not entries:
        raise ValueError(f"{results}: no predictions")
    idx = np.asarray(index)
    if len(set(index)) != len(index):
        dup = next(p for p in index if index.count(p) > 1)
        raise ValueError(f"{results}: person {dup} predicted more than once")
    return idx, np.stack(joints)


def evaluate_mpii_file(annotations: str | Path, results: str | Path, threshold_test: str = "<=",
                       pred_offset: float = 0.0, allow_missing: bool = False) -> dict[str, Any]:
    gt = load_mpii_ground_truth(annotations)
    idx, joints = read_mpii_results(results, gt, pred_offset)
    n = len(gt["head_size"])
    if len(idx) != n and not allow_missing:
        missing = sorted(set(range(n)) - set(idx.tolist()))
        raise ValueError(f"{results}: {len(missing)} of {n} people of {Path(annotations).name} have "
                         f"no prediction (first: person {missing[0]}); use --allow-missing to "
                         "score the others")
    sub = {"joints": gt["joints"][idx], "visible": gt["visible"][idx], "head_size": gt["head_size"][idx]}
    out = pckh_table(joints, sub, threshold_test)
    out["pred_offset"] = pred_offset
    return out


def evaluate_pck_file(annotations: str | Path, results: str | Path, thr: float = 0.2,
                      auc_max: float = 30.0, auc_method: str = "trapezoid",
                      threshold_test: str = "<") -> dict[str, Any]:
    gt = load_pck_ground_truth(annotations)
    entries = as_list_of_dicts(read_json(results, "results file"), results)
    if not entries:
        raise ValueError(f"{results}: no predictions")
    k = len(gt["names"])
    known = set(gt["image_ids"])
    preds, ids, boxes, anns = [], [], [], []
    for i, entry in enumerate(entries):
        where = f"entry {i} (image_id {entry.get('image_id')!r})"
        if "keypoints" not in entry or "image_id" not in entry:
            raise ValueError(f"{results}: entry {i}: needs 'image_id' and 'keypoints'")
        if entry["image_id"] not in known:
            raise ValueError(f"{results}: {where}: image id not in {Path(annotations).name}")
        preds.append(finite_numbers(entry["keypoints"], results, where, "keypoints", 3 * k,
                                    stride=3).reshape(k, 3))
        ids.append(entry["image_id"])
        boxes.append(finite_numbers(entry["bbox"], results, where, "bbox", 4) if "bbox" in entry else None)
        anns.append(entry.get("ann_id"))
    box_arr = np.stack(boxes) if all(b is not None for b in boxes) else None
    ann_ids = anns if all(a is not None for a in anns) else None
    rows = match_instances(gt, ids, box_arr, ann_ids, str(results))
    return pck_auc_epe(np.stack(preds), gt["keypoints"][rows], gt["boxes"][rows], thr, auc_max,
                       auc_method, threshold_test)


def evaluate_file(annotations: str | Path, results: str | Path, fmt: str = "coco", **options: Any) -> dict[str, Any]:
    """Dispatch on ``fmt`` ('coco', 'mpii', 'pck'); options go to the format's function."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    fn = {"coco": evaluate_coco_file, "mpii": evaluate_mpii_file, "pck": evaluate_pck_file}[fmt]
    return fn(annotations, results, **options)
