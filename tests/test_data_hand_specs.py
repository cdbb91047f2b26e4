"""Keypoint conventions are never guessed from a count (issue 11, item 3).

The 21 hand names are shared by RHD (each finger tip first) and OneHand10K / FreiHAND /
COCO-WholeBody hand (palm first): the same names carry reversed sigmas, so the preset
must come from the set's known name (json ``info.description``) or ``--spec``, else the
run is refused with one line. Fixtures are written by the tests from rhd_mini's real hands.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json

import numpy as np
import pytest

from robustpose.cli import main
from robustpose.data import get_spec, load_coco_records, spec_for_annotations
from robustpose.data.specs import HAND_NAMES, preset_for_names
from robustpose.evaluation.coco import load_coco_ground_truth

#: RHD (tip-first) joint index -> the same joint's index in palm-first order
PALM_FIRST = [0] + [1 + 4 * f + (3 - i) for f in range(5) for i in range(4)]


def hand_json(data_root, tmp_path, order: str, description: str | None, copies: int = 6,
              name: str = "hands.json"):
    """rhd_mini's 3 real hands x ``copies`` images, listed tip first (``order='tip'``, as
    RHD) or palm first (``'palm'``, as OneHand10K) under the same 21 names."""
    src = json.loads((data_root / "rhd_mini" / "annotations.json").read_text())
    images, anns = [], []
    for c in range(copies):
        for img, ann in zip(src["images"], src["annotations"]):
            kp = np.asarray(ann["keypoints"], dtype=float).reshape(21, 3)
            if order == "palm":
                kp = kp[PALM_FIRST]
            images.append({"id": len(images) + 1, "file_name": img["file_name"],
                           "width": img["width"], "height": img["height"]})
            anns.append({"id": len(anns) + 1, "image_id": images[-1]["id"], "category_id": 1,
                         "iscrowd": 0, "bbox": ann["bbox"], "area": ann["area"],
                         "num_keypoints": 21, "keypoints": kp.reshape(-1).tolist()})
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "hand", "keypoints": src["categories"][0]["keypoints"],
                            "skeleton": src["categories"][0]["skeleton"]}]}
    if description is not None:
        data["info"] = {"description": description}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path, data


def predictions(data, noise_sigmas=None, c=0.5, seed=0):
    """GT as results; with ``noise_sigmas`` each joint j moves by N(0, c * 2 sigma_j *
    sqrt(area)) px per axis (seeded), so every joint's OKS term is alike under those sigmas."""
    rng = np.random.default_rng(seed)
    out = []
    for a in data["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=float).reshape(-1, 3)
        if not (kp[:, 2] > 0).any():  # COCOeval ignores such a person: no prediction
            continue
        if noise_sigmas is not None:
            scale = c * 2 * np.asarray(noise_sigmas)[:, None] * np.sqrt(a["area"])
            kp[:, :2] += scale * rng.standard_normal((len(kp), 2))
        out.append({"image_id": a["image_id"], "category_id": 1,
                    "keypoints": kp.reshape(-1).tolist(), "score": 1.0})
    return out


def evaluate(capsys, tmp_path, ann, results, *extra):
    res = tmp_path / "results.json"
    res.write_text(json.dumps(results))
    rc = main(["evaluate", "--annotations", str(ann), "--results", str(res), "--json",
               *map(str, extra)])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else None), err


def pycocotools_ap(ann, results, sigmas):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "keypoints")  # loadRes edits them
        ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return float(ev.stats[0])


def one_line_refusal(err: str) -> None:
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--spec" in err and "--sigmas" in err


# --- presets ------------------------------------------------------------------------

def test_hand_presets_share_names_but_not_sigma_order():
    rhd, onehand = get_spec("rhd"), get_spec("onehand10k")
    assert rhd.keypoint_names == onehand.keypoint_names == HAND_NAMES
    # the same joint (palm-first index j) has the same sigma in both presets
    assert np.allclose(rhd.sigmas[PALM_FIRST], onehand.sigmas)
    assert not np.allclose(rhd.sigmas, onehand.sigmas)
    for name in ("freihand", "coco_wholebody_hand", "coco-wholebody-hand"):
        assert np.allclose(get_spec(name).sigmas, onehand.sigmas)
    # skeletons: the wrist joins finger4 in RHD, finger1 in the palm-first sets
    assert (0, 4) in rhd.skeleton and (0, 1) in onehand.skeleton
    assert preset_for_names(HAND_NAMES) is None  # shared names: no unique preset


