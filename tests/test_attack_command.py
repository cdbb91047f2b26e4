"""`robustpose attack` end to end on real crops (bundled model, coco_val_mini): one record
per cell, resume, card and table, targeted/SPSA/UAP cells, refusals."""
from __future__ import annotations

import json

import pytest

from robustpose.cli import main


def _args(data_root, out, *extra):
    return ["--dataset", "coco-format", "--data-root", str(data_root / "coco_val_mini"),
            "--max-images", "4", "--batch-size", "8", "--out", str(out), *extra]


def _records(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_igsm_run_resumes_per_cell_and_writes_card(data_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["attack", "igsm", *_args(data_root, out, "--eps", "1,8", "--steps", "2")]) == 0
    printed = capsys.readouterr().out
    assert "igsm-U@1/2" in printed and "igsm-U@8/2" in printed
    records = _records(out)
    assert [(r["corruption"], r["severity"]) for r in records] == [
        ("clean", 0), ("igsm-U@1", 2), ("igsm-U@8", 2)]
    clean, small, big = records
    assert 0 < clean["pck"] <= 1 and len(clean["pck_per_joint"]) == 17
    assert big["pck"] < clean["pck"]  # eps 8 hurts the bundled model
    card = json.loads((out / "attack.json").read_text())
    rel = {c["key"]: c["relative_pck"] for c in card["cells"]}
    assert rel["igsm-U@8/2"] == pytest.approx(big["pck"] / clean["pck"], rel=1e-4)
    assert "| igsm-U@8/2 |" in (out / "attack.md").read_text()
    assert (out / "attack_relative.png").is_file() and (out / "attack_joints.png").is_file()
    from robustpose.benchmarking.attack_card import is_attack_folder
    assert is_attack_folder(out)
    # resume: the same cells are done; a new eps adds one cell only
    assert main(["attack", "igsm", *_args(data_root, out, "--eps", "1,8,2", "--steps", "2",
                                          "--no-progress")]) == 0
    assert [r["corruption"] for r in _records(out)] == ["clean", "igsm-U@1", "igsm-U@8", "igsm-U@2"]
    # other settings: refused naming the key
    assert main(["attack", "igsm", *_args(data_root, out, "--eps", "1", "--steps", "2",
                                          "--targeted")]) == 1
    assert "other conventions" in capsys.readouterr().err
    # `robustpose report` rebuilds the attack card (not a corruption table)
    (out / "attack.md").unlink()
    assert main(["report", str(out), "--no-plots"]) == 0
    assert "| igsm-U@2/2 |" in (out / "attack.md").read_text()
    assert "attack.json" in capsys.readouterr().out


def test_targeted_spsa_and_uap_cells(data_root, tmp_path):
    out = tmp_path / "t"
    assert main(["attack", "igsm", *_args(data_root, out, "--eps", "8", "--steps", "2",
                                          "--targeted", "--no-progress", "--no-plots")]) == 0
    cell = _records(out)[-1]
    assert cell["corruption"] == "igsm-T@8" and 0 <= cell["target_pck"] <= 1
    out = tmp_path / "s"
    assert main(["attack", "spsa", *_args(data_root, out, "--eps", "4", "--steps", "3",
                                          "--spsa-samples", "2", "--max-queries", "9",
                                          "--no-progress", "--no-plots")]) == 0
    assert _records(out)[-1]["queries_per_crop"] <= 9
    out = tmp_path / "u"
    assert main(["attack", "uap", *_args(data_root, out, "--eps", "4", "--steps", "1",
                                         "--uap-fit-images", "2", "--no-progress", "--no-plots")]) == 0
    assert (out / "uap" / "uap-eps4-epochs1.npy").is_file()
    assert (out / "uap" / "uap-eps4-epochs1.png").is_file()


def test_white_box_on_onnx_is_refused(data_root, tmp_path, capsys, models_root):
    pytest.importorskip("onnxruntime")
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "configs" / "onnx"
    specs = sorted(spec.glob("blazepose*.yaml"))
    if not specs:
        pytest.skip("no BlazePose spec")
    code = main(["attack", "igsm", "--onnx", str(models_root / "blazepose_landmark_lite.onnx"),
                 "--onnx-spec", str(specs[0]), *_args(data_root, tmp_path / "o", "--eps", "1",
                                                      "--steps", "1")])
    assert code == 1 and "white-box" in capsys.readouterr().err


def test_transfer_from_a_surrogate_at_another_crop_size(data_root, tmp_path):
    """The bundled surrogate (96 x 128) crafts on the victim's 64 x 64 crops resized to its
    own size: its network is called at 128 x 96 (a global hook sees every model call)."""
    import torch

    from robustpose.models.base import PoseModel

    out = tmp_path / "x"
    args = _args(data_root, out, "--eps", "8", "--steps", "2", "--surrogate", "bundled",
                 "--model", "shufflenetv2", "--input-size", "64x64", "--no-progress")
    seen = set()

    def hook(module, inputs):
        if isinstance(module, PoseModel):
            seen.add(tuple(inputs[0].shape[-2:]))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        assert main(["attack", "transfer", *args]) == 0
    finally:
        handle.remove()
    assert seen == {(64, 64), (128, 96)}   # the victim at its size, the surrogate at its own
    cell = _records(out)[-1]
    assert cell["corruption"] == "transfer[bundled]-igsm-U@8" and cell["surrogate"] == "bundled"
    assert (out / "attack_transfer.png").is_file()


def test_plots_of_several_cards_and_the_transfer_matrix(tmp_path):
    from robustpose.benchmarking.attack_card import is_attack_folder
    from robustpose.reports.attack_plots import plot_relative, plot_transfer_matrix

    def card(model, rel):
        return {"model": model, "dataset": "d", "metric": "AP", "cells": [
            {"key": f"igsm-U@{e}/10", "attack": "igsm", "targeted": False, "all_stacks": False,
             "eps": e, "steps": 10, "relative_metric": r,
             "target_pck": None} for e, r in zip((1, 8), rel)]}

    out = plot_relative([card("a", (0.9, 0.2)), card("b", (0.95, None))], tmp_path / "r.png")
    assert out.is_file() and out.stat().st_size > 0
    matrix = plot_transfer_matrix({"a": {"a": 0.1, "b": 0.7}, "b": {"a": None, "b": 0.2}},
                                  tmp_path / "m.png")
    assert matrix.is_file()
    assert not is_attack_folder(tmp_path)


def test_transfer_matrix_labels_shorten_name_checkpoint_surrogates():
    from robustpose.reports.attack_plots import short_label

    assert short_label("deeppose_shufflenetv2=runs/attack_reg/best.pt") == "deeppose_shufflenetv2 (attack_reg)"
    assert short_label("sbl_resnet50=w.pt") == "sbl_resnet50 (w)"
    assert short_label("bundled") == "bundled"
