"""MPII PCKh (official conventions) and hand PCK / AUC / EPE on the real mini sets."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robustpose.evaluation import PCKhMetric, PCKMetric


def mpii(data_root):
    path = data_root / "mpii_mini" / "annotations.json"
    return path, json.loads(path.read_text())


def test_ground_truth_fed_back_gives_pckh_100(data_root):
    path, people = mpii(data_root)
    metric = PCKhMetric(path, pred_offset=0.0)
    metric.accumulate(np.array([p["joints"] for p in people]), {"index": np.arange(len(people))})
    stats = metric.stats()
    assert stats["PCKh"] == 100.0 and stats["PCKh@0.1"] == 100.0
    assert stats["threshold_test"] == "<="
    # 5 people; joints 0 and 5 (ankles) are unannotated for two of them
    assert stats["joint_counts"] == [3, 5, 5, 5, 5, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5]


def test_hand_computed_pckh_case(data_root):
    """Person 0 (head size 117.96 px): right wrist off by 0.6 head sizes (a miss at 0.5),
    head top off by 0.3 (a hit at 0.5, a miss at 0.1), pelvis off by 2 (a miss that the
    Mean must ignore). Visible joints outside pelvis/thorax: 26 + 40 = 66."""
    path, people = mpii(data_root)
    joints = np.array([p["joints"] for p in people], dtype=float)
    h = people[0]["head_size"]
    joints[0, 10, 0] += 0.6 * h          # right_wrist
    joints[0, 9, 1] -= 0.3 * h           # head_top
    joints[0, 6] += [2 * h, 0]           # pelvis
    # the toolkit's 0-based predictions: pred_offset=1 adds the px back (HRNet's preds + 1)
    metric = PCKhMetric(path)
    metric.accumulate(joints - 1.0)
    s = metric.stats()
    assert s["right_wrist"] == pytest.approx(80.0)
    assert s["Wrist"] == pytest.approx(90.0)          # (left 100 + right 80) / 2
    assert s["pelvis"] == pytest.approx(80.0)
    assert s["PCKh"] == pytest.approx(100 * 65 / 66)   # 98.4848...
    assert s["head_top"] == 100.0 and s["head_top@0.1"] == pytest.approx(80.0)
    assert s["PCKh@0.1"] == pytest.approx(100 * 64 / 66)
    assert s["Head"] == s["head_top"]


def _write_single_person(tmp_path, shift_px, head_size=10.0):
    joints = [[100.0 + 10 * j, 200.0] for j in range(16)]
    path = tmp_path / "mpii_one.json"
    path.write_text(json.dumps([{"image": "a.jpg", "joints": joints, "joints_vis": [1] * 16,
                                 "center": [150.0, 200.0], "scale": 1.0, "head_size": head_size}]))
    pred = np.array(joints)[None].copy()
    pred[0, 0, 0] += shift_px
    return path, pred


def test_threshold_test_le_vs_lt_at_exactly_half_a_head(tmp_path):
    path, pred = _write_single_person(tmp_path, shift_px=5.0)   # error = 5 / 10 = 0.5
    le, lt = PCKhMetric(path, pred_offset=0), PCKhMetric(path, pred_offset=0, threshold_test="<")
    le.accumulate(pred), lt.accumulate(pred)
    assert le.stats()["right_ankle"] == 100.0          # HRNet: <= 0.5 is a hit
    assert lt.stats()["right_ankle"] == 0.0             # mmpose: < 0.5 is a miss
    assert lt.stats()["threshold_test"] == "<"


def test_hrnet_mean_at_0_1_uses_the_0_11_bin(tmp_path):
    path, pred = _write_single_person(tmp_path, shift_px=1.05)  # error 0.105
    m = PCKhMetric(path, pred_offset=0)
    m.accumulate(pred)
    s = m.stats()
    assert s["right_ankle@0.1"] == 0.0
    assert s["PCKh@0.1"] == pytest.approx(100 * 13 / 14)
    assert s["PCKh@0.1_hrnet_bin"] == 100.0


def test_head_box_and_gt_valid_mat(tmp_path, data_root):
    """head size = 0.6 x head-box diagonal, from a headbox field or an official-layout .mat."""
    from scipy.io import savemat
    path, people = mpii(data_root)
    joints = np.array([p["joints"] for p in people], dtype=float)
    vis = np.array([p["joints_vis"] for p in people])
    boxes = []
    for p in people:  # a head box whose 0.6 x diagonal equals the stored head size
        d = p["head_size"] / 0.6
        boxes.append([50.0, 60.0, 50.0 + 0.6 * d, 60.0 + 0.8 * d])
    boxed = [dict(p, headbox=b) for p, b in zip(people, boxes)]
    for p in boxed:
        del p["head_size"]
    jpath = tmp_path / "boxed.json"
    jpath.write_text(json.dumps(boxed))
    mpath = tmp_path / "gt_valid.mat"
    b = np.array(boxes)
    savemat(mpath, {"jnt_missing": (1 - vis).T, "pos_gt_src": np.transpose(joints, (1, 2, 0)),
                    "headboxes_src": np.stack([b[:, :2].T, b[:, 2:].T]),
                    "dataset_joints": np.array([["x"]] * 16, dtype=object)})
    pred = joints.copy()
    pred[:, 10, 0] += 0.45 * np.array([p["head_size"] for p in people])  # just inside 0.5
    pred[1, 11, 1] += 0.55 * people[1]["head_size"]                        # just outside
    results = []
    for src in (path, jpath, mpath):
        m = PCKhMetric(src, pred_offset=0)
        m.accumulate(pred)
        results.append(m.stats())
    for key in ("PCKh", "PCKh@0.1", "right_wrist", "right_elbow"):
        assert results[0][key] == pytest.approx(results[1][key]) == pytest.approx(results[2][key])
    assert results[0]["right_elbow"] == pytest.approx(80.0)


def test_pckh_bad_predictions(data_root):
    path, people = mpii(data_root)
    joints = np.array([p["joints"] for p in people], dtype=float)
    m = PCKhMetric(path)
    bad = joints.copy()
    bad[2, 4, 1] = np.nan
    with pytest.raises(ValueError, match=r"mpii_mini.*NaN.*row 2"):
        m.accumulate(bad)
    m.accumulate(joints[:3])
    with pytest.raises(ValueError, match="2 of 5 people have no prediction"):
        m.stats()
    partial = PCKhMetric(path, allow_missing=True, pred_offset=0)
    partial.accumulate(joints[:3])
    assert partial.stats()["num_people"] == 3


# --- PCK / AUC / EPE (hands) -------------------------------------------------------------

def rhd(data_root):
    path = data_root / "rhd_mini" / "annotations.json"
    data = json.loads(path.read_text())
    kps = np.array([np.array(a["keypoints"], dtype=float).reshape(21, 3) for a in data["annotations"]])
    return path, data, kps


def test_pck_auc_epe_ground_truth_and_known_shift(data_root):
    path, data, kps = rhd(data_root)
    ids = [a["image_id"] for a in data["annotations"]]
    boxes = np.array([a["bbox"] for a in data["annotations"]])
    m = PCKMetric(path)
    m.accumulate(kps, {"image_id": ids, "bbox": boxes})
    s = m.stats()
    assert (s["PCK"], s["AUC"], s["EPE"]) == (1.0, 1.0, 0.0)
    # every keypoint 5 px off: EPE 5; PCK@0.2 box size is 1 (boxes are >= 48 px: 0.2 x 48 > 5);
    # AUC (RHD EvalUtil): thresholds linspace(0, 30, 20) -> 0 for t < 5 (4 of them), 1 after;
    # trapezoid = (0.5 + 15) * (30 / 19) / 30 = 15.5 / 19
    m = PCKMetric(path)
    m.accumulate(kps + [3.0, 4.0, 0.0], {"image_id": ids})
    s = m.stats()
    assert s["EPE"] == pytest.approx(5.0)
    assert s["PCK"] == 1.0
    assert s["AUC"] == pytest.approx(15.5 / 19)
    mm = PCKMetric(path, auc_method="mmpose")  # mmpose: 20 thresholds 0, 1.5, ..., 28.5; 16 >= 5
    mm.accumulate(kps + [3.0, 4.0, 0.0], {"image_id": ids})
    assert mm.stats()["AUC"] == pytest.approx(16 / 20)


def test_pck_box_normalisation(data_root):
    """The smallest RHD box is 59.64 x 48.12 px: normaliser max(w, h) = 59.64, PCK@0.2
    radius 11.93 px. A 12 px error there misses; the bigger boxes still hit."""
    path, data, kps = rhd(data_root)
    ids = [a["image_id"] for a in data["annotations"]]
    m = PCKMetric(path)
    m.accumulate(kps + [12.0, 0.0, 0.0], {"image_id": ids})
    s = m.stats()
    # instance 2 misses all its visible joints; instances 0, 1 (max side >= 118 px) hit
    vis = kps[:, :, 2] > 0
    per_joint = [(vis[:2, j].sum()) / vis[:, j].sum() for j in range(21) if vis[:, j].any()]
    assert s["PCK"] == pytest.approx(np.mean(per_joint))
    assert s["PCK"] < 1.0


def test_mpii_records_of_the_data_package_give_pckh_100(data_root):
    """robustpose.data makes MPII joints 0-based (HRNet); the metric's default
    pred_offset=1 puts them back into the 1-based MATLAB frame of the ground truth."""
    from robustpose.data import load_mpii_records
    path = data_root / "mpii_mini" / "annotations.json"
    records = load_mpii_records(path, data_root / "mpii_mini" / "images")
    metric = PCKhMetric(path)
    metric.accumulate(np.stack([r.keypoints for r in records]),
                      {"index": np.array([r.extra["index"] for r in records])})
    s = metric.stats()
    assert s["PCKh"] == 100.0


def test_records_as_ground_truth_and_missing_people(data_root):
    """The benchmark passes the (possibly subset) records themselves; a person whose image
    was skipped is an error by default, dropped with missing='skip', a miss with 'miss'."""
    from robustpose.data import load_mpii_records
    path = data_root / "mpii_mini" / "annotations.json"
    records = load_mpii_records(path, data_root / "mpii_mini" / "images")[1:]  # a subset
    kps = np.stack([r.keypoints for r in records])
    m = PCKhMetric(records)            # same 0-based frame: offset 0 by default
    assert m.pred_offset == 0.0
    m.accumulate(kps, {"index": np.arange(len(records))})
    assert m.stats()["PCKh"] == 100.0 and m.stats()["num_people"] == 4
    partial = {"index": np.array([0, 1, 2])}
    with pytest.raises(ValueError, match="1 of 4 people have no prediction"):
        strict = PCKhMetric(records)
        strict.accumulate(kps[:3], partial)
        strict.stats()
    skip, miss = PCKhMetric(records, missing="skip"), PCKhMetric(records, missing="miss")
    for metric in (skip, miss):
        metric.accumulate(kps[:3], partial)
    assert skip.stats()["PCKh"] == 100.0 and skip.stats()["num_missing"] == 1
    vis = np.stack([r.keypoints[:, 2] > 0 for r in records])
    keep = np.ones(16, bool)
    keep[[6, 7]] = False
    expected = 100 * vis[:3][:, keep].sum() / vis[:, keep].sum()
    assert miss.stats()["PCKh"] == pytest.approx(expected)


@pytest.mark.parametrize("noise_px", [15.0, 30.0])
def test_training_and_benchmark_pckh_agree(data_root, noise_px):
    """Training validation scores the HRNet json (1-based, +1 px on predictions); the
    benchmark scores the loaded records (0-based, offset 0): the same predictions give the
    same PCKh both ways, at thresholds 0.5 and 0.1."""
    from robustpose.data.mpii import load_mpii_records

    path = data_root / "mpii_mini" / "annotations.json"
    records = load_mpii_records(path, data_root / "mpii_mini" / "images")
    rng = np.random.default_rng(0)
    pred = np.stack([r.keypoints for r in records]).astype(float)
    pred[:, :, :2] += rng.normal(0.0, noise_px, pred[:, :, :2].shape)
    pred[:, :, 2] = 1.0
    meta = {"index": np.arange(len(records))}
    from_file, from_records = PCKhMetric(path), PCKhMetric(records)
    from_file.accumulate(pred, meta)
    from_records.accumulate(pred, meta)
    a, b = from_file.stats(), from_records.stats()
    assert 0.0 < a["PCKh"] < 100.0  # the noise makes misses: the comparison can fail
    assert (a["PCKh"], a["PCKh@0.1"]) == (b["PCKh"], b["PCKh@0.1"])
