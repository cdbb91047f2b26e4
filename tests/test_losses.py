"""robustpose.losses against hand computations: HRNet JointsMSE, AdvMix's SmoothL1 variant,
heatmap KD, coordinate L1/L2, the stable-heatmap weighted cross-entropy (Eq. 8) and MST loss
(Eq. 9), weighting, one-line shape errors and the registry."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from robustpose.losses import (LOSSES, CoordL1Loss, CoordL2Loss, HeatmapKDLoss, JointsMSELoss,
                               JointsSmoothL1Loss, MaximumStabilityLoss, WeightedCrossEntropyLoss,
                               build_loss, list_losses)

REPO = Path(__file__).resolve().parents[1]


def heatmaps(seed: int, shape=(3, 5, 8, 6)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pred, gt = torch.rand(*shape, generator=gen), torch.rand(*shape, generator=gen)
    return pred, gt, torch.rand(shape[0], shape[1], 1, generator=gen)


def per_joint(criterion, pred, gt, weight=None) -> torch.Tensor:
    """HRNet's structure: sum over joints of 0.5 * criterion(pred_k * w_k, gt_k * w_k), / K."""
    k = pred.shape[1]
    total = 0.0
    for j in range(k):
        p, g = pred[:, j], gt[:, j]
        if weight is not None:
            p, g = p * weight[:, j, :, None], g * weight[:, j, :, None]
        total = total + 0.5 * criterion(p, g)
    return total / k


# ---------------------------------------------------------------- heatmap losses
def test_joints_mse_loss_matches_hrnet_definition():
    pred, gt, weight = heatmaps(0)
    assert torch.allclose(JointsMSELoss(True)(pred, gt, weight), per_joint(F.mse_loss, pred, gt, weight),
                          atol=1e-7)
    assert torch.allclose(JointsMSELoss(False)(pred, gt), per_joint(F.mse_loss, pred, gt), atol=1e-7)
    # (N, K) weights mean the same as (N, K, 1)
    assert torch.equal(JointsMSELoss()(pred, gt, weight), JointsMSELoss()(pred, gt, weight[..., 0]))


def test_smoothl1_matches_the_official_advmix_structure():
    pred, gt, weight = heatmaps(1)
    pred = pred * 4 - 2  # differences beyond beta = 1 exercise the linear branch too
    expected = per_joint(F.smooth_l1_loss, pred, gt, weight)
    assert torch.allclose(JointsSmoothL1Loss()(pred, gt, weight), expected, atol=1e-7)
    # element-wise by hand: 0.5 d^2 / beta below beta, |d| - beta / 2 above; times 0.5, mean
    beta = 0.3
    d = (pred - gt) * weight[..., None]
    by_hand = torch.where(d.abs() < beta, 0.5 * d ** 2 / beta, d.abs() - 0.5 * beta)
    assert torch.allclose(JointsSmoothL1Loss(beta=beta)(pred, gt, weight), 0.5 * by_hand.mean(),
                          atol=1e-7)


def test_smoothl1_is_half_of_mse_on_heatmaps_in_unit_range():
    """Heatmaps in [0, 1] and weights <= 1: SmoothL1 stays quadratic, = JointsMSELoss / 2."""
    pred, gt, weight = heatmaps(2)
    assert torch.allclose(JointsSmoothL1Loss()(pred, gt, weight), 0.5 * JointsMSELoss()(pred, gt, weight),
                          rtol=1e-6)


@pytest.mark.parametrize("name", ["mse", "smoothl1", "kd"])
def test_zero_weight_joint_does_not_contribute(name):
    loss = build_loss(name)
    pred, gt = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    weight = torch.ones(2, 3, 1)
    weight[:, 1] = 0
    pred[:, 1] = 100.0  # wrong everywhere, but unlabelled
    assert loss(pred, gt, weight).item() == 0.0
    pred[0, 0, 0, 0] = 1.0  # one wrong pixel of a labelled joint; the mean still counts joint 1
    # 0.5 * d^2 for MSE; SmoothL1 at |d| = beta = 1 is on its linear branch: 0.5 * (|d| - 0.5)
    per_element = 0.5 * (1.0 - 0.5) if name == "smoothl1" else 0.5
    assert loss(pred, gt, weight).item() == pytest.approx(per_element / (2 * 3 * 16))


def test_half_precision_predictions_give_a_float32_loss():
    pred, gt, weight = heatmaps(3)
    out = JointsMSELoss()(pred.half(), gt, weight)
    assert out.dtype == torch.float32
    assert torch.allclose(out, JointsMSELoss()(pred.half().float(), gt, weight))


