"""Attack losses: the bounded pck_margin loss on constructed outputs (coordinates and
heatmaps), its registration, and the default attack loss = the model's training loss."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpose.attacks import (IGSM, AttackObjective, PckMarginLoss, ResizedInput,
                                attack_loss_for, resolve_loss, soft_argmax, training_loss)

REPO = Path(__file__).resolve().parents[1]
FRAME = (96, 128)                    # (w, h) crop pixels
THR = 0.1 * 128 / 1.25               # PCK@0.1 of the box = the crop's longer side / padding


def _coords(distances: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """(pred, target) (1, K, 2): joint k of pred is ``distances[k]`` px right of its target."""
    target = torch.tensor([[[40.0 + 3 * k, 30.0 + 5 * k] for k in range(len(distances))]])
    pred = target.clone()
    pred[0, :, 0] += torch.tensor(distances)
    return pred.requires_grad_(True), target


def test_pck_margin_on_coordinates_is_distance_over_threshold_and_saturates():
    loss = PckMarginLoss()
    loss.set_frame(FRAME)
    pred, target = _coords([0.0, 0.5 * THR, 3.0 * THR])
    weight = torch.ones(1, 3)
    value = loss(pred, target, weight)
    assert value.item() == pytest.approx((0.0 + 0.5 + 1.0) / 3, abs=1e-5)
    (grad,) = torch.autograd.grad(value, [pred])
    assert grad[0, 1, 0] > 0                           # inside the threshold: pushed further out
    assert torch.all(grad[0, 2] == 0)                  # already past it: no budget spent there
    weight[0, 1] = 0
    assert loss(pred, target, weight).item() == pytest.approx(1.0 / 3, abs=1e-5)


def test_targeted_pck_margin_is_a_hinge_that_is_zero_within_the_threshold():
    loss = PckMarginLoss(targeted=True)
    loss.set_frame(FRAME)
    pred, target = _coords([0.5 * THR, 3.0 * THR])
    value = loss(pred, target, torch.ones(1, 2))
    assert value.item() == pytest.approx((0.0 + 2.0) / 2, abs=1e-5)
    (grad,) = torch.autograd.grad(value, [pred])
    assert torch.all(grad[0, 0] == 0) and grad[0, 1, 0] > 0   # descending pulls joint 1 in


def test_normalised_coordinates_are_measured_in_pixels():
    loss = PckMarginLoss()
    loss.set_frame(FRAME, px_per_unit=FRAME)
    pred, target = _coords([0.5 * THR])
    scale = torch.tensor(FRAME, dtype=torch.float32)
    assert loss(pred / scale, target / scale, None).item() == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(ValueError, match="crop frame"):
        PckMarginLoss()(pred, target, None)


def _gaussians(centres: list[tuple[float, float]], size=(24, 32), sigma=2.0) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size[1], dtype=torch.float32),
                            torch.arange(size[0], dtype=torch.float32), indexing="ij")
    return torch.stack([torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
                        for cx, cy in centres])[None]


def test_pck_margin_on_heatmaps_uses_a_differentiable_soft_argmax():
    centres = [(8.3, 10.6), (15.0, 20.2), (12.0, 16.0)]
    target = _gaussians(centres)
    assert torch.allclose(soft_argmax(target)[0], torch.tensor(centres), atol=0.05)
    thr = 0.1 * 32 / 1.25                    # in heatmap cells
    moved = [(8.3 + 0.5 * thr, 10.6), (15.0, 20.2 + 4 * thr), (12.0, 16.0)]
    pred = _gaussians(moved).requires_grad_(True)
    value = PckMarginLoss()(pred, target, torch.ones(1, 3))
    assert value.item() == pytest.approx((0.5 + 1.0 + 0.0) / 3, abs=0.03)
    (grad,) = torch.autograd.grad(value, [pred])
    assert grad[0, 0].abs().sum() > 0 and grad[0, 1].abs().sum() == 0


def test_pck_margin_is_registered_and_gets_the_crop_the_network_sees():
    assert isinstance(resolve_loss("pck_margin", "heatmaps"), PckMarginLoss)
    assert resolve_loss("pck_margin", "coords", targeted=True).targeted
    assert AttackObjective("coords", "pck_margin", targeted=True).loss.targeted
    torch.manual_seed(0)
    from robustpose.models import create_model

    net = create_model("deeppose_resnet18")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    atk = IGSM(net, eps=4, steps=2, loss="pck_margin")
    adv = atk(x)
    assert atk.objective.loss.frame == (64.0, 64.0) and (adv - x).abs().max() * 255 > 2
    resized = IGSM(ResizedInput(net, (32, 48)), eps=4, steps=1, loss="pck_margin")
    resized(x)
    assert resized.objective.loss.frame == (32.0, 48.0)


def test_training_loss_and_the_default_attack_loss():
    assert training_loss({"train_loss": "coord_l1"}, None) == ("coord_l1", "checkpoint meta train_loss")
    assert training_loss(None, {"train": {"method": "regression", "method_args": {"loss": "coord_l2"}}})[0] == "coord_l2"
    assert training_loss(None, {"train": {"method": "regression", "method_args": {}}})[0] == "coord_l1"
    assert training_loss(None, {"train": {"method": "stable"}}) == (None, "not recorded")
    assert attack_loss_for("coords", "coord_l1") == "coord_l1"
    assert attack_loss_for("coords", None) == "coord_l2"          # today's auto rule
    assert attack_loss_for("heatmaps", "wce") == "mse"            # not an attack loss: auto
    # the defaults the attack assumes for a config without method_args.loss are the methods'
    from robustpose.attacks.losses import METHOD_LOSS
    from robustpose.training.methods import StandardHeatmap
    from robustpose.training.regression import CoordinateRegressionMethod

    assert METHOD_LOSS == {"standard": StandardHeatmap().loss_name,
                           "regression": CoordinateRegressionMethod().loss_name}


@pytest.fixture(scope="module")
def deeppose_checkpoints(tmp_path_factory):
    """best.pt of a DeepPose model three ways: train_loss in its meta; nothing in its meta
    but the trainer's config.yaml beside it; nothing recorded at all."""
    from robustpose.codecs import InferenceSetting
    from robustpose.models import create_model, save_checkpoint

    tmp = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    model = create_model("deeppose_shufflenetv2")
    inference = InferenceSetting(input_size=(96, 128)).to_dict()
    paths = {}
    for name, meta in (("meta", {"train_loss": "coord_l1"}), ("config", {}), ("none", {})):
        (tmp / name).mkdir()
        paths[name] = save_checkpoint(model, tmp / name / "best.pt", meta={"inference": inference, **meta})
    shutil.copy(REPO / "configs" / "attacks" / "synthpose_deeppose_shufflenetv2.yaml",
                tmp / "config" / "config.yaml")
    return paths


