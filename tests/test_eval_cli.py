"""`robustpose evaluate`: JSON keys per format, agreement with pycocotools, bad inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robustpose.cli import main


def pycocotools_direct(ann_file, res_file):
    """The official API on the two files, nothing of the toolkit in between."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        ev = COCOeval(gt, gt.loadRes(str(res_file)), "keypoints")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return {"AP": ev.stats[0], "AR": ev.stats[5]}


def run_cli(capsys, *args):
    rc = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def coco_results(ann_file, noise=0.0, seed=0):
    data = json.loads(ann_file.read_text())
    rng = np.random.default_rng(seed)
    res = []
    for a in data["annotations"]:
        if a.get("num_keypoints", 0) == 0 or a.get("iscrowd", 0):
            continue
        kp = np.array(a["keypoints"], dtype=float).reshape(-1, 3)
        kp[:, :2] += noise * rng.standard_normal((len(kp), 2))
        kp[:, 2] = 1.0
        res.append({"image_id": a["image_id"], "category_id": 1,
                    "keypoints": kp.reshape(-1).tolist(), "score": float(rng.uniform(0.5, 1))})
    return res


def test_coco_json_keys_and_pycocotools_agreement(data_root, tmp_path, capsys):
    ann = data_root / "coco_val_mini" / "annotations.json"
    res = tmp_path / "res.json"
    res.write_text(json.dumps(coco_results(ann, noise=3.0, seed=1)))
    rc, out, err = run_cli(capsys, "--annotations", ann, "--results", res, "--json")
    assert rc == 0, err
    stats = json.loads(out)   # exactly one JSON object on stdout
    assert {"AP", "AP50", "AP75", "APm", "APl", "AR"} <= set(stats)
    direct = pycocotools_direct(ann, res)
    assert stats["AP"] == direct["AP"] and stats["AR"] == direct["AR"]
    assert 0.0 < stats["AP"] < 1.0
    rc, out, _ = run_cli(capsys, "--annotations", ann, "--results", res)
    assert rc == 0 and out.splitlines()[0].split()[0] == "AP"


def test_coco_ground_truth_as_results_gives_ap_1(data_root, tmp_path, capsys):
    ann = data_root / "coco_mmpose" / "annotations.json"
    res = tmp_path / "res.json"
    res.write_text(json.dumps(coco_results(ann)))
    rc, out, _ = run_cli(capsys, "--annotations", ann, "--results", res, "--json")
    assert rc == 0 and json.loads(out)["AP"] == pytest.approx(1.0)


def test_mpii_json_keys_both_layouts(data_root, tmp_path, capsys):
    ann = data_root / "mpii_mini" / "annotations.json"
    people = json.loads(ann.read_text())
    hrnet = [{"image": p["image"], "center": p["center"], "scale": p["scale"],
              "joints": p["joints"]} for p in people]
    coco_style = [{"index": i, "keypoints": np.concatenate(
        [np.array(p["joints"]), np.ones((16, 1))], axis=1).reshape(-1).tolist()}
        for i, p in reversed(list(enumerate(people)))]
    for layout in (hrnet, coco_style):
        res = tmp_path / "mpii_res.json"
        res.write_text(json.dumps(layout))
        rc, out, err = run_cli(capsys, "--annotations", ann, "--results", res, "--format", "mpii", "--json")
        assert rc == 0, err
        stats = json.loads(out)
        assert stats["PCKh"] == 100.0 and stats["PCKh@0.1"] == 100.0
        for key in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle",
                    "right_ankle", "left_wrist", "head_top@0.1"):
            assert key in stats
        assert stats["threshold_test"] == "<="


