"""The papers' protocol on a smoke run: detector boxes with --max-images, and an official
checkpoint of a non-preset width benchmarked by name with --extra.

Real data: ../shared/data/coco_mmpose (4 COCO val2017 images, 14 people, 118 detector
boxes); real weights: the official HRNet-W8 fixture (fp16-stored, its MODEL.EXTRA block
inside), clean cell only.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robustpose.benchmarking import run_benchmark
from robustpose.cli import main

torch.set_num_threads(1)
HRNET = "official_hrnet_w8_coco_256x192.pt"


@pytest.fixture(scope="module")
def mmpose(data_root):
    return data_root / "coco_mmpose"


@pytest.fixture(scope="module")
def fixture(models_root):
    path = models_root / "official" / HRNET
    return path, torch.load(path, weights_only=True)["extra"]


def _cli(out: Path, *args: str) -> list[str]:
    return ["benchmark", "--dataset", "coco-format", "--max-images", "2", "--corruptions",
            "none", "--workers", "0", "--no-progress", "--no-plots", "--out", str(out), *args]


# ------------------------------------------------------------- --max-images + --detections
def test_max_images_keeps_exactly_the_detections_of_the_kept_images(mmpose, fixture, tmp_path):
    ckpt, extra = fixture
    dets = json.loads((mmpose / "detections.json").read_text())
    images = sorted(img["id"] for img in
                    json.loads((mmpose / "annotations.json").read_text())["images"])
    kept = set(images[:2])
    code = main(_cli(tmp_path / "run", "--data-root", str(mmpose), "--detections",
                     str(mmpose / "detections.json"), "--model", "hrnet", "--checkpoint",
                     str(ckpt), "--extra", json.dumps(extra), "--save-predictions"))
    assert code == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["conventions"]["boxes"] == "detector: detections.json"
    # the metric's ground truth: the 2 images only
    gt = json.loads(Path(run["annotation_file"]).read_text())
    assert {img["id"] for img in gt["images"]} == kept
    assert {a["image_id"] for a in gt["annotations"]} <= kept
    # the people scored: exactly the boxes of those images, none of the others
    assert run["num_people"] == sum(d["image_id"] in kept for d in dets) < len(dets)
    subset = sorted(Path(run["annotation_file"]).parent.glob("*.dets-detections.json"))
    assert len(subset) == 1
    assert json.loads(subset[0].read_text()) == [d for d in dets if d["image_id"] in kept]
    predictions = json.loads((tmp_path / "run" / "predictions" / "clean-0.json").read_text())
    assert predictions and {p["image_id"] for p in predictions} <= kept
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["clean"] is not None and 0 <= summary["clean"] <= 100


def test_detections_of_images_outside_the_annotations_are_still_refused(mmpose, tmp_path,
                                                                       capsys):
    dets = json.loads((mmpose / "detections.json").read_text())
    bad = tmp_path / "dets.json"
    bad.write_text(json.dumps(dets + [dict(dets[0], image_id=123456789)]))
    code = main(_cli(tmp_path / "run", "--data-root", str(mmpose), "--detections", str(bad)))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "image_id 123456789" in err[0]


# ------------------------------------------------------------------------------ --extra
def _predictions(out: Path) -> list[dict]:
    return json.loads((out / "predictions" / "clean-0.json").read_text())


def _same_keypoints(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) > 0
    for p, q in zip(a, b):
        assert p["image_id"] == q["image_id"]
        np.testing.assert_allclose(p["keypoints"], q["keypoints"], rtol=0, atol=1e-4)
        assert p["score"] == pytest.approx(q["score"], abs=1e-6)


@pytest.fixture(scope="module")
def direct(mmpose, fixture, tmp_path_factory):
    """The model built from the fixture's MODEL.EXTRA by hand, benchmarked as an adapter."""
    from robustpose.codecs import InferenceSetting
    from robustpose.models import create_model, load_checkpoint
    from robustpose.models.adapters import RegistryAdapter

    ckpt, extra = fixture
    net = create_model("hrnet", num_joints=17, extra=extra)
    load_checkpoint(net, ckpt)
    adapter = RegistryAdapter(net, InferenceSetting(input_size=(192, 256)), name="w8-direct")
    out = tmp_path_factory.mktemp("direct")
    run_benchmark(adapter, dataset="coco-format", data_root=mmpose, max_images=2,
                  corruptions="none", workers=0, progress=False, plots=False, out=out,
                  save_predictions=True, flip_test=True)
    return _predictions(out)


