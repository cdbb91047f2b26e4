"""Issue 26 section 3: the whole-image benchmark's clean AP of MoveNet MultiPose (preset
``movenet-multipose``) agrees with an independent computation written here from scratch
(resize the longer side to 256 with cv2, pad centred to multiples of 32, feed with
onnxruntime, map the 6 people back, score every one with its person score through
pycocotools' COCOeval) to 0.1 AP."""
from __future__ import annotations

import copy
import json
import math

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("pycocotools")

COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07,
                        .87, .87, .89, .89]) / 10.0


def _people(session, image):
    """One RGB image -> [(keypoints (17, 3) image px, person score)] for MultiPose's 6 rows."""
    h, w = image.shape[:2]
    s = 256.0 / max(h, w)
    rw, rh = int(round(w * s)), int(round(h * s))
    ih, iw = 32 * math.ceil(rh / 32), 32 * math.ceil(rw / 32)
    top, left = int(round((ih - rh) / 2 - 0.1)), int(round((iw - rw) / 2 - 0.1))
    padded = np.zeros((ih, iw, 3), np.uint8)
    padded[top:top + rh, left:left + rw] = cv2.resize(image, (rw, rh),
                                                      interpolation=cv2.INTER_LINEAR)
    rows = session.run(None, {"input": padded[None].astype(np.int32)})[0][0]  # (6, 56)
    out = []
    for row in rows:
        kp = row[:51].reshape(17, 3)
        x = (kp[:, 1] * iw - left) / (rw / w)
        y = (kp[:, 0] * ih - top) / (rh / h)
        out.append((np.stack([x, y, kp[:, 2]], 1), float(row[55])))
    return out


def test_multipose_clean_ap_matches_an_independent_computation(data_root, models_root,
                                                               tmp_path):
    import onnxruntime as ort
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    import robustpose

    root = data_root / "coco_val_mini"
    model = models_root / "movenet_multipose_lightning.onnx"
    gt_data = json.loads((root / "annotations.json").read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    results = []
    for img in gt_data["images"]:
        bgr = cv2.imread(str(root / "images" / img["file_name"]), cv2.IMREAD_COLOR)
        for kps, score in _people(session, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)):
            results.append({"image_id": img["id"], "category_id": 1, "score": score,
                            "keypoints": kps.reshape(-1).tolist()})
    coco_gt = COCO()
    coco_gt.dataset = copy.deepcopy(gt_data)
    coco_gt.createIndex()
    ev = COCOeval(coco_gt, coco_gt.loadRes(results), "keypoints")
    ev.params.kpt_oks_sigmas = COCO_SIGMAS
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    reference = 100 * ev.stats[0]

    robustpose.benchmark(onnx=model, onnx_spec="movenet-multipose", dataset="coco-format",
                         data_root=root, corruptions="gaussian_noise", severities="1",
                         out=tmp_path / "run", workers=0, plots=False, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run/results.jsonl").read_text()
               .splitlines()]
    clean = next(r for r in records if r["corruption"] == "clean")
    assert 20.0 < reference < 40.0  # a working model, not an empty comparison
    assert 100 * clean["AP"] == pytest.approx(reference, abs=0.1)