# ---------------------------------------------------------------- knowledge distillation
def test_kd_is_the_criterion_against_the_detached_teacher():
    student, teacher, weight = heatmaps(4)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    kd = HeatmapKDLoss()(student, teacher, weight)
    assert torch.equal(kd, JointsMSELoss()(student, teacher, weight))
    kd.backward()
    assert student.grad is not None and teacher.grad is None  # the teacher stays frozen
    plain = HeatmapKDLoss("smoothl1")(student, teacher)  # no weights: every joint counts fully
    assert torch.equal(plain, JointsSmoothL1Loss(False)(student, teacher))
    assert build_loss("kd", criterion="smoothl1", beta=0.5).criterion.beta == 0.5


def test_kd_refuses_an_unknown_criterion():
    with pytest.raises(ValueError, match="HeatmapKDLoss: criterion must be 'mse' or 'smoothl1'"):
        HeatmapKDLoss("coord_l1")


# ---------------------------------------------------------------- coordinates
def test_coordinate_losses_by_hand():
    pred = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    target = torch.tensor([[[0.0, 0.0], [3.0, 9.0]]])
    weight = torch.tensor([[[1.0], [0.0]]])  # second joint unlabelled
    # L1: (|1| + |2| + 0 + 0) / 4 elements; L2: (1 + 4 + 0 + 0) / 4
    assert CoordL1Loss()(pred, target, weight).item() == pytest.approx(0.75)
    assert CoordL2Loss()(pred, target, weight).item() == pytest.approx(1.25)
    # unweighted: the second joint's 5-px error counts
    assert CoordL1Loss(False)(pred, target).item() == pytest.approx((1 + 2 + 0 + 5) / 4)
    assert CoordL2Loss(False)(pred, target).item() == pytest.approx((1 + 4 + 0 + 25) / 4)


def test_coordinate_losses_match_torch_references():
    gen = torch.Generator().manual_seed(5)
    pred, target = torch.rand(4, 17, 2, generator=gen) * 192, torch.rand(4, 17, 2, generator=gen) * 192
    weight = (torch.rand(4, 17, 1, generator=gen) > 0.3).float()
    assert torch.allclose(CoordL1Loss()(pred, target, weight), F.l1_loss(pred * weight, target * weight))
    assert torch.allclose(CoordL2Loss()(pred, target, weight), F.mse_loss(pred * weight, target * weight))


# ---------------------------------------------------------------- errors and registry
@pytest.mark.parametrize("call, message", [
    (lambda: JointsMSELoss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 5), torch.ones(2, 3, 1)),
     r"JointsMSELoss: prediction \(2, 3, 4, 4\) and target \(2, 3, 4, 5\) differ in shape"),
    (lambda: JointsSmoothL1Loss()(torch.zeros(2, 3, 2), torch.zeros(2, 3, 2), torch.ones(2, 3, 1)),
     r"JointsSmoothL1Loss expects \(N, K, H, W\) heatmaps; got shape \(2, 3, 2\)"),
    (lambda: CoordL1Loss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 1)),
     r"CoordL1Loss expects \(N, K, D\) coordinates"),
    (lambda: CoordL2Loss()(torch.zeros(2, 3, 2), torch.zeros(2, 3, 2), torch.ones(2, 4, 1)),
     r"target_weight \(2, 4, 1\) does not hold one weight per joint of \(N, K\) = \(2, 3\)"),
    (lambda: JointsMSELoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)),
     r"JointsMSELoss\(use_target_weight=True\) needs target_weight"),
    (lambda: HeatmapKDLoss()(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2)), "differ in shape"),
    (lambda: build_loss("msee"), r"unknown loss 'msee'; choose from coord_l1, coord_l2, kd, mse, mst, smoothl1, wce"),
    (lambda: build_loss("mse", sigma=2), r"loss 'mse': .*sigma"),
    (lambda: build_loss("smoothl1", beta=0), "beta must be > 0"),
])
def test_errors_are_one_line(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_registry_names_every_loss():
    assert list_losses() == ["coord_l1", "coord_l2", "kd", "mse", "mst", "smoothl1", "wce"]
    assert isinstance(build_loss("mse", use_target_weight=False), JointsMSELoss)
    assert not build_loss("mse", use_target_weight=False).use_target_weight
    assert LOSSES["smoothl1"] is JointsSmoothL1Loss


def test_training_reexports_the_shared_loss():
    from robustpose import training
    assert training.JointsMSELoss is JointsMSELoss


def test_losses_import_without_the_trainer():
    """Attacks import the losses: that must not pull in robustpose.training (or data)."""
    code = ("import sys, robustpose.losses; "
            "bad = [m for m in sys.modules if m.startswith('robustpose.') and m != 'robustpose.losses' "
            "and not m.startswith('robustpose.utils')]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- stable heatmap regression
def test_weighted_cross_entropy_by_hand():
    """Eq. 8: -sum_ij w y log softmax(r) per joint, times the joint weight, mean over N x K."""
    log2 = torch.log(torch.tensor(2.0)).item()
    pred = torch.tensor([[[[0.0, log2], [0.0, 0.0]],        # softmax 0.2, 0.4, 0.2, 0.2
                          [[3.0, -1.0], [0.5, 2.0]]]])      # an invisible joint
    target = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]], [[1.0, 0.7], [0.7, 0.7]]]])
    weight = torch.tensor([[[1.0], [0.0]]])
    by_hand = -(1.0 * torch.log(torch.tensor(0.2)) + 0.5 * torch.log(torch.tensor(0.4))) / 2
    loss = WeightedCrossEntropyLoss()(pred, target, weight)
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)  # 2.0676 / 2 joints
    labels = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]])  # y masks a pixel
    assert WeightedCrossEntropyLoss()(pred, target, weight, labels).item() == pytest.approx(
        -torch.log(torch.tensor(0.2)).item() / 2, rel=1e-6)
    unweighted = build_loss("wce", use_target_weight=False)(pred, target)
    p1 = torch.softmax(pred[0, 1].flatten(), 0)
    joint1 = -(target[0, 1].flatten() * torch.log(p1)).sum()
    assert unweighted.item() == pytest.approx((2 * by_hand + joint1).item() / 2, rel=1e-6)