def test_both_skeletons_draw_the_same_bones_on_real_hands(data_root, tmp_path):
    """rhd_mini's hands as listed (tip first) with the rhd skeleton and reordered palm first
    with the onehand10k skeleton: the same 20 bone lengths (the presets agree on anatomy)."""
    _, tip = hand_json(data_root, tmp_path, "tip", None, copies=1, name="tip.json")
    _, palm = hand_json(data_root, tmp_path, "palm", None, copies=1, name="palm.json")

    def bones(data, spec):
        kps = [np.asarray(a["keypoints"]).reshape(21, 3) for a in data["annotations"]]
        return sorted(round(float(np.linalg.norm(k[a, :2] - k[b, :2])), 6)
                      for k in kps for a, b in spec.skeleton)

    assert bones(tip, get_spec("rhd")) == bones(palm, get_spec("onehand10k"))
    assert bones(tip, get_spec("rhd")) != bones(tip, get_spec("onehand10k"))


# --- resolution: loader and evaluate agree ------------------------------------------

@pytest.mark.parametrize("order,description,expected", [
    ("tip", "RHD", "rhd"), ("palm", "OneHand10K", "onehand10k"),
    ("palm", "FreiHand", "freihand"), ("tip", None, None), ("palm", None, None),
    ("palm", "my hands", None)])
def test_hand_sets_resolve_by_known_name_or_are_refused(data_root, tmp_path, order,
                                                        description, expected):
    path, data = hand_json(data_root, tmp_path, order, description)
    images = data_root / "rhd_mini" / "images"
    if expected is None:
        with pytest.raises(ValueError) as info:
            load_coco_records(path, images, aspect_ratio=1.0)
        one_line_refusal(str(info.value))
        assert str(path) in str(info.value) and "rhd (tip first)" in str(info.value)
        with pytest.raises(ValueError, match="--spec"):
            load_coco_ground_truth(path)
        # the ways out: --spec, or the user's own sigmas
        records, spec = load_coco_records(path, images, aspect_ratio=1.0,
                                          spec="rhd" if order == "tip" else "onehand10k")
        assert spec.name == ("rhd" if order == "tip" else "onehand10k") and len(records) == 18
        _, own = load_coco_records(path, images, aspect_ratio=1.0, sigmas=[0.03] * 21)
        assert np.allclose(own.sigmas, 0.03)
    else:
        records, spec = load_coco_records(path, images, aspect_ratio=1.0)
        assert spec.name == expected and len(records) == 18
        assert np.allclose(load_coco_ground_truth(path).sigmas, get_spec(expected).sigmas)


def test_rhd_mini_still_resolves_to_rhd(data_root):
    ann = data_root / "rhd_mini" / "annotations.json"
    spec = spec_for_annotations(json.loads(ann.read_text()))
    assert spec.name == "rhd"
    assert np.allclose(load_coco_ground_truth(ann).sigmas, get_spec("rhd").sigmas)


@pytest.mark.parametrize("order,description,preset", [("tip", "RHD", "rhd"),
                                                      ("palm", "OneHand10K", "onehand10k"),
                                                      ("palm", None, "onehand10k")])
def test_ground_truth_fed_back_scores_ap_1(data_root, tmp_path, capsys, order, description,
                                           preset):
    path, data = hand_json(data_root, tmp_path, order, description)
    extra = ("--spec", preset) if description is None else ()
    rc, stats, err = evaluate(capsys, tmp_path, path, predictions(data), *extra)
    assert rc == 0, err
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)


def test_refused_in_evaluate_with_one_line(data_root, tmp_path, capsys):
    path, data = hand_json(data_root, tmp_path, "palm", None)
    rc, _, err = evaluate(capsys, tmp_path, path, predictions(data))
    assert rc == 1
    one_line_refusal(err)


def test_reversed_sigmas_change_ap(data_root, tmp_path, capsys):
    """A OneHand10K-order set scored with RHD's sigmas (what any 21-keypoint set got before)
    vs its own preset: per-joint perturbed predictions give a different AP, and each equals
    pycocotools run directly with that sigma list."""
    path, data = hand_json(data_root, tmp_path, "palm", "OneHand10K", copies=8)
    onehand, rhd = get_spec("onehand10k").sigmas, get_spec("rhd").sigmas
    preds = predictions(data, noise_sigmas=onehand, seed=3)
    rc, right, err = evaluate(capsys, tmp_path, path, preds)
    assert rc == 0, err
    rc, wrong, err = evaluate(capsys, tmp_path, path, preds, "--spec", "rhd")
    assert rc == 0, err
    assert right["AP"] == pytest.approx(pycocotools_ap(path, preds, onehand), abs=1e-12)
    assert wrong["AP"] == pytest.approx(pycocotools_ap(path, preds, rhd), abs=1e-12)
    assert abs(right["AP"] - wrong["AP"]) > 0.01, (right["AP"], wrong["AP"])
    # --sigmas beats --spec
    rc, own, err = evaluate(capsys, tmp_path, path, preds, "--spec", "rhd", "--sigmas",
                            ",".join(map(str, onehand)))
    assert rc == 0 and own["AP"] == right["AP"]