def _run(data_root, checkpoint, out, loss="auto"):
    from robustpose.benchmarking.attack_run import run_attack

    card = run_attack("igsm", "deeppose_shufflenetv2", checkpoint=checkpoint, dataset="coco-format",
                      data_root=data_root / "coco_val_mini", max_images=1, eps="2", steps="1",
                      loss=loss, out=out, plots=False, progress=False)
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return card, records[-1]


def test_robustpose_attack_uses_the_recorded_training_loss(data_root, deeppose_checkpoints, tmp_path):
    expected = {"meta": ("coord_l1", "checkpoint meta"), "config": ("coord_l1", "training config"),
                "none": ("coord_l2", "auto rule")}
    for name, (loss, why) in expected.items():
        card, cell = _run(data_root, deeppose_checkpoints[name], tmp_path / name)
        assert card["settings"]["loss_used"] == {"model": loss}, name
        assert why in card["settings"]["loss_source"]["model"], name
        assert cell["loss"] == loss
        assert f"loss: {loss} (" in (tmp_path / name / "attack.md").read_text()
    card, cell = _run(data_root, deeppose_checkpoints["meta"], tmp_path / "pm", loss="pck_margin")
    assert cell["loss"] == "pck_margin" and card["settings"]["loss_source"] == {"model": "--loss"}
    with pytest.raises(ValueError, match="does not fit the coords outputs"):
        _run(data_root, deeppose_checkpoints["meta"], tmp_path / "bad", loss="mse")
    assert np.isfinite(cell["pck"])