def test_weighted_cross_entropy_is_lowest_at_the_normalised_target_and_has_gradients():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 4, 5, generator=gen) * (torch.rand(2, 3, 4, 5, generator=gen) > 0.5)
    weight = torch.ones(2, 3, 1)
    best = torch.log(target + 1e-9)  # softmax = target / sum(target): the optimum
    criterion = WeightedCrossEntropyLoss()
    for _ in range(3):
        other = (best + 0.3 * torch.randn(2, 3, 4, 5, generator=gen)).requires_grad_()
        assert criterion(other, target, weight) > criterion(best, target, weight)
        criterion(other, target, weight).backward()
        assert torch.isfinite(other.grad).all() and other.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="needs target_weight"):
        criterion(best, target)


def test_mst_on_constructed_pairs():
    """Eq. 9 per map: mean_ij (r' - r)^2 + (r'(p*) - r(p*))^2, p* = argmax of the clean map."""
    clean = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[0.2, 0.1], [0.3, 0.0]]]])
    perturbed = torch.tensor([[[[0.5, 0.5], [0.0, 0.0]], [[0.2, 0.1], [0.3, 0.0]]]])
    # map 0: diff (-0.5, 0.5, 0, 0): mean 0.125, at p* = (0, 0): 0.25 -> 0.375; map 1: 0
    mst = MaximumStabilityLoss()
    assert mst(perturbed, clean).item() == pytest.approx(0.375 / 2)
    assert mst(clean, clean).item() == 0.0
    assert mst(perturbed, clean, torch.tensor([[0.0, 1.0]])).item() == 0.0  # weighted per joint
    # p* comes from the clean map: the same pair the other way round has p* = (0, 0) or (0, 1)
    assert mst(clean, perturbed).item() == pytest.approx(0.375 / 2)  # tie -> first pixel
    soft = MaximumStabilityLoss(normalisation="softmax", scale=4.0)
    r, r2 = 4 * torch.softmax(clean.flatten(2), 2), 4 * torch.softmax(perturbed.flatten(2), 2)
    d = r2 - r
    by_hand = (d.pow(2).mean(2) + d.gather(2, r.argmax(2, keepdim=True))[..., 0].pow(2)).mean()
    assert soft(perturbed, clean).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_mst_gradients_reach_both_outputs_unless_the_clean_one_is_detached():
    gen = torch.Generator().manual_seed(1)
    for detach, clean_grad in [(False, True), (True, False)]:
        clean = torch.rand(2, 3, 4, 4, generator=gen).requires_grad_()
        pert = torch.rand(2, 3, 4, 4, generator=gen).requires_grad_()
        MaximumStabilityLoss(detach_clean=detach)(pert, clean).backward()
        assert pert.grad.abs().sum() > 0
        assert (clean.grad is not None and clean.grad.abs().sum() > 0) == clean_grad
    with pytest.raises(ValueError, match="normalisation must be"):
        MaximumStabilityLoss(normalisation="log")
    with pytest.raises(ValueError, match="two .N, K, H, W. maps"):
        MaximumStabilityLoss()(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
