"""CrowdPose conventions: the 0.53 * w * h area rule, AP(E/M/H) by crowdIndex, the warning
for a set without `area`, each checked against pycocotools run on a json the test fills."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from robustpose.cli import main
from robustpose.data.specs import CROWDPOSE_SIGMAS
from robustpose.evaluation import CocoKeypointMetric, evaluate_file
from robustpose.evaluation.coco import COCO_STAT_NAMES

#: CrowdPose's json names its 12th keypoint "head" (robustpose's preset says "top_head")
JSON_NAMES = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
              "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
              "right_ankle", "head", "neck"]
#: easy < 0.2 <= medium < 0.8 <= hard; 0.2 and 0.8 pin the edges crowdposetools uses
CROWD_INDEX = [0.0, 0.05, 0.12, 0.19, 0.2, 0.35, 0.5, 0.79, 0.8, 0.9, 0.97, 0.6]


def crowdpose_json(path, names=JSON_NAMES, seed=0):
    """A CrowdPose-style set: no `area`, images with `crowdIndex`, 1-4 people of 14 keypoints
    each (some keypoints unlabelled), boxes of 40-200 px."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i, ci in enumerate(CROWD_INDEX):
        images.append({"id": 100 + i, "file_name": f"{100 + i}.jpg", "width": 640,
                       "height": 480, "crowdIndex": ci})
        for _ in range(int(rng.integers(1, 5))):
            w, h = rng.uniform(40, 200, 2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            kp = np.stack([x + rng.uniform(0, w, 14), y + rng.uniform(0, h, 14),
                           rng.choice([0, 1, 2], 14, p=[0.15, 0.25, 0.6])], 1)
            kp[kp[:, 2] == 0, :2] = 0
            anns.append({"id": len(anns) + 1, "image_id": 100 + i, "category_id": 1,
                         "bbox": [float(x), float(y), float(w), float(h)], "iscrowd": 0,
                         "num_keypoints": int((kp[:, 2] > 0).sum()),
                         "keypoints": kp.reshape(-1).round(2).tolist()})
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(names)}]}
    path.write_text(json.dumps(data))
    return data


def perturbed(data, noise=6.0, seed=1):
    """GT keypoints moved by Gaussian noise (px), scores drawn at random: COCO results."""
    rng = np.random.default_rng(seed)
    res = []
    for a in data["annotations"]:
        kp = np.array(a["keypoints"], dtype=float).reshape(14, 3)
        kp[:, :2] += noise * rng.standard_normal((14, 2))
        kp[:, 2] = 1.0
        res.append({"image_id": a["image_id"], "category_id": 1,
                    "keypoints": kp.reshape(-1).tolist(), "score": float(rng.uniform(0.3, 1))})
    return res


