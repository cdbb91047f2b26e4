"""Whole-image models (issue 26 section 2): YOLO-pose decoding + NMS on outputs built from
known poses and through an exported ONNX model, the spec's one-line refusals, a callable
through the API, and the corrupted whole image equal to the top-down benchmark's."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from robustpose.models.whole_image import (People, WholeImageCallable, decode_multipose,
                                           decode_yolo_pose, letterbox, nms_boxes)


def _yolo_column(box_xyxy, conf, kps):
    """One YOLO-pose candidate: cx, cy, w, h, conf, 17 x (x, y, v), input px."""
    x1, y1, x2, y2 = box_xyxy
    return np.concatenate([[(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, conf],
                           np.asarray(kps, np.float64).reshape(-1)])


def _pose(x0, y0, rng):
    return np.stack([x0 + rng.uniform(0, 80, 17), y0 + rng.uniform(0, 160, 17),
                     rng.uniform(0.3, 1.0, 17)], axis=1)


def _known_raw(anchors=8400):
    """(1, 56, anchors): person A (conf 0.9), its duplicate (IoU ~0.83, conf 0.8), person B
    overlapping A by IoU 0.5 (conf 0.6), a low candidate (conf 0.0005); the rest zero."""
    rng = np.random.default_rng(0)
    a, b = _pose(100, 100, rng), _pose(140, 100, rng)
    raw = np.zeros((56, anchors))
    raw[:, 10] = _yolo_column((100, 100, 180, 260), 0.9, a)
    raw[:, 20] = _yolo_column((108, 100, 188, 260), 0.8, a + [8, 0, 0])
    raw[:, 30] = _yolo_column((140, 100, 220, 260), 0.6, b)  # IoU with A: 40/120 wide
    raw[:, 40] = _yolo_column((400, 400, 450, 500), 0.0005, a)
    return raw[None], a, b


def test_yolo_pose_decoding_keeps_known_people_and_drops_duplicates():
    raw, a, b = _known_raw()
    people = decode_yolo_pose(raw, score_threshold=0.001, iou=0.7, max_people=300)
    assert len(people) == 2 and people.scores.tolist() == pytest.approx([0.9, 0.6])
    np.testing.assert_allclose(people.keypoints[0], a)
    np.testing.assert_allclose(people.keypoints[1], b)
    np.testing.assert_allclose(people.boxes, [[100, 100, 180, 260], [140, 100, 220, 260]])
    # IoU(A, B) = 40 * 160 / (2 * 80 * 160 - 40 * 160) = 1/3: a stricter NMS drops B too
    assert len(decode_yolo_pose(raw, iou=0.3)) == 1
    assert len(decode_yolo_pose(raw, score_threshold=0.0001)) == 3  # the low one is kept
    assert len(decode_yolo_pose(raw, max_people=1)) == 1


def test_nms_matches_the_greedy_rule():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10.0]])
    assert nms_boxes(boxes, np.array([0.5, 0.9, 0.3, 0.1]), 0.5).tolist() == [1, 2]
    assert nms_boxes(boxes, np.array([0.5, 0.9, 0.3, 0.1]), 0.95).tolist() == [1, 0, 2]


def test_multipose_rows_decode_yx_normalised_to_the_padded_input():
    rows = np.zeros((2, 56))
    rows[0, :51] = np.tile([0.5, 0.25, 0.8], 17)          # y, x, score
    rows[0, 51:] = [0.1, 0.2, 0.9, 0.4, 0.7]               # ymin xmin ymax xmax, score
    people = decode_multipose(rows, (256, 192))
    np.testing.assert_allclose(people.keypoints[0, 0], [64, 96, 0.8])
    np.testing.assert_allclose(people.boxes[0], [51.2, 19.2, 102.4, 172.8])
    assert people.scores.tolist() == [0.7, 0.0]


def test_letterbox_maps_back_exactly():
    image = np.zeros((427, 640, 3), np.uint8)
    fed, box = letterbox(image, (256, 256), size_divisor=32)
    assert fed.shape == (192, 256, 3) and box.pad_y == 10 and box.pad_x == 0
    fed, box = letterbox(image, (640, 640), pad_value=114)
    assert fed.shape == (640, 640, 3) and fed[0, 0, 0] == 114 and box.pad_y == 106
    point = np.array([[320.0, 213.5]])
    np.testing.assert_allclose(box.to_image(point * box.scale + [box.pad_x, box.pad_y]), point)


class _ConstantYolo(torch.nn.Module):
    """A 'YOLO-pose' whose raw output is fixed (known poses in input px)."""

    def __init__(self, raw):
        super().__init__()
        self.register_buffer("raw", torch.as_tensor(raw, dtype=torch.float32))

    def forward(self, x):
        return self.raw + 0.0 * x.mean()


def test_exported_yolo_pose_through_the_preset_maps_back_to_image_px(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from robustpose.models.onnx_adapter import open_model_file

    raw, a, b = _known_raw()
    path = tmp_path / "yolo.onnx"
    torch.onnx.export(_ConstantYolo(raw).eval(), (torch.zeros(1, 3, 640, 640),), str(path),
                      input_names=["images"], output_names=["output0"], dynamo=False)
    adapter = open_model_file(path, "yolo-pose")
    assert adapter.kind == "whole-image" and adapter.num_keypoints == 17
    assert adapter.spec.pad_value == 114 and adapter.spec.nms_iou == 0.7
    people = adapter.predict_image(np.zeros((480, 320, 3), np.uint8))  # tall: x padded
    # written here: 480x320 fits 640x640 at scale 4/3 -> 427 x 640, padded left by 106
    scale, pad_x = 427 / 320, round((640 - 427) / 2 - 0.1)
    assert len(people) == 2
    np.testing.assert_allclose(people.keypoints[0, :, 0], (a[:, 0] - pad_x) / scale, atol=1e-3)
    np.testing.assert_allclose(people.keypoints[0, :, 1], a[:, 1] / (640 / 480), atol=1e-3)
    np.testing.assert_allclose(people.keypoints[1, :, 2], b[:, 2], atol=1e-6)
    with pytest.raises(ValueError, match="takes no person crops"):
        adapter.predict(torch.zeros(1, 3, 640, 640), {}, None, False)


def _spec_file(tmp_path, **data):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, key, says", [
    ({"output_kind": "coords"}, "kind", "reads output_kind multipose or yolo-pose"),
    ({"kind": "top-down"}, "output_kind", "add kind: whole-image"),
    ({"output_kind": "yolo-pose"}, "values_per_keypoint", "6 values are not (N, 5 + K*"),
    ({"input_dtype": "float32"}, "input_dtype", "tensor(int32)"),
])
def test_whole_image_spec_mismatches_are_one_line(models_root, tmp_path, changes, key, says):
    from robustpose.models.onnx_adapter import open_model_file

    base = {"kind": "whole-image", "input_size": [256, 256], "output_kind": "multipose",
            "layout": "NHWC", "value_range": [0, 255], "input_dtype": "int32",
            "size_divisor": 32, "coordinate_order": "yx", "coordinate_units": "input_normalized"}
    model = models_root / "movenet_multipose_lightning.onnx"
    with pytest.raises(ValueError) as info:
        open_model_file(model, _spec_file(tmp_path, **{**base, **changes}))
    text = str(info.value)
    assert "\n" not in text and str(model) in text and f"key {key!r}" in text and says in text


def test_multipose_preset_reads_the_file_and_other_presets_do_not_fit(models_root):
    from robustpose.models.onnx_adapter import declared_tensors
    from robustpose.models.onnx_presets import fitting_presets

    model = models_root / "movenet_multipose_lightning.onnx"
    found = dict(fitting_presets(*declared_tensors(model), str(model)))
    spec = found["movenet-multipose"]
    assert not isinstance(spec, str), spec
    assert (spec.input_dtype, spec.layout, spec.size_divisor) == ("int32", "NHWC", 32)
    assert "no (N, 56, anchors) output" in found["yolo-pose"]
    assert isinstance(found["movenet"], str)  # the single-person preset does not fit


def _gt_people(annotations):
    """The ground-truth people of each image id that COCOeval scores: (x, y, 1 where
    labelled)."""
    data = json.loads(annotations.read_text())
    people = {}
    for ann in data["annotations"]:
        if ann.get("iscrowd") or not any(ann["keypoints"][2::3]):
            continue  # people COCOeval ignores: a prediction there would be a false positive
        kps = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        kps[:, 2] = (kps[:, 2] > 0).astype(float)
        people.setdefault(ann["image_id"], []).append(kps)
    return people


def test_callable_oracle_through_the_api_scores_ap_one_and_resumes(data_root, tmp_path,
                                                                   capsys):
    import robustpose
    from robustpose.data import load_image

    root = data_root / "coco_val_mini"
    gt = _gt_people(root / "annotations.json")
    data = json.loads((root / "annotations.json").read_text())
    ids = {load_image(root / "images" / img["file_name"])[:4].tobytes(): img["id"]
           for img in data["images"]}  # the oracle knows an image by its top rows

    def oracle(image):
        key = image[:4].tobytes()
        kps = np.asarray(gt.get(ids.get(key), []), np.float64).reshape(-1, 17, 3)
        return {"keypoints": kps, "scores": np.ones(len(kps))}

    model = WholeImageCallable(oracle, name="oracle", identity="gt-oracle-1")
    kwargs = dict(dataset="coco-format", data_root=root, max_images=4,
                  corruptions="gaussian_noise", severities="5", out=tmp_path / "run",
                  workers=0, plots=False)
    card = robustpose.benchmark(model, **kwargs)
    records = [json.loads(line) for line in (tmp_path / "run/results.jsonl").read_text()
               .splitlines()]
    clean = next(r for r in records if r["corruption"] == "clean")
    noisy = next(r for r in records if r["corruption"] == "gaussian_noise")
    assert clean["AP"] == pytest.approx(1.0)
    assert noisy["AP"] < 0.5  # the oracle no longer recognises the corrupted pixels
    assert clean["conventions"]["metric_settings"]["score_mode"] == "bbox"
    assert card["run_dir"] == str(tmp_path / "run")
    capsys.readouterr()
    robustpose.benchmark(model, **kwargs)
    assert "0 cell(s) to run, 2 done already" in capsys.readouterr().err


def test_corrupted_whole_image_is_the_top_down_benchmarks_image(data_root, tmp_path):
    from robustpose.benchmarking.cells import Cell
    from robustpose.benchmarking.sources import resolve_source
    from robustpose.benchmarking.stream import CellImages
    from robustpose.benchmarking.whole_image import WholeImageStream, image_records
    from robustpose.data import CorruptedImages, load_image

    source = resolve_source("coco-format", data_root / "coco_val_mini", max_images=2,
                            subset_dir=tmp_path)
    records = image_records(source)
    stream = WholeImageStream([Cell("clean", 0), Cell("motion_blur", 2)], records, source.spec,
                              CellImages(seed=3), source.image_root)
    clean = load_image(records[1].image_path)
    assert np.array_equal(stream[(0, 1)]["image"], clean)
    want = CorruptedImages("motion_blur", 2, 3)(clean, records[1])
    assert np.array_equal(stream[(1, 1)]["image"], want) and not np.array_equal(want, clean)


def test_people_of_a_callable_are_checked():
    bad = WholeImageCallable(lambda image: (np.zeros((2, 17)), np.ones(2)), name="bad")
    with pytest.raises(ValueError, match="bad: keypoints must be"):
        bad.predict_image(np.zeros((8, 8, 3), np.uint8))
    ok = WholeImageCallable(lambda image: People(np.ones((1, 17, 3)), [0.5]))
    assert len(ok.predict_image(np.zeros((8, 8, 3), np.uint8))) == 1
