"""COCO-format loading on the real mini sets, and every bad-input case as a one-line error."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from robustpose.data import box_to_center_scale, get_spec, load_coco_records


def _load(data_root, name, **kw):
    d = data_root / name
    kw.setdefault("aspect_ratio", 192 / 256)
    return load_coco_records(d / "annotations.json", d / "images", **kw)


def test_gt_records_follow_hrnet_selection(data_root):
    """Crowd and keypoint-less persons are dropped (HRNet's training/GT-box set)."""
    for name, expected_total in (("coco_val_mini", 68), ("coco_train_mini", 86)):
        data = json.loads((data_root / name / "annotations.json").read_text())
        expected = [a for a in data["annotations"]
                    if not a["iscrowd"] and max(a["keypoints"]) > 0 and a["area"] > 0]
        records, spec = _load(data_root, name)
        assert spec.name == "coco"
        assert len(records) == len(expected) == expected_total  # README: 68 / 86 persons
        assert {r.extra["ann_id"] for r in records} == {a["id"] for a in expected}
        for r in records:
            assert r.keypoints.shape == (17, 3) and r.image_path.exists() and r.score == 1.0


def test_keep_unlabeled_keeps_persons_without_keypoints(data_root):
    records, _ = _load(data_root, "coco_val_mini", keep_unlabeled=True)
    assert len(records) > 68
    assert any(r.keypoints.max() == 0 for r in records)
    assert all(r.extra["ann_id"] != 0 for r in records)


def test_center_scale_by_hand(data_root):
    records, _ = _load(data_root, "coco_val_mini")
    r = next(r for r in records if r.extra["ann_id"] == 200887)
    x, y, w, h = 388.66, 69.92, 109.41, 277.62  # already inside the 640x427 image
    # clean_bbox: w - 1, h - 1 (HRNet); the box is taller than 3:4 -> widen to 0.75 * h
    assert np.allclose(r.bbox, [x, y, w - 1, h - 1])
    assert np.allclose(r.center, [x + (w - 1) / 2, y + (h - 1) / 2], atol=1e-3)
    assert np.allclose(r.scale, [0.75 * (h - 1) / 200 * 1.25, (h - 1) / 200 * 1.25], atol=1e-5)
    c, s = box_to_center_scale([0, 0, 300, 100], 0.75)
    assert np.allclose(c, [150, 50]) and np.allclose(s, [1.5 * 1.25, 2.0 * 1.25])


def test_detector_boxes_with_threshold(data_root):
    dets = json.loads((data_root / "coco_mmpose" / "detections.json").read_text())
    all_records, _ = _load(data_root, "coco_mmpose", detections=data_root / "coco_mmpose"
                           / "detections.json")
    assert len(all_records) == len(dets) == 118
    kept, _ = _load(data_root, "coco_mmpose", detections=dets, det_score_thr=0.5)
    assert len(kept) == sum(d["score"] >= 0.5 for d in dets)
    for r in kept:
        assert r.keypoints is None and r.score >= 0.5 and r.extra["source"] == "det"
        assert np.isclose(r.area, r.bbox[2] * r.bbox[3])


def test_rhd_nested_keypoints(data_root):
    records, spec = _load(data_root, "rhd_mini")
    assert spec.name == "rhd" and len(records) == 3
    assert records[0].keypoints.shape == (21, 3)


@pytest.fixture()
def mini(tmp_path, data_root):
    """A writable copy of coco_mmpose (4 images) to break in the tests below."""
    src = data_root / "coco_mmpose"
    shutil.copytree(src / "images", tmp_path / "images")
    data = json.loads((src / "annotations.json").read_text())
    return tmp_path, data


def _write(tmp_path, data):
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(data))
    return path


