"""Issue 24 items 11 and 12 (the rest): every argument is checked before any work, each
message names its key, ``attack`` skips and records an unreadable image as ``stability``
and ``benchmark`` do, and ``report`` on a damaged distances file is one line."""
from __future__ import annotations

import json
import shutil

import pytest

from robustpose.cli import main


def _mini(data_root, tmp_path, broken: bool = False):
    """coco_val_mini's first two images (the second one zero bytes when ``broken``)."""
    data = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    data["images"] = data["images"][:2]
    ids = {i["id"] for i in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    root = tmp_path / "mini"
    (root / "images").mkdir(parents=True)
    for i, img in enumerate(data["images"]):
        target = root / "images" / img["file_name"]
        if broken and i == 1:
            target.write_bytes(b"")
        else:
            shutil.copy(data_root / "coco_val_mini" / "images" / img["file_name"], target)
    (root / "annotations.json").write_text(json.dumps(data))
    return root, data


@pytest.mark.parametrize("alpha", ["-1", "nan", "0", "inf"])
def test_attack_alpha_is_checked_before_any_work(data_root, tmp_path, capsys, alpha):
    root, _ = _mini(data_root, tmp_path)
    out = tmp_path / "run"
    assert main(["attack", "igsm", "--dataset", "coco-format", "--data-root", str(root),
                 "--eps", "2", "--steps", "2", "--alpha", alpha, "--out", str(out),
                 "--no-plots", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "--alpha" in err and "\n" not in err
    assert not out.exists()  # before the clean cell (and before run.json)


@pytest.mark.parametrize("size, says", [("0x0", ">= 1"), ("64x64", "bundled model takes"),
                                        ("-3x5", ">= 1")])
def test_input_size_refused_not_ignored(size, says):
    from robustpose.benchmarking.loading import resolve_adapter

    with pytest.raises(ValueError, match=says):
        resolve_adapter(input_size=size)


@pytest.mark.parametrize("option, value", [("--surface-severity", "9"),
                                           ("--surface-steps", "1"),
                                           ("--surface-perturbation", "fgo"),
                                           ("--surface-crops", "0")])
def test_surface_arguments_are_checked_before_the_stability_run(tmp_path, capsys, option,
                                                                 value):
    out = tmp_path / "run"
    assert main(["stability", "--max-images", "2", "--perturbations", "fog", "--severities",
                 "1", "--workers", "0", "--out", str(out), "--no-plots", "--no-progress",
                 "--loss-surface", option, value]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and (option in err or "unknown corruption" in err)
    assert not out.exists()


def test_attack_skips_and_records_an_unreadable_image(data_root, tmp_path):
    from robustpose.benchmarking.attack_run import run_attack

    root, data = _mini(data_root, tmp_path, broken=True)
    card = run_attack("fgsm", dataset="coco-format", data_root=root, eps="2",
                      out=tmp_path / "run", plots=False, progress=False)
    records = [json.loads(line) for line in
               (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert [r["corruption"] for r in records] == ["clean", "fgsm-U@2"]
    bad = str(root / "images" / data["images"][1]["file_name"])
    for record in records:
        assert [s["path"] for s in record["skipped_images"]] == [bad]
        assert record["pck"] is not None
    # every image unreadable: one line, nothing stored as a result
    (root / "images" / data["images"][0]["file_name"]).write_bytes(b"")
    with pytest.raises(ValueError, match="every image was skipped"):
        run_attack("fgsm", dataset="coco-format", data_root=root, eps="2",
                   out=tmp_path / "run2", plots=False, progress=False)
    store = tmp_path / "run2" / "results.jsonl"
    assert not store.exists() or not store.read_text().strip()


def test_report_on_a_zero_byte_distances_file_is_one_line(tmp_path, capsys):
    from robustpose.benchmarking.stability_run import run_stability

    run_stability(max_images=2, perturbations="fog", severities="1", workers=0,
                  out=tmp_path / "run", plots=False, progress=False)
    (tmp_path / "run" / "distances" / "fog-1.npz").write_bytes(b"")
    assert main(["report", str(tmp_path / "run"), "--no-plots"]) == 1
    err = capsys.readouterr().err.strip()
    assert "fog-1.npz" in err and "unreadable distances file" in err and "\n" not in err


@pytest.mark.parametrize("value", ["abc", "nan", "-1"])
def test_mst_weight_message_names_the_key(value):
    from robustpose.training.stable import StableHeatmap

    with pytest.raises(ValueError, match=r"train\.method_args\.mst_weight"):
        StableHeatmap(mst=True, mst_weight=value)


def test_bundled_model_on_a_16_keypoint_set_is_refused_before_any_cell(data_root, tmp_path):
    from robustpose.benchmarking.api import run_benchmark

    with pytest.raises(ValueError, match="bundled model predicts the 17 COCO keypoints"):
        run_benchmark(dataset="mpii", data_root=data_root / "mpii_mini", max_images=2,
                      corruptions="fog", severities="1", workers=0, out=tmp_path / "run",
                      progress=False, plots=False)
    assert not (tmp_path / "run" / "results.jsonl").exists()
    from robustpose.benchmarking.attack_run import run_attack

    with pytest.raises(ValueError, match="bundled model predicts the 17 COCO keypoints"):
        run_attack("fgsm", dataset="mpii", data_root=data_root / "mpii_mini", max_images=2,
                   eps="2", out=tmp_path / "a", progress=False, plots=False)
