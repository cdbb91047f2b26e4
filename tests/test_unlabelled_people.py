"""Issue 24 item 8: a person with no visible keypoint (every v = 0, whatever its
coordinates or declared ``num_keypoints``) is left out everywhere: not a record (so
stability, attack and benchmark never crop it), ignored by the COCO metric (COCOeval's
``num_keypoints == 0`` rule, instead of its box rule scoring OKS 1), and PCK / AUC / EPE
of a set with no visible keypoint are absent, never 0 (docs/evaluation.md)."""
from __future__ import annotations

import json

import numpy as np
import pytest

IMAGE = 397133  # coco_val_mini: person A (13 keypoints) and person B (1 keypoint)


def _hidden_file(data_root, tmp_path, hide=(1,)):
    """coco_val_mini's image 397133 with the people at ``hide`` made all-v=0 (their x, y
    and declared num_keypoints kept, as the hostile sweep's file had them)."""
    data = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    data["images"] = [i for i in data["images"] if i["id"] == IMAGE]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] == IMAGE]
    for i in hide:
        kps = data["annotations"][i]["keypoints"]
        for j in range(0, len(kps), 3):
            kps[j], kps[j + 1], kps[j + 2] = kps[j] or 50.0, kps[j + 1] or 300.0, 0
        assert data["annotations"][i]["num_keypoints"] > 0
    path = tmp_path / "hidden.json"
    path.write_text(json.dumps(data))
    return path, data


def test_records_leave_out_a_person_with_no_visible_keypoint(data_root, tmp_path) -> None:
    from robustpose.data import load_coco_records

    path, _ = _hidden_file(data_root, tmp_path)
    records, _ = load_coco_records(path, data_root / "coco_val_mini" / "images",
                                   aspect_ratio=0.75)
    assert [r.extra["ann_id"] for r in records] == [
        json.loads(path.read_text())["annotations"][0]["id"]]
    with pytest.raises(ValueError, match="no person with keypoints"):
        load_coco_records(_hidden_file(data_root, tmp_path, hide=(0, 1))[0],
                          data_root / "coco_val_mini" / "images", aspect_ratio=0.75)


def test_coco_metric_ignores_a_person_with_no_visible_keypoint(data_root, tmp_path) -> None:
    """A wrong prediction for A and one inside B's box: COCOeval's box rule would match
    the second with OKS 1 (AP > 0); with B ignored only the wrong one counts (AP 0)."""
    from robustpose.evaluation import evaluate_file

    path, data = _hidden_file(data_root, tmp_path)
    a, b = data["annotations"]
    wrong = [v for x in range(17) for v in (5.0, 5.0, 1.0)]
    x, y, w, h = b["bbox"]
    inside = [v for _ in range(17) for v in (x + w / 2, y + h / 2, 1.0)]
    results = tmp_path / "results.json"
    results.write_text(json.dumps([
        {"image_id": IMAGE, "category_id": 1, "keypoints": wrong, "score": 1.0},
        {"image_id": IMAGE, "category_id": 1, "keypoints": inside, "score": 0.9}]))
    stats = evaluate_file(path, results, "coco")
    assert stats["AP"] == pytest.approx(0.0)


def test_pck_auc_epe_absent_without_a_visible_keypoint() -> None:
    from robustpose.evaluation import pck_auc_epe

    gt = np.zeros((2, 17, 3))
    gt[..., :2] = 100.0  # coordinates given, every v = 0
    out = pck_auc_epe(gt.copy(), gt, np.array([[0, 0, 50, 80]] * 2, float))
    assert (out["PCK"], out["AUC"], out["EPE"]) == (None, None, None)
    gt[0, 3, 2] = 2
    out = pck_auc_epe(gt.copy(), gt, np.array([[0, 0, 50, 80]] * 2, float))
    assert out["PCK"] == 1.0 and out["EPE"] == 0.0 and out["AUC"] == pytest.approx(1.0)
