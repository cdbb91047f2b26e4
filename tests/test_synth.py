"""SynthPose: determinism, COCO validity, visibility semantics, the CLI and the records glue."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from robustpose.data.synth import SynthPose, build_records, coco_categories, validation_split
from robustpose.data.synth_body import (COCO_KEYPOINTS, Placement, Proportions, pose_body,
                                        sample_angles)
from robustpose.data.synth_render import Appearance
from robustpose.data.synth_scene import OCCLUDER_ID, PERSON_STRIDE, compose
from robustpose.utils.seeding import rng_from

DIGEST_CODE = """
import hashlib, json, sys
from robustpose.data.synth import SynthPose
ds = SynthPose(num_images=3, seed=5, split="train", image_size=(160, 128))
h = hashlib.sha256()
for i in range(len(ds)):
    image, anns = ds[i]
    h.update(image.tobytes()); h.update(json.dumps(anns, sort_keys=True).encode())
print(h.hexdigest())
"""


def _digest(ds: SynthPose) -> str:
    h = hashlib.sha256()
    for i in range(len(ds)):
        image, anns = ds[i]
        h.update(image.tobytes())
        h.update(json.dumps(anns, sort_keys=True).encode())
    return h.hexdigest()


def test_same_seed_same_bytes_in_another_process():
    here = _digest(SynthPose(num_images=3, seed=5, split="train", image_size=(160, 128)))
    there = subprocess.run([sys.executable, "-c", DIGEST_CODE], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert here == there


def test_images_depend_on_seed_split_and_index_only():
    a = SynthPose(num_images=5, seed=0, split="val", image_size=(160, 128))
    b = SynthPose(num_images=2, seed=0, split="val", image_size=(160, 128))
    assert np.array_equal(a[1][0], b[1][0])          # size of the split does not matter
    assert not np.array_equal(a[0][0], a[1][0])
    other_seed = SynthPose(num_images=2, seed=1, split="val", image_size=(160, 128))
    other_split = SynthPose(num_images=2, seed=0, split="train", image_size=(160, 128))
    assert not np.array_equal(a[0][0], other_seed[0][0])
    assert not np.array_equal(a[0][0], other_split[0][0])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    ds = SynthPose(num_images=12, seed=3, split="train")
    return ds, ds.write(out, progress=False)


def test_written_split_is_valid_coco(written):
    from pycocotools.coco import COCO

    ds, ann_path = written
    coco = COCO(str(ann_path))
    assert sorted(coco.getImgIds()) == list(range(1, 13))
    cat = coco.loadCats(1)[0]
    assert cat["keypoints"] == list(COCO_KEYPOINTS) and len(cat["skeleton"]) == 19
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 12 and len({a["id"] for a in anns}) == len(anns)
    w, h = ds.image_size
    for a in anns:
        kp = np.asarray(a["keypoints"], dtype=float).reshape(17, 3)
        assert a["iscrowd"] == 0 and a["area"] > 0
        assert a["num_keypoints"] == int((kp[:, 2] > 0).sum()) >= 1
        assert set(np.unique(kp[:, 2])) <= {0.0, 1.0, 2.0}
        assert (kp[kp[:, 2] == 0, :2] == 0).all()            # unlabelled: coordinates 0
        labelled = kp[kp[:, 2] > 0]
        assert ((labelled[:, 0] >= 0) & (labelled[:, 0] <= w - 1)).all()
        assert ((labelled[:, 1] >= 0) & (labelled[:, 1] <= h - 1)).all()
        x, y, bw, bh = a["bbox"]
        vis = kp[kp[:, 2] == 2]
        assert ((vis[:, 0] >= x - 0.5) & (vis[:, 0] <= x + bw - 0.5)).all(), a
        assert ((vis[:, 1] >= y - 0.5) & (vis[:, 1] <= y + bh - 0.5)).all(), a
        assert bw * bh >= a["area"]                           # silhouette inside its box
    # Files on disk are the same images the dataset object renders.
    import cv2

    first = cv2.imread(str(ann_path.parent / "images" / "000000.png"))[..., ::-1]
    assert np.array_equal(first, ds[0][0])


def test_oks_evaluation_of_ground_truth_is_perfect(written):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _ds, ann_path = written
    gt = COCO(str(ann_path))
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())]
    ev = COCOeval(gt, gt.loadRes(results), "keypoints")
    ev.evaluate(); ev.accumulate(); ev.summarize()  # noqa: E702
    assert ev.stats[0] == pytest.approx(1.0)


def _standing(yaw_deg: float, scale: float, center: tuple[float, float], seed: int = 0):
    rng = rng_from(seed, "test-person")
    props = Proportions.sample(rng)
    _pose, angles = sample_angles(rng, "stand")
    return (pose_body(props, angles), Placement(yaw=np.deg2rad(yaw_deg), rotation=0.0, scale=scale,
                                                center=center), "stand", Appearance.sample(rng))


def test_left_and_right_follow_the_facing_direction():
    background = np.full((200, 200, 3), 90, np.uint8)
    front, back = _standing(0, 150, (100, 100)), _standing(180, 150, (100, 100))
    (lab_front,), (lab_back,) = compose(background, [front])[1], compose(background, [back])[1]
    l_sh, r_sh = COCO_KEYPOINTS.index("left_shoulder"), COCO_KEYPOINTS.index("right_shoulder")
    assert lab_front.keypoints[l_sh, 0] > lab_front.keypoints[r_sh, 0]   # facing us: left on the right
    assert lab_back.keypoints[l_sh, 0] < lab_back.keypoints[r_sh, 0]
    assert (lab_front.keypoints[:3, 2] == 2).all()                      # nose and eyes seen
    assert (lab_back.keypoints[:3] == 0).all()                          # face from behind: unlabelled


def test_truncated_keypoints_are_zero_and_unlabelled():
    background = np.full((160, 120, 3), 90, np.uint8)
    person = _standing(0, 140, (60, 150))                   # lower half below the image
    (label,) = compose(background, [person])[1]
    kp = label.keypoints
    ankles = [COCO_KEYPOINTS.index("left_ankle"), COCO_KEYPOINTS.index("right_ankle")]
    assert (kp[ankles] == 0).all()
    assert (kp[:5, 2] == 2).all()                           # the head is inside and visible
    assert label.num_keypoints == int((kp[:, 2] > 0).sum()) < 17


def test_mutual_occlusion_marks_hidden_keypoints_1():
    background = np.full((200, 240, 3), 90, np.uint8)
    behind = _standing(0, 150, (110, 100), seed=1)
    front = _standing(0, 150, (140, 100), seed=2)           # overlaps the right half of `behind`
    _img, (lab_behind, lab_front), ids = compose(background, [behind, front])
    kp = lab_behind.keypoints
    hidden = kp[:, 2] == 1
    assert hidden.any() and (kp[:, 2] == 2).any()
    for x, y, _v in kp[hidden]:                             # each hidden point is under the front person
        assert ids[int(round(y)), int(round(x))] // PERSON_STRIDE == 2
    alone = compose(background, [behind])[1][0]
    assert lab_behind.area < alone.area                     # area counts visible pixels only
    assert lab_front.num_keypoints == 17 and (lab_front.keypoints[:, 2] == 2).all()


def test_foreground_occluder_hides_keypoints():
    background = np.full((200, 200, 3), 90, np.uint8)
    person = _standing(0, 150, (100, 100))
    for seed in range(20):
        _img, (label,), ids = compose(background, [person], rng_from(seed, "occluder"))
        if (ids == OCCLUDER_ID).any() and label is not None and (label.keypoints[:, 2] == 1).any():
            for x, y, _v in label.keypoints[label.keypoints[:, 2] == 1]:
                assert ids[int(round(y)), int(round(x))] == OCCLUDER_ID
            return
    pytest.fail("no occluder covered a keypoint in 20 tries")


def test_cli_writes_images_and_annotations(tmp_path):
    from robustpose.cli import main

    out = tmp_path / "val"
    assert main(["synth", str(out), "--split", "val", "--num-images", "3", "--no-progress"]) == 0
    pngs = sorted(p.name for p in (out / "images").glob("*.png"))
    assert pngs == ["000000.png", "000001.png", "000002.png"]
    data = json.loads((out / "annotations.json").read_text())
    assert data["categories"] == coco_categories() and len(data["images"]) == 3
    # the val stream is the fixed validation split
    assert np.array_equal(validation_split()[2][0],
                          __import__("cv2").imread(str(out / "images" / "000002.png"))[..., ::-1])


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    from robustpose.cli import main

    assert main(["synth", str(tmp_path / "x"), "--num-images", "0", "--no-progress"]) == 1
    assert "at least one image" in capsys.readouterr().err


def test_build_records_materialises_once_and_fills_the_block(tmp_path):
    block = {"split": "val", "num_images": 4}
    records, spec = build_records(block, aspect_ratio=0.75, cache_dir=tmp_path, progress=False)
    ann = block["annotations"]
    assert ann.is_file() and spec.name == "coco" and len(records) >= 4
    assert all(r.keypoints is not None and r.keypoints.shape == (17, 3) for r in records)
    stamp = ann.stat().st_mtime_ns
    again, _ = build_records({"split": "val", "num_images": 4}, aspect_ratio=0.75,
                             cache_dir=tmp_path, progress=False)
    assert ann.stat().st_mtime_ns == stamp and len(again) == len(records)
