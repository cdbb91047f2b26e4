"""The benchmark runner: resume after SIGKILL, shards, unreadable images, reports.

A reduced benchmark: a real pretrained model (BlazePose lite, ONNX) on the first 4 images
of coco_val_mini (5 people), 2 corruptions x 2 severities + clean.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from robustpose.benchmarking import parse_corruptions, parse_severities, run_benchmark
from robustpose.benchmarking.cells import build_cells, parse_shard, select_shard, shard_from_env
from robustpose.evaluation import ResultsStore

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "configs" / "onnx" / "blazepose_landmark_lite.yaml"
SAME_KEYS = ("clean", "mPC", "rPC", "per_corruption", "per_cell", "per_family", "per_severity",
             "worst", "cells", "skipped_images", "model", "dataset", "conventions")


@pytest.fixture(scope="module")
def setup(data_root, models_root):
    return {"onnx": models_root / "blazepose_landmark_lite.onnx", "onnx_spec": SPEC,
            "dataset": "coco-format", "data_root": data_root / "coco_val_mini",
            "max_images": 4, "corruptions": "gaussian_noise,motion_blur", "severities": "1,3"}


def run(setup, out, **kw):
    options = dict(setup, out=out, workers=0, progress=False, plots=False)
    options.update(kw)
    return run_benchmark(**options)


def same(card_a: dict, card_b: dict) -> None:
    for key in SAME_KEYS:
        assert card_a[key] == card_b[key], key


@pytest.fixture(scope="module")
def reference(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    return run(setup, out, plots=True), out


# --------------------------------------------------------------------------- planning
def test_cells_and_shards_partition_the_work():
    cells = build_cells(["snow", "fog"], [1, 2, 3])
    assert cells[0].is_clean and len(cells) == 7
    parts = [select_shard(cells, i, 3) for i in range(3)]
    assert sorted(c for part in parts for c in part) == sorted(cells)
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_choices_parse():
    assert len(parse_corruptions("benchmark")) == 15 and len(parse_corruptions("all")) == 19
    assert parse_corruptions("blur,snow")[-1] == "snow"
    assert parse_severities("1-3,5") == [1, 2, 3, 5]
    with pytest.raises(ValueError, match="unknown corruption"):
        parse_corruptions("gaussian_nose")
    with pytest.raises(ValueError):
        parse_severities("0-2")


def test_torchrun_ranks_are_shards(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert shard_from_env() == (1, 3)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert shard_from_env() is None


# --------------------------------------------------------------------------- a run
def test_run_writes_store_card_tables_and_plots(reference):
    card, out = reference
    records = ResultsStore(out / "results.jsonl").records()
    assert sorted((r["corruption"], r["severity"]) for r in records) == [
        ("clean", 0), ("gaussian_noise", 1), ("gaussian_noise", 3), ("motion_blur", 1),
        ("motion_blur", 3)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cells"] == {"expected": 5, "done": 5, "missing": []}
    assert 5.0 < summary["clean"] <= 100.0
    per_corruption = [summary["per_corruption"][n] for n in ("gaussian_noise", "motion_blur")]
    assert summary["mPC"] == pytest.approx(sum(per_corruption) / 2, abs=1e-3)
    assert summary["rPC"] == pytest.approx(100 * summary["mPC"] / summary["clean"], abs=1e-3)
    assert summary["per_cell"]["gaussian_noise"]["3"] < summary["clean"]  # corruption hurts
    assert summary["conventions"]["boxes"] == "ground truth"
    assert "not the paper's 15" in summary["mPC_note"]
    for name in ("table.md", "table.csv", "per_corruption.png", "per_severity.png",
                 "heatmap.png"):
        assert (out / name).is_file(), name


def test_rerun_skips_finished_cells_and_refuses_other_settings(setup, reference, tmp_path):
    card, out = reference
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = (copy / "results.jsonl").read_bytes()
    again = run(setup, copy)
    assert (copy / "results.jsonl").read_bytes() == before  # nothing recomputed
    same(card, again)
    with pytest.raises(ValueError, match="holds a run with other"):
        run(setup, copy, flip_test=True)


def test_report_rebuilds_from_the_store(reference, tmp_path):
    from robustpose.cli import main

    card, out = reference
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for name in ("summary.json", "table.md", "per_corruption.png"):
        (copy / name).unlink()
    assert main(["report", str(copy)]) == 0
    rebuilt = json.loads((copy / "summary.json").read_text())
    same(card, rebuilt)
    assert (copy / "table.md").read_text() == (out / "table.md").read_text()
    assert (copy / "per_corruption.png").is_file()


def test_two_shards_give_the_same_summary_as_one(setup, reference, tmp_path):
    card, _ = reference
    first = run(setup, tmp_path, shard=(0, 2))
    assert first.get("incomplete") and first["cells"]["done"] == 3
    second = run(setup, tmp_path, shard=(1, 2), workers=1)  # the last shard writes reports
    assert not second.get("incomplete")
    assert len(list(tmp_path.glob("results.shard-*-of-2.jsonl"))) == 2
    same(card, second)
    same(card, json.loads((tmp_path / "summary.json").read_text()))


def test_torchrun_ranks_split_cells_and_rank0_reports(setup, reference, tmp_path):
    card, _ = reference
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.is_file():
        pytest.skip("torchrun not installed beside this python")
    command = [str(torchrun), "--nproc-per-node", "2", "-m", "robustpose", "benchmark",
               "--onnx", str(setup["onnx"]), "--onnx-spec", str(SPEC), "--dataset",
               "coco-format", "--data-root", str(setup["data_root"]), "--max-images", "4",
               "--corruptions", setup["corruptions"], "--severities", setup["severities"],
               "--workers", "0", "--no-progress", "--no-plots", "--out", str(tmp_path / "run")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("results:") == 1  # only rank 0 reports
    assert len(list((tmp_path / "run").glob("results.shard-*-of-2.jsonl"))) == 2
    same(card, json.loads((tmp_path / "run" / "summary.json").read_text()))


def test_sigkill_mid_run_then_rerun_gives_the_same_summary(setup, reference, tmp_path):
    card, _ = reference
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "robustpose", "benchmark", "--onnx", str(setup["onnx"]),
               "--onnx-spec", str(SPEC), "--dataset", "coco-format", "--data-root",
               str(setup["data_root"]), "--max-images", "4", "--corruptions",
               setup["corruptions"], "--severities", setup["severities"], "--workers", "1",
               "--batch-size", "2", "--no-progress", "--no-plots", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = out / "results.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists() and store.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its DataLoader worker
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done = ResultsStore(store).records()
    assert 2 <= len(done) < 5
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    records = ResultsStore(store).records()
    keys = [(r["corruption"], r["severity"]) for r in records]
    assert len(keys) == 5 and len(set(keys)) == 5  # no duplicate, no missing cell
    same(card, json.loads((out / "summary.json").read_text()))


def test_unreadable_image_is_skipped_and_listed(data_root, setup, tmp_path):
    source = data_root / "coco_val_mini"
    annotations = json.loads((source / "annotations.json").read_text())
    keep = sorted(img["id"] for img in annotations["images"])[:3]
    annotations["images"] = [i for i in annotations["images"] if i["id"] in keep]
    annotations["annotations"] = [a for a in annotations["annotations"] if a["image_id"] in keep]
    (tmp_path / "images").mkdir()
    for img in annotations["images"]:
        shutil.copy(source / "images" / img["file_name"], tmp_path / "images")
    (tmp_path / "annotations.json").write_text(json.dumps(annotations))
    broken = tmp_path / "images" / annotations["images"][0]["file_name"]
    broken.write_bytes(broken.read_bytes()[:2000])  # a truncated JPEG
    card = run(dict(setup, data_root=tmp_path, max_images=None), tmp_path / "run",
               corruptions="gaussian_noise", severities="1", workers=1)
    assert card["cells"]["done"] == 2 and not card.get("incomplete")
    assert [item["path"] for item in card["skipped_images"]] == [str(broken)]
    assert "truncated" in card["skipped_images"][0]["problem"]
    assert card["clean"] is not None


def test_predictions_are_saved_per_cell_when_asked(setup, tmp_path):
    run(setup, tmp_path, corruptions="none", save_predictions=True)
    results = json.loads((tmp_path / "predictions" / "clean-0.json").read_text())
    assert len(results) >= 4 and len(results[0]["keypoints"]) == 51


def test_python_api_with_a_callable_matches_the_onnx_adapter(setup, reference, tmp_path):
    import robustpose
    from robustpose.models.adapters import OnnxAdapter

    card, _ = reference
    onnx = OnnxAdapter(setup["onnx"], SPEC)

    def blazepose(crops):  # (N,3,256,256) [0,1] RGB -> (N,17,3) crop px + score
        return onnx._keypoints(onnx.forward(crops))

    options = {k: v for k, v in setup.items() if k not in ("onnx", "onnx_spec")}
    api_card = robustpose.benchmark(model=blazepose, input_size=(256, 256), out=tmp_path,
                                    workers=0, progress=False, plots=False,
                                    **dict(options, corruptions="none"))
    assert api_card["model"] == "blazepose"
    assert api_card["clean"] == pytest.approx(card["clean"], abs=1e-6)


def test_import_robustpose_does_not_import_torch():
    code = "import sys, robustpose; assert 'torch' not in sys.modules; print(robustpose.__version__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- the default
def test_no_argument_defaults_are_the_full_synthpose_benchmark():
    import argparse

    from robustpose.commands import benchmark as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.dataset, args.corruptions, args.severities) == ("synth", "benchmark", "1-5")
    assert args.model is None and args.onnx is None and args.config is None
    assert len(build_cells(parse_corruptions(args.corruptions),
                           parse_severities(args.severities))) == 76


def test_bundled_model_on_synthpose_reduced(tmp_path, capsys):
    from robustpose.assets import bundled_checkpoint_path
    from robustpose.cli import main

    assert bundled_checkpoint_path().is_file(), "the bundled SynthPose model must ship in the package"
    code = main(["benchmark", "--max-images", "8", "--corruptions", "gaussian_noise",
                 "--severities", "5", "--workers", "1", "--no-progress", "--no-plots",
                 "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "AP*" in out and "gaussian_noise" in out
    card = json.loads((tmp_path / "summary.json").read_text())
    assert card["dataset"] == "synth-val[:8]" and card["model"].startswith("bundled:")
    assert card["clean"] > 10.0  # a trained model (random weights score ~0 here)
    assert card["per_cell"]["gaussian_noise"]["5"] < card["clean"]
    assert card["conventions"]["flip_test"] is True
    meta = torch.load(bundled_checkpoint_path(), weights_only=True)["meta"]
    conventions = card["conventions"]  # the refinement under its new name or the older one
    refine = conventions.get("refine", conventions.get("post_process"))
    trained = (meta.get("inference") or meta).get("refine", meta.get("post_process"))
    assert refine == trained  # decoded as trained
    digest = hashlib.sha256(bundled_checkpoint_path().read_bytes()).hexdigest()[:16]
    assert card["conventions"]["weights_sha256"] == digest


def test_other_weights_under_the_same_name_are_not_mixed(setup, reference, tmp_path):
    """The weights' hash is part of the run settings (a rerun into a folder scored with other
    weights is refused) and of the default folder name (so each gets its own)."""
    from robustpose.benchmarking.api import default_run_dir

    card, out = reference
    assert len(card["conventions"]["weights_sha256"]) == 16
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    other = tmp_path / "other.onnx"
    other.write_bytes(setup["onnx"].read_bytes() + b"\xc0\x3e\x00")  # + an unknown protobuf field
    with pytest.raises(ValueError, match="holds a run with other conventions"):
        run(setup, copy, onnx=other)
    a = default_run_dir("m", "d", card["conventions"]["weights_sha256"])
    assert a.name == f"m-{card['conventions']['weights_sha256'][:8]}__d"
    assert default_run_dir("m", "d").name == "m__d"


def test_corrupted_root_gives_the_same_cells_as_on_the_fly(data_root, setup, reference,
                                                           tmp_path):
    """A -C folder holding the same corrupted pixels (lossless) scores exactly the same."""
    import cv2

    from robustpose.corruptions import corrupt
    from robustpose.data import CorruptedImages, load_image

    card, _ = reference
    source = setup["data_root"]
    annotations = json.loads((source / "annotations.json").read_text())
    kept = set(sorted(img["id"] for img in annotations["images"])[:4])
    for img in annotations["images"]:
        if img["id"] not in kept:
            continue
        clean = load_image(source / "images" / img["file_name"])
        for name in ("gaussian_noise", "motion_blur"):
            for severity in (1, 3):
                seed = CorruptedImages(name, severity, 0).image_seed(img["id"])
                out = corrupt(clean, name, severity, seed=seed)
                target = tmp_path / "C" / name / str(severity) / img["file_name"]
                target.parent.mkdir(parents=True, exist_ok=True)
                ok, png = cv2.imencode(".png", cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
                target.write_bytes(png.tobytes())  # PNG bytes under the .jpg name: lossless
    from_folder = run(setup, tmp_path / "run", corrupted_root=tmp_path / "C")
    assert from_folder["per_cell"] == card["per_cell"]
    assert from_folder["conventions"]["corruption_source"].startswith("-C folders")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu_is_a_one_line_error(tmp_path):
    """Refused before any model or dataset is loaded, and the CLI prints one line."""
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        run_benchmark(device="cuda", out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    proc = subprocess.run([sys.executable, "-m", "robustpose", "benchmark", "--device", "cuda",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("torch sees no CUDA device")
