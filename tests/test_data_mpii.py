"""MPII (HRNet json layout) on the real mini set; head sizes from the field or gt_valid.mat."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robustpose.data import load_mpii_records


def _paths(data_root):
    d = data_root / "mpii_mini"
    return d / "annotations.json", d / "images"


def test_hrnet_center_scale_and_zero_based_joints(data_root):
    ann, images = _paths(data_root)
    entries = json.loads(ann.read_text())
    records = load_mpii_records(ann, images)
    assert len(records) == len(entries) == 5
    for r, e in zip(records, entries):
        s = e["scale"]
        assert np.allclose(r.center, [e["center"][0] - 1, e["center"][1] + 15 * s - 1], atol=1e-3)
        assert np.allclose(r.scale, [1.25 * s, 1.25 * s], atol=1e-5)
        assert np.allclose(r.keypoints[:, :2], np.asarray(e["joints"]) - 1)
        assert np.array_equal(r.keypoints[:, 2], e["joints_vis"])
        assert r.extra["head_size"] == pytest.approx(e["head_size"])
        assert r.image_path.exists() and r.image_id == int(e["image"][:-4])
        # the box is the square crop window around the centre
        assert np.allclose(r.bbox[:2] + r.bbox[2:] / 2, r.center, atol=1e-3)


def test_head_sizes_from_gt_valid_mat(tmp_path, data_root):
    from scipy.io import savemat

    ann, images = _paths(data_root)
    n = 5
    tl = np.stack([np.arange(n) * 10.0, np.arange(n) * 5.0])          # 2 x N
    br = tl + np.stack([np.full(n, 30.0), np.full(n, 40.0)])           # 30 x 40 head boxes
    missing = np.zeros((16, n))
    missing[3, 2] = 1
    mat = tmp_path / "gt_valid.mat"
    savemat(mat, {"headboxes_src": np.stack([tl, br]), "jnt_missing": missing})
    records = load_mpii_records(ann, images, gt_mat=mat)
    for r in records:
        assert r.extra["head_size"] == pytest.approx(0.6 * 50.0)  # 0.6 x diagonal
    assert records[2].extra["eval_visible"][3] == 0 and records[2].extra["eval_visible"].sum() == 15

    savemat(mat, {"headboxes_src": np.zeros((2, 2, 3))})
    with pytest.raises(ValueError, match="3 head boxes but .* has 5 persons"):
        load_mpii_records(ann, images, gt_mat=mat)


def test_bad_mpii_entries(tmp_path, data_root):
    ann, images = _paths(data_root)
    entries = json.loads(ann.read_text())
    entries[1]["joints"] = entries[1]["joints"][:15]
    bad = tmp_path / "a.json"
    bad.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="entry 1 has joints of shape") as err:
        load_mpii_records(bad, images)
    assert str(bad) in str(err.value)
    bad.write_text("[]")
    with pytest.raises(ValueError, match="empty dataset"):
        load_mpii_records(bad, images)
    entries = json.loads(ann.read_text())
    entries[0]["image"] = "../../etc/x.jpg"
    bad.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="escapes the image root"):
        load_mpii_records(bad, images)
