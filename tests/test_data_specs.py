"""Keypoint specs: presets against pycocotools and the real json categories."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robustpose.data import get_spec, spec_from_category
from robustpose.data.coco import guess_spec


def _category(path):
    return json.loads(path.read_text())["categories"][0]


@pytest.mark.parametrize("name,k", [("coco", 17), ("ochuman", 17), ("mpii", 16),
                                    ("crowdpose", 14), ("rhd", 21), ("onehand10k", 21),
                                    ("freihand", 21), ("coco_wholebody_hand", 21)])
def test_presets_have_consistent_sizes(name, k):
    spec = get_spec(name)
    assert spec.num_keypoints == k and spec.sigmas.shape == (k,)
    perm = spec.flip_permutation()
    assert np.array_equal(perm[perm], np.arange(k))  # swapping twice is the identity


def test_coco_sigmas_equal_pycocotools_defaults():
    from pycocotools.cocoeval import Params

    assert np.allclose(get_spec("coco").sigmas, Params(iouType="keypoints").kpt_oks_sigmas)


def test_coco_spec_matches_json_categories(data_root):
    spec = get_spec("coco")
    for name in ("coco_val_mini", "coco_train_mini", "coco_mmpose"):
        cat = _category(data_root / name / "annotations.json")
        assert spec.keypoint_names == cat["keypoints"]
        assert spec.skeleton == [(a - 1, b - 1) for a, b in cat["skeleton"]]


def test_flip_pairs_pair_left_with_right():
    for name in ("coco", "mpii", "crowdpose"):
        spec = get_spec(name)
        for a, b in spec.flip_pairs:
            na, nb = spec.keypoint_names[a], spec.keypoint_names[b]
            assert na.replace("left", "right") == nb or nb.replace("left", "right") == na


def test_rhd_spec_names_match_json_and_sigmas_are_documented_default(data_root):
    cat = _category(data_root / "rhd_mini" / "annotations.json")
    # the 21 hand names are shared with the palm-first sets: the json's info says "RHD"
    spec = guess_spec(cat, known_name="RHD")
    assert spec.name == "rhd" and spec.keypoint_names == cat["keypoints"]
    assert spec.flip_pairs == []
    # user sigmas replace the default
    assert np.allclose(get_spec("rhd", sigmas=[0.025] * 21).sigmas, 0.025)


def test_rhd_skeleton_links_wrist_to_finger_bases(data_root):
    """RHD lists fingers tip first: the wrist joins finger4, checked on real keypoints."""
    ann = json.loads((data_root / "rhd_mini" / "annotations.json").read_text())["annotations"]
    kpts = np.asarray(ann[0]["keypoints"], dtype=float)
    spec = get_spec("rhd")
    bone = [np.linalg.norm(kpts[a, :2] - kpts[b, :2]) for a, b in spec.skeleton]
    wrist_to_tip = [np.linalg.norm(kpts[0, :2] - kpts[1 + 4 * f, :2]) for f in range(5)]
    wrist_to_base = [bone[4 * f] for f in range(5)]
    assert all(b < t for b, t in zip(wrist_to_base, wrist_to_tip))


def test_spec_from_category_with_user_sigmas(data_root):
    cat = _category(data_root / "coco_val_mini" / "annotations.json")
    spec = spec_from_category(cat, sigmas=[0.05] * 17, name="mine")
    assert spec.name == "mine" and spec.num_keypoints == 17
    assert sorted(spec.flip_pairs) == sorted(get_spec("coco").flip_pairs)
    with pytest.raises(ValueError, match="no OKS sigmas"):
        spec_from_category(cat)
    with pytest.raises(ValueError, match="3 sigmas for 17"):
        spec_from_category(cat, sigmas=[0.1] * 3)


def test_unknown_preset_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown keypoint set 'foo'"):
        get_spec("foo")


def test_crowdpose_json_names_pick_the_preset():
    from robustpose.data.specs import CROWDPOSE_NAMES

    names = [n if n != "top_head" else "head" for n in CROWDPOSE_NAMES]  # official json
    spec = guess_spec({"name": "person", "keypoints": names, "skeleton": []})
    assert spec.name == "crowdpose" and spec.num_keypoints == 14