def test_keypoint_count_mismatch_names_file_and_annotation(mini):
    tmp_path, data = mini
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    path = _write(tmp_path, data)
    with pytest.raises(ValueError) as err:
        load_coco_records(path, tmp_path / "images", aspect_ratio=0.75)
    msg = str(err.value)
    assert str(path) in msg and "16 keypoints but its category has 17" in msg
    assert "\n" not in msg


def test_spec_of_other_size_is_refused(mini):
    tmp_path, data = mini
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match="has 17 keypoints but spec 'mpii' has 16"):
        load_coco_records(path, tmp_path / "images", spec=get_spec("mpii"), aspect_ratio=0.75)


@pytest.mark.parametrize("file_name,problem", [("../secret.jpg", "escapes the image root"),
                                               ("/etc/passwd", "is absolute"),
                                               ("C:\\x\\y.jpg", "is absolute")])
def test_file_name_escaping_the_root_is_refused(mini, file_name, problem):
    tmp_path, data = mini
    data["images"][1]["file_name"] = file_name
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=problem) as err:
        load_coco_records(path, tmp_path / "images", aspect_ratio=0.75)
    assert str(path) in str(err.value)


def test_symlink_leaving_the_root_is_refused(mini):
    tmp_path, data = mini
    (tmp_path / "outside.jpg").write_bytes(b"x")
    (tmp_path / "images" / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    data["images"][0]["file_name"] = "link.jpg"
    with pytest.raises(ValueError, match="resolves outside the image root"):
        load_coco_records(_write(tmp_path, data), tmp_path / "images", aspect_ratio=0.75)


def test_empty_dataset_is_an_error(mini):
    tmp_path, data = mini
    data["annotations"] = []
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match="empty dataset") as err:
        load_coco_records(path, tmp_path / "images", aspect_ratio=0.75)
    assert str(path) in str(err.value)


def test_detections_edge_cases(mini):
    tmp_path, data = mini
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match="no person boxes with score >= 2"):
        load_coco_records(path, tmp_path / "images",
                          detections=[{"image_id": 785, "bbox": [0, 0, 5, 5], "score": 0.9}],
                          det_score_thr=2.0, aspect_ratio=0.75)
    with pytest.raises(ValueError, match="image_id 1 which is not in"):
        load_coco_records(path, tmp_path / "images",
                          detections=[{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 0.9}],
                          aspect_ratio=0.75)
    with pytest.raises(ValueError, match="not 4 finite numbers"):
        load_coco_records(path, tmp_path / "images",
                          detections=[{"image_id": 785, "bbox": [0, float("nan"), 5, 5],
                                       "score": 0.9}], aspect_ratio=0.75)


def test_missing_or_broken_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        load_coco_records(tmp_path / "nope.json", tmp_path, aspect_ratio=0.75)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid json") as err:
        load_coco_records(bad, tmp_path, aspect_ratio=0.75)
    assert str(bad) in str(err.value)


def test_aspect_ratio_is_required_and_widens_the_boxes(data_root):
    """The crop shape is the model's: no default aspect ratio (a 128x128 model must not
    get 192x256 crops), a bad one is a one-line error, and a square one gives square
    scales."""
    d = data_root / "coco_val_mini"
    with pytest.raises(TypeError, match="aspect_ratio"):
        load_coco_records(d / "annotations.json", d / "images")
    for bad in (0, -1.0, float("nan"), "wide"):
        with pytest.raises(ValueError, match="aspect_ratio must be a positive number"):
            load_coco_records(d / "annotations.json", d / "images", aspect_ratio=bad)
    square, _ = load_coco_records(d / "annotations.json", d / "images", aspect_ratio=1.0)
    tall, _ = load_coco_records(d / "annotations.json", d / "images", aspect_ratio=0.75)
    assert all(r.scale[0] == pytest.approx(r.scale[1]) for r in square)
    assert all(r.scale[0] == pytest.approx(0.75 * r.scale[1]) for r in tall)
    assert any(not np.allclose(a.scale, b.scale) for a, b in zip(square, tall))
