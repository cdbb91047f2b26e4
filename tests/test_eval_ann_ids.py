"""Annotation ids pycocotools cannot match (0 means "unmatched" to COCOeval; duplicated and
non-integer ids collide): the metric renumbers its copy and keeps the user's ids."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from robustpose.data import load_coco_records
from robustpose.evaluation import CocoKeypointMetric, evaluate_file


def renumbered(data_root, tmp_path, ids):
    """coco_val_mini's json with annotation ids replaced by ``ids(i)``; and GT as results."""
    data = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    for i, a in enumerate(data["annotations"]):
        a["id"] = ids(i)
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps(data))
    res = []
    for a in data["annotations"]:
        if a["num_keypoints"] == 0 or a["iscrowd"]:
            continue
        kp = np.array(a["keypoints"], dtype=float).reshape(17, 3)
        kp[:, 2] = 1.0
        res.append({"image_id": a["image_id"], "category_id": 1,
                    "keypoints": kp.reshape(-1).tolist(), "score": 1.0})
    res_file = tmp_path / "gt_as_results.json"
    res_file.write_text(json.dumps(res))
    return ann, data, res_file


def plain_pycocotools_ap(ann, res):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(str(res)), "keypoints")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return float(ev.stats[0])


def test_ids_from_zero_score_their_own_ground_truth_at_ap_1(data_root, tmp_path):
    ann, data, res = renumbered(data_root, tmp_path, lambda i: i)
    before = plain_pycocotools_ap(ann, res)
    assert before < 1.0  # the pitfall is real: GT id 0 is never matched
    after = evaluate_file(ann, res, "coco")
    assert after["AP"] == pytest.approx(1.0) and after["AR"] == pytest.approx(1.0)
    print(f"ids from 0, GT fed back: pycocotools AP {before:.4f} -> robustpose {after['AP']:.4f}")


@pytest.mark.parametrize("ids", [lambda i: i // 2, lambda i: f"person-{i}"],
                         ids=["duplicated", "strings"])
def test_duplicated_or_text_ids_are_scored_too(data_root, tmp_path, ids):
    ann, _, res = renumbered(data_root, tmp_path, ids)
    assert evaluate_file(ann, res, "coco")["AP"] == pytest.approx(1.0)


def test_the_users_ids_stay_in_every_output(data_root, tmp_path):
    ann, data, _ = renumbered(data_root, tmp_path, lambda i: i)
    metric = CocoKeypointMetric(ann)
    assert metric.gt.annotation_ids == [a["id"] for a in data["annotations"]]
    assert [a["id"] for a in metric.gt.dataset["annotations"]] == \
        list(range(1, len(data["annotations"]) + 1))  # the evaluated copy only
    records, _ = load_coco_records(ann, data_root / "coco_val_mini" / "images",
                                   aspect_ratio=192 / 256)
    assert 0 in {r.extra["ann_id"] for r in records}  # per-person records keep the json's ids
    kps = np.stack([r.keypoints for r in records])
    kps[:, :, 2] = 1.0
    metric.accumulate(kps, {"image_id": np.array([r.image_id for r in records]),
                            "score": np.ones(len(records)),
                            "center": np.stack([r.center for r in records]),
                            "scale": np.stack([r.scale for r in records])})
    assert metric.stats()["AP"] == pytest.approx(1.0)
    out = tmp_path / "preds.json"
    metric.write_predictions(out)
    written = json.loads(out.read_text())
    assert written and all("id" not in p for p in written)  # no internal id leaks out
