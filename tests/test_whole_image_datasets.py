"""The whole-image benchmark on OCHuman's and CrowdPose's conventions (issue 26 section 2:
"OCHuman-C and CrowdPose-C work").

Their data is not in ../shared, so each test writes a tiny folder in the registry entry's
layout from ../shared/data/coco_val_mini (its images, copied; an annotation json as the set
ships it: OCHuman = COCO-17 in COCO format, CrowdPose = 14 keypoints in its own order, a
``crowdIndex`` per image) and runs an oracle whole-image callable (the ground-truth people of
the clean image, recognised by its pixels) through ``robustpose.benchmark`` on one corrupted
cell: clean AP 1, the corrupted cell lower, the run's conventions the dataset's (area rule,
sigmas and so keypoint count), and a rerun with 0 cells.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from robustpose.models.whole_image import WholeImageCallable

#: images per tiny set: enough people for an AP, few enough for ~1 s per cell
N_IMAGES = 4
#: CrowdPose's json spells its top-of-head keypoint "head" (the spec's alias of top_head)
CROWDPOSE_JSON_NAMES = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                        "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                        "right_knee", "left_ankle", "right_ankle", "head", "neck"]


def _link_images(source: Path, target: Path, images: list[dict]) -> None:
    # copied, not linked: the image reader refuses a file that resolves outside its root
    target.mkdir(parents=True)
    for img in images:
        shutil.copy(source / img["file_name"], target / img["file_name"])


def _coco_subset(root: Path) -> dict:
    """The first N_IMAGES images (by id) of coco_val_mini that hold a labelled person, and
    their annotations."""
    data = json.loads((root / "annotations.json").read_text())
    labelled = {a["image_id"] for a in data["annotations"]
                if not a.get("iscrowd") and any(a["keypoints"][2::3])}
    images = sorted((i for i in data["images"] if i["id"] in labelled),
                    key=lambda i: i["id"])[:N_IMAGES]
    ids = {i["id"] for i in images}
    return {**data, "images": images,
            "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}


def _to_crowdpose(ann: dict, coco_names: list[str]) -> dict:
    """One COCO person as CrowdPose labels it: the 12 limb joints by name, ``head`` from the
    nose, ``neck`` at the shoulders' midpoint when both are labelled (hand-made: COCO has
    neither point)."""
    from robustpose.data import get_spec

    kps = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
    by_name = dict(zip(coco_names, kps))
    out = []
    for name in get_spec("crowdpose").keypoint_names:
        if name == "top_head":
            out.append(by_name["nose"])
        elif name == "neck":
            left, right = by_name["left_shoulder"], by_name["right_shoulder"]
            both = left[2] > 0 and right[2] > 0
            out.append([(left[0] + right[0]) / 2, (left[1] + right[1]) / 2, 2] if both
                       else [0, 0, 0])
        else:
            out.append(by_name[name])
    out = np.asarray(out, np.float64)
    return {"id": ann["id"], "image_id": ann["image_id"], "category_id": 1, "iscrowd": 0,
            "bbox": ann["bbox"], "keypoints": [float(v) for v in out.reshape(-1)],
            "num_keypoints": int((out[:, 2] > 0).sum())}


def _write_ochuman(coco_root: Path, root: Path) -> Path:
    """OCHuman's val layout: ``ochuman_coco_format_val_range_0.00_1.00.json`` + ``images/``."""
    data = _coco_subset(coco_root)
    _link_images(coco_root / "images", root / "images", data["images"])
    (root / "ochuman_coco_format_val_range_0.00_1.00.json").write_text(json.dumps(data))
    return root


def _write_crowdpose(coco_root: Path, root: Path) -> Path:
    """CrowdPose's val layout: ``json/crowdpose_val.json`` + ``images/``; a ``crowdIndex``
    per image (one easy, two medium, one hard: its AP(E/M/H) subsets)."""
    data = _coco_subset(coco_root)
    names = data["categories"][0]["keypoints"]
    images = [{**img, "crowdIndex": index}
              for img, index in zip(data["images"], (0.1, 0.5, 0.6, 0.9))]
    out = {"images": images,
           "annotations": [_to_crowdpose(a, names) for a in data["annotations"]
                           if not a.get("iscrowd")],
           "categories": [{"id": 1, "name": "person", "supercategory": "person",
                           "keypoints": CROWDPOSE_JSON_NAMES, "skeleton": []}]}
    _link_images(coco_root / "images", root / "images", images)
    (root / "json").mkdir()
    (root / "json" / "crowdpose_val.json").write_text(json.dumps(out))
    return root