def pycocotools_on(data, res, area_factor, image_ids=None):
    """pycocotools itself on a copy of ``data`` whose `area` is area_factor * w * h."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    filled = json.loads(json.dumps(data))
    for a in filled["annotations"]:
        a["area"] = area_factor * a["bbox"][2] * a["bbox"][3]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = filled
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(json.loads(json.dumps(res))), "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(CROWDPOSE_SIGMAS)
        if image_ids is not None:
            ev.params.imgIds = image_ids
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return dict(zip(COCO_STAT_NAMES, ev.stats))


@pytest.fixture()
def crowd_set(tmp_path):
    ann = tmp_path / "crowdpose_val.json"
    data = crowdpose_json(ann)
    res = tmp_path / "preds.json"
    res.write_text(json.dumps(perturbed(data)))
    return ann, data, res


def test_crowdpose_rule_equals_pycocotools_with_area_filled_as_053_wh(crowd_set, capfd):
    ann, data, res = crowd_set
    ours = evaluate_file(ann, res, "coco", sigmas=CROWDPOSE_SIGMAS)
    assert ours["area_rule"] == "crowdpose"  # known from the 14 CrowdPose keypoint names
    direct = pycocotools_on(data, json.loads(res.read_text()), 0.53)
    assert 0.1 < direct["AP"] < 0.95  # a non-trivial value
    for name in COCO_STAT_NAMES:
        assert ours[name] == direct[name], name
    assert "warning" not in capfd.readouterr().err  # a known convention: nothing to say


def test_crowd_index_subsets_equal_pycocotools_on_the_image_subsets(crowd_set):
    ann, data, res = crowd_set
    ours = evaluate_file(ann, res, "coco", sigmas=CROWDPOSE_SIGMAS)
    preds = json.loads(res.read_text())
    by_ci = {img["id"]: img["crowdIndex"] for img in data["images"]}
    subsets = {"AP(E)": [i for i, c in by_ci.items() if c < 0.2],
               "AP(M)": [i for i, c in by_ci.items() if 0.2 <= c < 0.8],
               "AP(H)": [i for i, c in by_ci.items() if c >= 0.8]}
    assert [len(v) for v in subsets.values()] == [4, 5, 3]
    values = []
    for name, ids in subsets.items():
        expected = pycocotools_on(data, preds, 0.53, image_ids=ids)["AP"]
        assert ours[name] == expected, name
        values.append(expected)
    assert len(set(values)) == 3  # three different subsets, not AP three times


def test_metric_records_the_rule_and_reports_ap_emh(tmp_path):
    """The top-down metric on the robustpose names (``top_head``): preset sigmas, the rule
    in ``conventions`` (run.json / under the table), AP(E/M/H) beside AP in ``stats``."""
    ann = tmp_path / "cp.json"
    data = crowdpose_json(ann, names=JSON_NAMES[:12] + ["top_head", "neck"], seed=4)
    metric = CocoKeypointMetric(ann, nms_mode="none", score_mode="bbox")
    assert np.allclose(metric.gt.sigmas, CROWDPOSE_SIGMAS)
    assert metric.conventions["area_rule"] == "crowdpose"
    assert metric.conventions["crowd_index_edges"] == [0.2, 0.8]
    preds = perturbed(data, seed=5)
    kps = np.array([p["keypoints"] for p in preds]).reshape(-1, 14, 3)
    metric.accumulate(kps, {"image_id": np.array([p["image_id"] for p in preds]),
                            "score": np.array([p["score"] for p in preds]),
                            "area": np.ones(len(preds))})
    stats = metric.stats()
    direct = pycocotools_on(data, metric.predictions(), 0.53)
    assert stats["AP"] == direct["AP"]
    assert {"AP(E)", "AP(M)", "AP(H)"} <= set(stats)


def test_wh_fill_overstates_crowdpose_ap_before_after(crowd_set):
    """The figure behind the fix: the old w*h fill against CrowdPose's 0.53 * w * h."""
    ann, data, res = crowd_set
    before = evaluate_file(ann, res, "coco", sigmas=CROWDPOSE_SIGMAS, area_rule="bbox")
    after = evaluate_file(ann, res, "coco", sigmas=CROWDPOSE_SIGMAS)
    preds = json.loads(res.read_text())
    assert before["AP"] == pycocotools_on(data, preds, 1.0)["AP"]
    assert after["AP"] == pycocotools_on(data, preds, 0.53)["AP"]
    assert before["AP"] > after["AP"] + 0.02  # a larger area forgives every error
    print(f"fixture AP: w*h {before['AP']:.4f} -> 0.53*w*h {after['AP']:.4f}")