def test_without_extra_the_official_w8_checkpoint_does_not_fit_the_preset(mmpose, fixture,
                                                                         tmp_path, capsys):
    code = main(_cli(tmp_path / "run", "--data-root", str(mmpose), "--model", "hrnet",
                     "--checkpoint", str(fixture[0])))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "checkpoint does not fit" in err[0]


def test_extra_json_text_gives_the_keypoints_of_the_model_built_from_it(mmpose, fixture,
                                                                       direct, tmp_path):
    ckpt, extra = fixture
    code = main(_cli(tmp_path / "run", "--data-root", str(mmpose), "--model", "hrnet",
                     "--checkpoint", str(ckpt), "--extra", json.dumps(extra),
                     "--save-predictions"))
    assert code == 0
    _same_keypoints(_predictions(tmp_path / "run"), direct)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["model_info"]["extra"]["STAGE4"]["NUM_CHANNELS"] == [8, 16, 32, 64]


def test_an_official_experiment_yaml_gives_the_same_keypoints(mmpose, fixture, direct,
                                                             tmp_path):
    ckpt, extra = fixture
    experiment = tmp_path / "w8_256x192.yaml"  # the layout of HRNet's experiments/*.yaml
    experiment.write_text(yaml.safe_dump({
        "GPUS": "(0,)", "DATASET": {"DATASET": "coco"},
        "MODEL": {"NAME": "pose_hrnet", "NUM_JOINTS": 17, "IMAGE_SIZE": [192, 256],
                  "HEATMAP_SIZE": [48, 64], "SIGMA": 2, "EXTRA": extra}}))
    code = main(_cli(tmp_path / "run", "--data-root", str(mmpose), "--model", "hrnet",
                     "--checkpoint", str(ckpt), "--extra", str(experiment),
                     "--save-predictions"))
    assert code == 0
    _same_keypoints(_predictions(tmp_path / "run"), direct)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["conventions"]["input_size"] == [192, 256]


@pytest.mark.parametrize("bad, expected", [
    ("{STAGE2: {NUM_CHANELS: [8, 16]}}", "unknown keys ['NUM_CHANELS'] in MODEL.EXTRA.STAGE2"),
    ("{STAGE2: [oops", "--extra is not valid YAML/JSON"),
    ("[8, 16]", "--extra must be a mapping"),
    ("missing_experiment.yaml", "missing_experiment.yaml: --extra file not found"),
    ("{MODEL: {NAME: pose_hrnet}}", "--extra has no MODEL.EXTRA block"),
    ("{STAGE2: {NUM_BLOCKS: 4}}", "--extra: cannot build hrnet from this MODEL.EXTRA block"),
])
def test_a_bad_extra_gives_one_line(mmpose, fixture, tmp_path, capsys, bad, expected):
    code = main(_cli(tmp_path / "run", "--data-root", str(mmpose), "--model", "hrnet",
                     "--checkpoint", str(fixture[0]), "--extra", bad))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert expected in err[0]
    assert not (tmp_path / "run" / "results.jsonl").exists()


def test_extra_needs_a_model_name_and_agrees_with_input_size(mmpose, fixture, tmp_path,
                                                            capsys):
    experiment = tmp_path / "x.yaml"
    experiment.write_text(yaml.safe_dump({"MODEL": {"IMAGE_SIZE": [192, 256],
                                                    "EXTRA": fixture[1]}}))
    code = main(_cli(tmp_path / "a", "--data-root", str(mmpose), "--extra", str(experiment)))
    assert code == 1 and "--extra goes with --model NAME" in capsys.readouterr().err
    code = main(_cli(tmp_path / "b", "--data-root", str(mmpose), "--model", "hrnet",
                     "--extra", str(experiment), "--input-size", "256x256"))
    err = capsys.readouterr().err
    assert code == 1 and "disagrees with the --extra config's MODEL.IMAGE_SIZE 192x256" in err