def _oracle(annotations: Path, image_root: Path, num_keypoints: int) -> WholeImageCallable:
    """The ground-truth people (K keypoints, visibility -> 1) of each clean image, found by
    its top rows; an image it does not know (a corrupted one) has nobody."""
    from robustpose.data import load_image

    data = json.loads(annotations.read_text())
    people: dict = {}
    for ann in data["annotations"]:
        if ann.get("iscrowd") or not any(ann["keypoints"][2::3]):
            continue  # people COCOeval ignores: a prediction there is a false positive
        kps = np.asarray(ann["keypoints"], np.float64).reshape(num_keypoints, 3)
        kps[:, 2] = (kps[:, 2] > 0).astype(float)
        people.setdefault(ann["image_id"], []).append(kps)
    ids = {load_image(image_root / img["file_name"])[:4].tobytes(): img["id"]
           for img in data["images"]}

    def predict(image: np.ndarray) -> dict:
        found = people.get(ids.get(image[:4].tobytes()), [])
        kps = np.asarray(found, np.float64).reshape(-1, num_keypoints, 3)
        return {"keypoints": kps, "scores": np.ones(len(kps))}

    return WholeImageCallable(predict, name="oracle", num_keypoints=num_keypoints,
                              identity=f"gt-oracle-{num_keypoints}")


@pytest.mark.parametrize("dataset, write, annotations, k, area_rule", [
    ("ochuman", _write_ochuman, "ochuman_coco_format_val_range_0.00_1.00.json", 17, "json"),
    ("crowdpose", _write_crowdpose, "json/crowdpose_val.json", 14, "crowdpose"),
])
def test_oracle_on_the_sets_layout_scores_ap_one_clean_and_resumes(
        data_root, tmp_path, capsys, dataset, write, annotations, k, area_rule):
    import robustpose
    from robustpose.data import get_spec

    root = write(data_root / "coco_val_mini", tmp_path / dataset)
    model = _oracle(root / annotations, root / "images", k)
    kwargs = dict(dataset=dataset, data_root=root, corruptions="gaussian_noise",
                  severities="1", out=tmp_path / "run", workers=0, plots=False)
    robustpose.benchmark(model, **kwargs)
    records = [json.loads(line) for line in (tmp_path / "run/results.jsonl").read_text()
               .splitlines()]
    assert [(r["corruption"], r["severity"]) for r in records] == [("clean", 0),
                                                                   ("gaussian_noise", 1)]
    clean, noisy = records
    assert clean["AP"] == pytest.approx(1.0)
    assert noisy["AP"] < clean["AP"]  # the oracle does not know the noisy pixels
    settings = clean["conventions"]["metric_settings"]
    assert settings["area_rule"] == area_rule
    assert settings["sigmas"] == pytest.approx(list(get_spec(dataset).sigmas))
    assert len(settings["sigmas"]) == k
    assert clean["conventions"]["num_images"] == N_IMAGES
    if dataset == "crowdpose":  # crowdposetools' subsets by crowdIndex, each scored
        assert [clean["metrics"][key] for key in ("AP(E)", "AP(M)", "AP(H)")] == \
            pytest.approx([1.0, 1.0, 1.0])
        assert settings["crowd_index_edges"] == [0.2, 0.8]
    capsys.readouterr()
    robustpose.benchmark(model, **kwargs)
    assert "0 cell(s) to run, 2 done already" in capsys.readouterr().err


def test_a_coco_model_on_crowdpose_is_refused_before_any_cell(data_root, tmp_path):
    import robustpose

    root = _write_crowdpose(data_root / "coco_val_mini", tmp_path / "crowdpose")
    model = WholeImageCallable(lambda image: {"keypoints": np.ones((1, 17, 3)), "scores": [1]},
                               name="coco17", num_keypoints=17, identity="coco17-1")
    with pytest.raises(ValueError) as info:
        robustpose.benchmark(model, dataset="crowdpose", data_root=root,
                             corruptions="gaussian_noise", severities="1",
                             out=tmp_path / "run", workers=0, plots=False)
    assert str(info.value) == ("coco17: predicts 17 keypoints; dataset crowdpose:crowdpose "
                               "(crowdpose) has 14")
    assert not (tmp_path / "run" / "results.jsonl").exists()