# --- no count-only guesses for bodies either ----------------------------------------

def crowdpose_json(data_root, tmp_path):
    """coco_val_mini's people as CrowdPose's 14 keypoints under the official json's names
    ('head', not 'top_head'), without ``area``, with ``crowdIndex``."""
    src = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    names = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
             "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
             "right_ankle", "head", "neck"]
    anns = []
    for a in src["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=float).reshape(17, 3)
        if a.get("iscrowd") or not (kp[:, 2] > 0).any():
            continue
        neck = (kp[5] + kp[6]) / 2 if kp[5, 2] and kp[6, 2] else np.zeros(3)
        body = np.concatenate([kp[5:17], kp[:1], neck[None]])
        anns.append({"id": a["id"], "image_id": a["image_id"], "category_id": 1, "iscrowd": 0,
                     "bbox": a["bbox"], "num_keypoints": int((body[:, 2] > 0).sum()),
                     "keypoints": body.reshape(-1).tolist()})
    images = [dict(img, crowdIndex=0.05 * i) for i, img in enumerate(src["images"])]
    path = tmp_path / "crowdpose_val.json"
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}]}
    path.write_text(json.dumps(data))
    return path, data


def test_crowdpose_head_alias_works_in_evaluate_without_sigmas(data_root, tmp_path, capsys):
    path, data = crowdpose_json(data_root, tmp_path)
    assert np.allclose(load_coco_ground_truth(path).sigmas, get_spec("crowdpose").sigmas)
    rc, stats, err = evaluate(capsys, tmp_path, path, predictions(data))
    assert rc == 0, err
    assert stats["AP"] == pytest.approx(1.0)
    _, spec = load_coco_records(path, data_root / "coco_val_mini" / "images", aspect_ratio=0.75)
    assert spec.name == "crowdpose"  # loader and evaluate: one rule


def test_unknown_17_names_are_not_scored_as_coco(data_root, tmp_path, capsys):
    data = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    data["categories"][0]["keypoints"] = [f"point{i}" for i in range(17)]
    path = tmp_path / "custom17.json"
    path.write_text(json.dumps(data))
    results = predictions(data)
    rc, _, err = evaluate(capsys, tmp_path, path, results)
    assert rc == 1 and "no preset has the 17 keypoint names" in err
    one_line_refusal(err)
    with pytest.raises(ValueError, match="--spec"):
        load_coco_records(path, data_root / "coco_val_mini" / "images", aspect_ratio=0.75)
    rc, stats, err = evaluate(capsys, tmp_path, path, results, "--spec", "coco")
    assert rc == 0 and stats["AP"] == pytest.approx(1.0), err


def test_spec_errors_are_one_line(data_root, tmp_path, capsys):
    ann = data_root / "coco_val_mini" / "annotations.json"
    rc, _, err = evaluate(capsys, tmp_path, ann, [], "--spec", "crowdpose")
    assert rc == 1 and "has 17 keypoints but spec 'crowdpose' has 14" in err
    rc, _, err = evaluate(capsys, tmp_path, ann, [], "--spec", "foo")
    assert rc == 1 and "unknown keypoint set 'foo'" in err
    assert len(err.strip().splitlines()) == 1


# --- the benchmark picks the spec the same way --------------------------------------

def test_benchmark_source_takes_spec(data_root, tmp_path):
    import shutil

    from robustpose.benchmarking.sources import resolve_source
    from robustpose.commands.benchmark import add_arguments

    path, _ = hand_json(data_root, tmp_path, "palm", None, copies=1, name="annotations.json")
    shutil.copytree(data_root / "rhd_mini" / "images", tmp_path / "images")
    with pytest.raises(ValueError, match="--spec"):
        resolve_source("coco-format", annotations=path, input_size=(256, 256))
    source = resolve_source("coco-format", annotations=path, input_size=(256, 256),
                            spec="onehand10k")
    assert source.spec.name == "onehand10k" and len(source.records) == 3
    assert np.allclose(source.make_metric().gt.sigmas, get_spec("onehand10k").sigmas)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--spec", "onehand10k"]).spec == "onehand10k"