def test_pck_json_keys(data_root, tmp_path, capsys):
    ann = data_root / "rhd_mini" / "annotations.json"
    data = json.loads(ann.read_text())
    res = tmp_path / "rhd_res.json"
    res.write_text(json.dumps([{"image_id": a["image_id"], "keypoints": np.array(
        a["keypoints"]).reshape(-1).tolist()} for a in data["annotations"]]))
    rc, out, err = run_cli(capsys, "--annotations", ann, "--results", res, "--format", "pck", "--json")
    assert rc == 0, err
    stats = json.loads(out)
    assert (stats["PCK"], stats["AUC"], stats["EPE"]) == (1.0, 1.0, 0.0)


# --- bad input: one line naming the file and the problem, rc 1, no traceback -----------

def _bad(capsys, tmp_path, ann, content, fmt="coco", raw=False):
    res = tmp_path / "bad_results.json"
    res.write_text(content if raw else json.dumps(content))
    rc, out, err = run_cli(capsys, "--annotations", ann, "--results", res, "--format", fmt)
    assert rc == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "bad_results.json" in err
    return err


def test_nan_coordinates_are_reported_with_the_entry(data_root, tmp_path, capsys):
    ann = data_root / "coco_val_mini" / "annotations.json"
    res = coco_results(ann)
    res[5]["keypoints"][7] = float("nan")     # json.dumps writes NaN, json.load reads it back
    err = _bad(capsys, tmp_path, ann, res)
    assert "entry 5" in err and f"image_id {res[5]['image_id']}" in err and "NaN at keypoint 2 y" in err
    mpii = data_root / "mpii_mini" / "annotations.json"
    people = json.loads(mpii.read_text())
    layout = [{"image": p["image"], "joints": p["joints"]} for p in people]
    layout[3]["joints"][2][0] = float("inf")
    err = _bad(capsys, tmp_path, mpii, layout, fmt="mpii")
    assert "entry 3" in err and "inf at keypoint 2 x" in err


def test_other_bad_results(data_root, tmp_path, capsys):
    ann = data_root / "coco_val_mini" / "annotations.json"
    res = coco_results(ann)
    res[2]["image_id"] = 123456789
    assert "image id not in annotations.json" in _bad(capsys, tmp_path, ann, res)
    res = coco_results(ann)
    res[0]["keypoints"] = res[0]["keypoints"][:42]
    assert "has 42 values, expected 51" in _bad(capsys, tmp_path, ann, res)
    assert "malformed JSON" in _bad(capsys, tmp_path, ann, '[{"image_id": 1,', raw=True)
    assert "JSON list of objects" in _bad(capsys, tmp_path, ann, {"a": 1})
    res = coco_results(ann)
    res[1]["keypoints"][4] = None
    assert "non-number" in _bad(capsys, tmp_path, ann, res)
    rhd = data_root / "rhd_mini" / "annotations.json"
    assert "image id not in" in _bad(capsys, tmp_path, rhd, [{"image_id": 5, "keypoints": [0] * 63}], fmt="pck")
    mpii = data_root / "mpii_mini" / "annotations.json"
    err = _bad(capsys, tmp_path, mpii, [{"image": "wrong.jpg", "joints": [[0, 0]] * 16}], fmt="mpii")
    assert "does not match person 0" in err


def test_bad_annotation_files(tmp_path, capsys, data_root):
    ann = tmp_path / "gt.json"
    data = json.loads((data_root / "coco_mmpose" / "annotations.json").read_text())
    data["annotations"][3]["keypoints"] = data["annotations"][3]["keypoints"][:-3]
    ann.write_text(json.dumps(data))
    res = tmp_path / "r.json"
    res.write_text("[]")
    rc, _, err = run_cli(capsys, "--annotations", ann, "--results", res)
    assert rc == 1 and "gt.json" in err and "has 48 values, expected 51" in err
    rc, _, err = run_cli(capsys, "--annotations", tmp_path / "missing.json", "--results", res)
    assert rc == 1 and "missing.json" in err and "not found" in err
    rc, _, err = run_cli(capsys, "--annotations", data_root / "rhd_mini" / "annotations.json",
                         "--results", res, "--sigmas", "0.1,0.2")
    assert rc == 1 and "2 sigmas given for 21 keypoints" in err
