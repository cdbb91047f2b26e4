"""COCO-format loader checks a user meets with hand-made sets: negative-size boxes,
duplicate image ids, images smaller than their json says. Fixtures written here."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from robustpose.benchmarking import run_benchmark
from robustpose.data import ImageReadError, load_coco_records
from robustpose.data.coco import check_image_size
from robustpose.data import TopDownDataset

NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
         "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
         "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]


def _person(ann_id: int, image_id: int, bbox: list, rng: np.random.Generator) -> dict:
    x, y, w, h = (abs(v) for v in bbox)
    pts = np.stack([rng.uniform(x, x + max(w, 1), 17), rng.uniform(y, y + max(h, 1), 17),
                    np.full(17, 2.0)], axis=1)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": bbox, "area": abs(bbox[2] * bbox[3]) or 100.0,
            "num_keypoints": 17, "keypoints": pts.reshape(-1).round(1).tolist()}


def _write_set(root: Path, images: list[dict], anns: list[dict], sizes: dict | None = None
               ) -> Path:
    """annotations.json + images/ (grey JPEGs of the stated size, or of ``sizes[id]``)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for img in images:
        w, h = (sizes or {}).get(img["id"], (img["width"], img["height"]))
        cv2.imwrite(str(root / "images" / img["file_name"]), np.full((h, w, 3), 128, np.uint8))
    ann = root / "annotations.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "person", "keypoints": NAMES, "skeleton": []}]}))
    return ann


def _images(*ids: int) -> list[dict]:
    return [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 64} for i in ids]


def test_a_negative_size_box_is_skipped_with_one_warning_naming_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    anns = [_person(10, 1, [5, 5, 40, 50], rng), _person(11, 1, [50, 50, -20, 30], rng),
            _person(12, 1, [10, 10, 30, 0], rng)]
    ann = _write_set(tmp_path, _images(1), anns)
    records, _ = load_coco_records(ann, tmp_path / "images", aspect_ratio=0.75)
    assert [r.extra["ann_id"] for r in records] == [10]   # before: 11 kept as a 0 x 0 crop
    assert all(r.bbox[2] > 0 and r.bbox[3] > 0 for r in records)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("robustpose: warning: ")
    assert "skipped 2 annotation(s)" in err[0] and "annotation id 11, 12" in err[0]


def test_duplicate_image_ids_are_named(tmp_path):
    rng = np.random.default_rng(1)
    images = _images(1, 2) + [{"id": 2, "file_name": "2b.jpg", "width": 64, "height": 64}]
    ann = _write_set(tmp_path, images, [_person(1, 2, [5, 5, 30, 40], rng)])
    with pytest.raises(ValueError) as err:
        load_coco_records(ann, tmp_path / "images", aspect_ratio=0.75)
    assert str(err.value) == f"duplicate image id 2 in {ann} (image entries 1 and 2)"
    with pytest.raises(ValueError, match=f"duplicate image id 2 in {ann}$"):
        run_benchmark("hrnet", dataset="coco-format", data_root=tmp_path, max_images=1,
                      corruptions="none", workers=0, progress=False, out=tmp_path / "run")


def test_an_image_smaller_than_its_json_says_is_named_and_skipped(tmp_path):
    rng = np.random.default_rng(2)
    anns = [_person(1, 1, [5, 5, 30, 40], rng), _person(2, 2, [5, 5, 30, 40], rng)]
    ann = _write_set(tmp_path, _images(1, 2), anns, sizes={2: (32, 32)})  # a resized copy
    records, spec = load_coco_records(ann, tmp_path / "images", aspect_ratio=0.75)
    by_id = {r.image_id: r for r in records}
    check_image_size(np.zeros((64, 64, 3), np.uint8), by_id[1])
    with pytest.raises(ImageReadError, match="image is 70x80 but"):  # larger: boxes were
        check_image_size(np.zeros((80, 70, 3), np.uint8), by_id[1])  # clipped to 64x64
    with pytest.raises(ImageReadError) as err:
        check_image_size(cv2.imread(str(tmp_path / "images" / "2.jpg")), by_id[2])
    assert str(err.value) == (f"{tmp_path / 'images' / '2.jpg'}: image is 32x32 but its "
                              "annotation file states 64x64 (a resized copy, or a "
                              "wrong width/height entry?)")
    dataset = TopDownDataset(records, spec, input_size=(48, 64), heatmap_size=(12, 16),
                          train=False, skip_unreadable=True)
    samples = [dataset[i] for i in range(len(dataset))]
    assert len(samples) == 2
    assert dataset.skipped == [(str(tmp_path / "images" / "2.jpg"), str(err.value))]