def test_unknown_set_without_area_says_which_rule_in_one_line(data_root, tmp_path, capfd):
    data = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    for a in data["annotations"]:
        del a["area"]
    ann = tmp_path / "no_area.json"
    ann.write_text(json.dumps(data))
    capfd.readouterr()
    metric = CocoKeypointMetric(ann)
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and str(ann) in lines[0]
    assert "w*h" in lines[0] and "'bbox'" in lines[0] and "--area-rule" in lines[0]
    assert metric.conventions["area_rule"] == "bbox"
    CocoKeypointMetric(ann)  # built again (training validation): not said twice
    assert capfd.readouterr().err == ""
    CocoKeypointMetric(ann, area_rule="bbox")  # chosen: nothing to warn about
    assert capfd.readouterr().err == ""
    # a COCO json with its areas: the json's rule, silently
    coco = CocoKeypointMetric(data_root / "coco_val_mini" / "annotations.json")
    assert coco.conventions["area_rule"] == "json" and capfd.readouterr().err == ""
    # some areas missing: the json's where given, w*h elsewhere, said in one line
    full = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    for a in full["annotations"][:10]:
        del a["area"]
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps(full))
    gt = CocoKeypointMetric(mixed).gt
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"10 of {len(full['annotations'])} annotations" in lines[0]
    assert gt.area_rule == "json"
    areas = [a["area"] for a in gt.dataset["annotations"]]
    assert areas[:10] == [a["bbox"][2] * a["bbox"][3] for a in full["annotations"][:10]]
    assert areas[10:] == [a["area"] for a in full["annotations"][10:]]


def test_area_rule_is_checked_and_reaches_the_cli(crowd_set, capsys):
    ann, _, res = crowd_set
    with pytest.raises(ValueError, match="area_rule must be one of json, bbox, crowdpose"):
        CocoKeypointMetric(ann, sigmas=CROWDPOSE_SIGMAS, area_rule="segm")
    sig = ",".join(str(s) for s in CROWDPOSE_SIGMAS)
    for rule in ("bbox", "crowdpose"):
        rc = main(["evaluate", "--annotations", str(ann), "--results", str(res),
                   "--sigmas", sig, "--area-rule", rule, "--json"])
        out = json.loads(capsys.readouterr().out)
        assert rc == 0 and out["area_rule"] == rule
        assert out["AP"] == evaluate_file(ann, res, "coco", sigmas=CROWDPOSE_SIGMAS,
                                          area_rule=rule)["AP"]
    rc = main(["evaluate", "--annotations", str(ann), "--results", str(res), "--sigmas", sig])
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and shown[-4:] == ["AP(E)", "AP(M)", "AP(H)", "area_rule"]


def test_benchmark_source_of_dataset_crowdpose_uses_its_rule(tmp_path):
    from robustpose.benchmarking.sources import resolve_source

    (tmp_path / "json").mkdir()
    (tmp_path / "images").mkdir()
    crowdpose_json(tmp_path / "json" / "crowdpose_val.json")
    source = resolve_source("crowdpose", tmp_path, input_size=(192, 256))
    assert source.make_metric().conventions["area_rule"] == "crowdpose"
    # the records the loader makes carry the same area (0.53 * w * h of the clipped box)
    rec = source.records[0]
    assert rec.area == pytest.approx(0.53 * rec.bbox[2] * rec.bbox[3])
    # an explicit rule wins over the data set's
    source = resolve_source("crowdpose", tmp_path, input_size=(192, 256),
                            metric_options={"area_rule": "bbox"})
    assert source.make_metric().conventions["area_rule"] == "bbox"


def test_the_rule_is_named_under_the_table_unless_it_is_the_jsons():
    from robustpose.reports.tables import metric_settings_text

    settings = {"score_mode": "bbox_keypoint", "keypoint_score_thr": 0.2,
                "nms_mode": "oks_nms", "nms_thr": 0.9, "area_rule": "crowdpose"}
    card = {"conventions": {"metric_settings": settings}}
    assert metric_settings_text(card).endswith("(nms_thr 0.9), area_rule crowdpose")
    settings["area_rule"] = "json"  # COCO's own areas: the line the docs show, unchanged
    assert metric_settings_text(card) == ("score_mode bbox_keypoint (keypoint_score_thr 0.2), "
                                          "nms_mode oks_nms (nms_thr 0.9)")
