"""Issue 24 items 17 and 18: cases that were silent or ended in a traceback in benchmark,
evaluate, synth and the Python API; each is now refused (or skipped and named) in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robustpose.cli import main


def _val_mini(data_root):
    return data_root / "coco_val_mini"


def test_detections_of_zero_or_negative_size_are_skipped_and_named(data_root, tmp_path,
                                                                    capsys):
    from robustpose.data import load_coco_records

    root = _val_mini(data_root)
    image = json.loads((root / "annotations.json").read_text())["images"][0]["id"]
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([
        {"image_id": image, "category_id": 1, "bbox": [10, 10, 50, 80], "score": 0.9},
        {"image_id": image, "category_id": 1, "bbox": [10, 10, 0, 80], "score": 0.8},
        {"image_id": image, "category_id": 1, "bbox": [10, 10, 40, -5], "score": 0.7}]))
    records, _ = load_coco_records(root / "annotations.json", root / "images",
                                   detections=dets, aspect_ratio=0.75)
    assert len(records) == 1
    assert "skipped 2 detection(s)" in capsys.readouterr().err
    dets.write_text(json.dumps([{"image_id": image, "bbox": [1, 1, 0, 0], "score": 1.0}]))
    with pytest.raises(ValueError, match="positive size"):
        load_coco_records(root / "annotations.json", root / "images", detections=dets,
                          aspect_ratio=0.75)


def test_an_image_larger_than_its_json_says_is_skipped(data_root, tmp_path):
    """Boxes are clipped to the stated size: a stated size smaller than the image moved
    every box (AP* 2.1 -> 0.0); now the image is skipped and named."""
    from robustpose.data import ImageReadError, load_coco_records
    from robustpose.data.coco import check_image_size
    from robustpose.data.images import load_image

    root = _val_mini(data_root)
    data = json.loads((root / "annotations.json").read_text())
    data["images"][0]["width"] = data["images"][0]["width"] // 2
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    records, _ = load_coco_records(ann, root / "images", aspect_ratio=0.75)
    first = next(r for r in records if r.image_id == data["images"][0]["id"])
    with pytest.raises(ImageReadError, match="annotation file states"):
        check_image_size(load_image(first.image_path), first)


def test_evaluate_refuses_a_result_without_score(data_root, tmp_path, capsys):
    root = _val_mini(data_root)
    image = json.loads((root / "annotations.json").read_text())["images"][0]["id"]
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": image, "category_id": 1,
                                    "keypoints": [1.0, 1.0, 1.0] * 17}]))
    assert main(["evaluate", "--annotations", str(root / "annotations.json"),
                 "--results", str(results)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no 'score'" in err and str(results) in err and "\n" not in err


@pytest.mark.parametrize("key, thr", [("keypoint_score_thr", 5.0),
                                      ("keypoint_score_thr", -0.1), ("nms_thr", 2.0)])
def test_thresholds_outside_0_1_are_refused(data_root, key, thr):
    from robustpose.evaluation import CocoKeypointMetric

    with pytest.raises(ValueError, match=key + r" must be in \[0, 1\]"):
        CocoKeypointMetric(_val_mini(data_root) / "annotations.json", **{key: thr})


def test_synth_over_an_existing_folder(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", str(out), "--num-images", "4", "--image-size", "64x48",
                 "--no-progress"]) == 0
    assert main(["synth", str(out), "--num-images", "2", "--image-size", "64x48",
                 "--no-progress"]) == 1
    assert "already holds a SynthPose split (4 images)" in capsys.readouterr().err
    assert main(["synth", str(out), "--num-images", "2", "--image-size", "64x48", "--no-progress",
                 "--overwrite"]) == 0
    listed = json.loads((out / "annotations.json").read_text())["images"]
    assert sorted(p.name for p in (out / "images").iterdir()) == \
        sorted(i["file_name"] for i in listed)
    assert len(listed) == 2


def test_synth_huge_image_size_is_one_line(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s"), "--image-size", "100000x100000",
                 "--num-images", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "too large" in err and "\n" not in err


def test_a_callable_returning_none_is_named(tmp_path):
    import robustpose

    def my_model(crops: torch.Tensor):
        return None

    with pytest.raises(ValueError, match=r"callable 'my_model' returned NoneType"):
        robustpose.benchmark(my_model, max_images=2, corruptions="fog", severities="1",
                             workers=0, out=tmp_path / "run", progress=False, plots=False,
                             model_identity="v1")


def test_a_mistyped_keyword_of_benchmark_names_it(tmp_path):
    import robustpose

    with pytest.raises(TypeError, match=r"'corruptons'; did you mean 'corruptions'\?"):
        robustpose.benchmark(lambda crops: np.zeros((len(crops), 17, 3)), max_images=2,
                             corruptons="fog", out=tmp_path / "run", progress=False)
    with pytest.raises(TypeError, match="'severites'"):  # a registry model: was silent
        robustpose.benchmark("synthpose_shufflenetv2", severites="1", out=tmp_path / "r2",
                             progress=False)


def test_a_labelled_person_with_an_empty_box_is_recorded_in_the_run(data_root, tmp_path,
                                                                     capsys):
    """A ground-truth person with bbox [0, 0, 0, 0] cannot be cropped: it was dropped with a
    warning only; now the run's card lists it (summary.json and the table), as a miss."""
    root = _val_mini(data_root)
    data = json.loads((root / "annotations.json").read_text())
    first_two = sorted(img["id"] for img in data["images"])[:2]
    victim = next(a for a in data["annotations"] if a["image_id"] in first_two
                  and a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0))
    victim["bbox"] = [0, 0, 0, 0]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    out = tmp_path / "run"
    assert main(["benchmark", "--dataset", "coco-format", "--data-root", str(root),
                 "--annotations", str(ann), "--max-images", "2", "--corruptions", "fog",
                 "--severities", "1", "--out", str(out), "--no-progress", "--no-plots"]) == 0
    card = json.loads((out / "summary.json").read_text())
    assert [d["ann_id"] for d in card["dropped_annotations"]] == [victim["id"]]
    assert f"dropped people: 1 (ground-truth box with no positive width and height: " \
           f"annotation {victim['id']}" in capsys.readouterr().out
