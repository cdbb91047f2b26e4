"""The benchmark's metric settings (score_mode, nms_mode, keypoint_score_thr, nms_thr): CLI,
Python API and configs, recorded in run.json, shown under the table, refused for PCKh.

A real model (BlazePose lite, ONNX) on the first 4 images of coco_val_mini, clean cell only.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from robustpose.benchmarking import run_benchmark

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "configs" / "onnx" / "blazepose_landmark_lite.yaml"


@pytest.fixture(scope="module")
def setup(data_root, models_root):
    return {"onnx": models_root / "blazepose_landmark_lite.onnx", "onnx_spec": SPEC,
            "dataset": "coco-format", "data_root": data_root / "coco_val_mini",
            "max_images": 4, "corruptions": "none"}


def _pycocotools_ap(ann_file: Path, results: list) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        ev = COCOeval(gt, gt.loadRes(results), "keypoints")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return float(ev.stats[0])


@pytest.fixture(scope="module")
def raw(setup, tmp_path_factory):
    """Box scores only, no NMS: the saved predictions are the model's raw keypoints."""
    out = tmp_path_factory.mktemp("raw")
    card = run_benchmark(**setup, out=out, workers=0, progress=False, plots=False,
                         score_mode="bbox", nms_mode="none", save_predictions=True)
    return card, json.loads((out / "predictions" / "clean-0.json").read_text()), out


def test_cli_keypoint_mode_is_recorded_shown_and_scored_as_pycocotools(setup, raw, tmp_path,
                                                                       capsys):
    """--score-mode keypoint --nms-mode none: AP = pycocotools on the raw predictions
    rescored by hand with the plain mean of their keypoint scores."""
    from robustpose.cli import main

    _, predictions, _ = raw
    out = tmp_path / "run"
    code = main(["benchmark", "--onnx", str(setup["onnx"]), "--onnx-spec", str(SPEC),
                 "--dataset", "coco-format", "--data-root", str(setup["data_root"]),
                 "--max-images", "4", "--corruptions", "none", "--workers", "0", "--no-progress",
                 "--no-plots", "--score-mode", "keypoint", "--nms-mode", "none",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "metric: score_mode keypoint, nms_mode none" in printed
    settings = json.loads((out / "run.json").read_text())["conventions"]["metric_settings"]
    assert (settings["score_mode"], settings["nms_mode"]) == ("keypoint", "none")
    assert "score_mode keypoint, nms_mode none" in (out / "table.md").read_text()
    rescored = [dict(p, score=float(np.mean(p["keypoints"][2::3]))) for p in predictions]
    assert len({round(p["score"], 6) for p in rescored}) > 1  # not a constant score
    subset = json.loads((out / "run.json").read_text())["annotation_file"]  # the 4 images
    want = _pycocotools_ap(Path(subset),
                           [{k: p[k] for k in ("image_id", "category_id", "keypoints", "score")}
                            for p in rescored])
    card = json.loads((out / "summary.json").read_text())
    assert card["clean"] == pytest.approx(100 * want, abs=1e-3)


def test_default_is_hrnet_rescoring_and_oks_nms(setup, raw, tmp_path):
    """No option: bbox_keypoint / 0.2 / oks_nms / 0.9 in run.json, and the default AP
    equals the metric fed the raw predictions with those settings written out."""
    from robustpose.evaluation import CocoKeypointMetric

    _, predictions, _ = raw
    card = run_benchmark(**setup, out=tmp_path, workers=0, progress=False, plots=False)
    settings = card["conventions"]["metric_settings"]
    assert (settings["score_mode"], settings["keypoint_score_thr"], settings["nms_mode"],
            settings["nms_thr"]) == ("bbox_keypoint", 0.2, "oks_nms", 0.9)
    subset = json.loads((tmp_path / "run.json").read_text())["annotation_file"]  # the 4 images
    metric = CocoKeypointMetric(subset, score_mode="bbox_keypoint", nms_mode="oks_nms",
                                keypoint_score_thr=0.2, nms_thr=0.9)
    metric.accumulate(np.array([p["keypoints"] for p in predictions]).reshape(-1, 17, 3),
                      {"image_id": np.array([p["image_id"] for p in predictions]),
                       "score": np.array([p["box_score"] for p in predictions]),
                       "center": np.array([p["center"] for p in predictions]),
                       "scale": np.array([p["scale"] for p in predictions])})
    assert card["clean"] == pytest.approx(100 * metric.stats()["AP"], abs=1e-3)


def test_a_rerun_with_other_metric_settings_is_refused(setup, raw):
    _, _, out = raw
    with pytest.raises(ValueError, match=r"holds a run with other conventions "
                                         r"\(conventions\.metric_settings\.score_mode"):
        run_benchmark(**setup, out=out, workers=0, progress=False, plots=False,
                      score_mode="keypoint", nms_mode="none")
    again = run_benchmark(**setup, out=out, workers=0, progress=False, plots=False,
                          score_mode="bbox", nms_mode="none")
    assert again["clean"] == raw[0]["clean"]  # the same settings resume


def test_metric_options_are_refused_for_pckh(data_root, tmp_path):
    with pytest.raises(ValueError, match="score_mode: OKS AP options; dataset mpii is scored "
                                         "by PCKh"):
        run_benchmark(dataset="mpii", data_root=data_root / "mpii_mini", out=tmp_path / "run",
                      corruptions="none", score_mode="keypoint", progress=False, plots=False,
                      workers=0)
    assert not (tmp_path / "run").exists()


def test_bad_choices_are_one_line_errors(setup, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "robustpose", "benchmark", "--score-mode",
                           "box", "--out", str(tmp_path)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode != 0 and "invalid choice: 'box'" in proc.stderr
    with pytest.raises(ValueError, match="nms_thr must be a finite number"):
        run_benchmark(**setup, out=tmp_path / "run", workers=0, progress=False, plots=False,
                      nms_thr=float("inf"))


def test_config_metric_args_take_the_same_names(data_root):
    """``val.metric_args`` is passed to the metric as keyword arguments (training validation
    and ``robustpose test``)."""
    from robustpose.data import get_spec
    from robustpose.training.datasets import build_metric_factory

    config = {"data": {"type": "coco"},
              "val": {"metric": "coco", "metric_args": {"score_mode": "keypoint",
                                                        "nms_mode": "none", "nms_thr": 0.8}}}
    metric = build_metric_factory(config, get_spec("coco"),
                                  data_root / "coco_val_mini" / "annotations.json", [])()
    assert (metric.score_mode, metric.nms_mode, metric.nms_thr) == ("keypoint", "none", 0.8)
