"""Pose losses shared by training methods and attacks (this module imports only torch and
the registry helper of ``robustpose.utils``).

Heatmap losses (inputs N x K x H x W; heatmap values are dimensionless, ~[0, 1]):

- :class:`JointsMSELoss` (``'mse'``): HRNet's criterion, ``0.5 * mean((w * (pred - gt))^2)``.
- :class:`JointsSmoothL1Loss` (``'smoothl1'``): the criterion the official AdvMix code runs
  under the name ``JointsMSELoss`` -- the same per-joint structure with ``nn.SmoothL1Loss``
  in place of ``nn.MSELoss``. AdvMix methods default to ``'mse'`` (what the paper states);
  ``'smoothl1'`` reproduces the official code.
- :class:`HeatmapKDLoss` (``'kd'``): the student's heatmaps against a frozen teacher's,
  with the same criterion family (AdvMix's KD term); the teacher gets no gradient.

Coordinate losses for regression models (inputs N x K x D, D = 2 for (x, y), in whatever
unit the codec produces, e.g. input pixels or a [0, 1]-normalised crop):

- :class:`CoordL1Loss` (``'coord_l1'``): ``mean(|w * (pred - gt)|)``, in coordinate units.
- :class:`CoordL2Loss` (``'coord_l2'``): ``mean((w * (pred - gt))^2)``, in squared units
  (= half the mean squared Euclidean distance per joint for D = 2).

Stable heatmap regression (Zhang et al. 2022):

- :class:`WeightedCrossEntropyLoss` (``'wce'``, Eq. 8): HDHR logits against the HD target
  and its multi-label map, per-map pixel softmax, summed over pixels.
- :class:`MaximumStabilityLoss` (``'mst'``, Eq. 9): outputs on a perturbed crop against
  those on the clean crop, pixel mean plus the difference at the clean maximum.

Every loss follows HRNet's weighting: prediction and target of joint k are both
multiplied by its weight ``w_k`` (0 for an unlabelled joint, which then contributes
nothing but still counts in the mean's denominator), and the mean runs over every
element. Target weights may be (N, K, 1) or (N, K). Inputs are computed in float32
(half-precision predictions under autocast are upcast). :func:`build_loss` makes a loss
from its registry name so configs and attacks can name one::

    from robustpose.losses import build_loss
    criterion = build_loss("smoothl1", use_target_weight=True)
    loss = criterion(heatmaps, target, target_weight)       # scalar tensor
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robustpose.utils.registry import Registry

__all__ = ["CoordL1Loss", "CoordL2Loss", "HeatmapKDLoss", "JointsMSELoss", "JointsSmoothL1Loss",
           "LOSSES", "MaximumStabilityLoss", "WeightedCrossEntropyLoss", "build_loss",
           "list_losses", "register_loss"]

#: registry name -> loss class (or factory taking keyword arguments)
LOSSES: Registry = Registry("loss")


def register_loss(name: str) -> Callable:
    """Decorator registering a loss class under ``name`` (for :func:`build_loss`); a taken
    name raises a one-line ``ValueError``."""
    return lambda cls: LOSSES.register(name, cls)


def list_losses() -> list[str]:
    """The registered loss names, sorted (argparse ``choices``)."""
    return LOSSES.names()


def build_loss(name: str, **kwargs) -> nn.Module:
    """The loss registered as ``name``, built with ``kwargs`` (one-line ValueError otherwise)."""
    factory = LOSSES.get(name)  # one-line error naming the choices and the nearest
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ValueError(f"loss {name!r}: {exc}") from None


class _WeightedJointsLoss(nn.Module):
    """Shared checks and HRNet weighting; subclasses define the element-wise mean."""

    #: number of dimensions of a prediction: 4 for heatmaps, 3 for coordinates
    ndim = 4
    layout = "(N, K, H, W) heatmaps"

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = bool(use_target_weight)

    def _reduce(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                target_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss of ``pred`` against ``target`` (weights: (N, K, 1) or (N, K))."""
        name = type(self).__name__
        if pred.shape != target.shape:
            raise ValueError(f"{name}: prediction {tuple(pred.shape)} and target "
                             f"{tuple(target.shape)} differ in shape")
        if pred.dim() != self.ndim:
            raise ValueError(f"{name} expects {self.layout}; got shape {tuple(pred.shape)}")
        pred = pred.float()
        target = target.float()
        if self.use_target_weight:
            if target_weight is None:
                raise ValueError(f"{name}(use_target_weight=True) needs target_weight")
            n, k = pred.shape[:2]
            if target_weight.numel() != n * k:
                raise ValueError(f"{name}: target_weight {tuple(target_weight.shape)} does not "
                                 f"hold one weight per joint of (N, K) = ({n}, {k})")
            weight = target_weight.float().reshape(n, k, *([1] * (pred.dim() - 2)))
            pred = pred * weight
            target = target * weight
        return self._reduce(pred, target)


@register_loss("mse")
class JointsMSELoss(_WeightedJointsLoss):
    """HRNet's JointsMSELoss: ``0.5 * mean over joints of MSE(pred_k * w_k, gt_k * w_k)``.

    The per-joint MSE averages over the batch and the heatmap pixels, so the value equals
    ``0.5 * mean((pred - gt)^2 * w^2)`` over all N x K x H x W elements (w = 1 without
    target weights).

    Args:
        use_target_weight: multiply prediction and target of joint k by its weight
            (0 for unlabelled joints, so they contribute nothing).
    Shapes:
        pred, target: (N, K, H, W); target_weight: (N, K, 1) or (N, K). Returns a scalar.
    """

    def _reduce(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.mean((pred - target) ** 2)


@register_loss("smoothl1")
class JointsSmoothL1Loss(_WeightedJointsLoss):
    """The official AdvMix criterion: HRNet's JointsMSELoss with SmoothL1 per joint.

    ``0.5 * mean over joints of SmoothL1(pred_k * w_k, gt_k * w_k)`` with PyTorch's
    SmoothL1 (``0.5 d^2 / beta`` for ``|d| < beta``, else ``|d| - 0.5 beta``; mean over the
    batch and pixels), i.e. ``0.5 * mean(smooth_l1(w * (pred - gt)))`` over every element.
    Heatmaps lie in [0, 1], so with weights <= 1 every ``|d| < beta = 1`` and the value is
    exactly half of :class:`JointsMSELoss` (the quadratic branch; under Adam a constant loss
    scale barely changes training); the two differ only where ``|d| >= beta``.

    Args:
        use_target_weight: as :class:`JointsMSELoss`.
        beta: SmoothL1 threshold in heatmap units (PyTorch's default 1.0, as the official code).
    Shapes:
        pred, target: (N, K, H, W); target_weight: (N, K, 1) or (N, K). Returns a scalar.
    """

    def __init__(self, use_target_weight: bool = True, beta: float = 1.0) -> None:
        super().__init__(use_target_weight)
        if not beta > 0:
            raise ValueError(f"JointsSmoothL1Loss: beta must be > 0, got {beta!r}")
        self.beta = float(beta)

    def _reduce(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 0.5 * F.smooth_l1_loss(pred, target, reduction="mean", beta=self.beta)


@register_loss("kd")
class HeatmapKDLoss(nn.Module):
    """Knowledge distillation on heatmaps: ``criterion(student, teacher.detach(), w)``.

    AdvMix's KD term: the student's heatmaps regress a frozen teacher's heatmaps with
    the same criterion as the ground-truth term. The teacher output is detached, so no
    gradient reaches the teacher even if it was computed with autograd on.

    Args:
        criterion: name of a heatmap loss ('mse' or 'smoothl1').
        **criterion_kwargs: passed to it (e.g. ``beta`` for 'smoothl1').
    Shapes:
        student, teacher: (N, K, H, W); target_weight: optional (N, K, 1) or (N, K);
        without it every joint has weight 1. Returns a scalar.
    """

    def __init__(self, criterion: str = "mse", **criterion_kwargs) -> None:
        super().__init__()
        if criterion not in ("mse", "smoothl1"):
            raise ValueError(f"HeatmapKDLoss: criterion must be 'mse' or 'smoothl1', got {criterion!r}")
        self.criterion = build_loss(criterion, use_target_weight=True, **criterion_kwargs)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor,
                target_weight: torch.Tensor | None = None) -> torch.Tensor:
        if target_weight is None:  # weight 1 multiplies exactly: same value as unweighted
            target_weight = torch.ones(student.shape[:2], device=student.device)
        return self.criterion(student, teacher.detach(), target_weight)


@register_loss("coord_l1")
class CoordL1Loss(_WeightedJointsLoss):
    """Coordinate L1 for regression models: ``mean(|w_k * (pred - gt)|)``.

    Units: those of the coordinates (input pixels, or the codec's normalised crop).

    Shapes:
        pred, target: (N, K, D), D = 2 for (x, y); target_weight: (N, K, 1) or (N, K).
        Returns a scalar (mean over the N x K x D elements).
    """

    ndim = 3
    layout = "(N, K, D) coordinates"

    def _reduce(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(pred, target, reduction="mean")


@register_loss("coord_l2")
class CoordL2Loss(_WeightedJointsLoss):
    """Coordinate L2 (mean squared error) for regression models: ``mean((w_k * (pred - gt))^2)``.

    Units: squared coordinate units. For D = 2 this is half the mean squared Euclidean
    distance per joint (DeepPose's L2 objective up to that constant).

    Shapes:
        pred, target: (N, K, D); target_weight: (N, K, 1) or (N, K). Returns a scalar.
    """

    ndim = 3
    layout = "(N, K, D) coordinates"

    def _reduce(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred, target, reduction="mean")


def _joint_weights(pred: torch.Tensor, target_weight: torch.Tensor | None, name: str) -> torch.Tensor:
    """(N, K) float weights from (N, K, 1) / (N, K) target weights (one-line errors)."""
    n, k = pred.shape[:2]
    if target_weight is None:
        raise ValueError(f"{name}(use_target_weight=True) needs target_weight")
    if target_weight.numel() != n * k:
        raise ValueError(f"{name}: target_weight {tuple(target_weight.shape)} does not hold one "
                         f"weight per joint of (N, K) = ({n}, {k})")
    return target_weight.float().reshape(n, k)


@register_loss("wce")
class WeightedCrossEntropyLoss(nn.Module):
    """Weighted cross-entropy of highly differentiated heatmaps (stable heatmap regression, Eq. 8).

    Per joint ``L_nk = -sum_ij w_ij * y_ij * log softmax(r_nk)_ij``: ``r`` the predicted logits,
    softmax over the h x w pixels of the map, ``w`` the HD target (``target``), ``y`` the
    multi-label map (``labels``, the codec's ``target_labels``; default ``w > 0``). The loss
    is ``(1 / (N K)) * sum_nk v_nk * L_nk`` with ``v`` the joint's target weight (0 masks an
    invisible joint, which still counts in the mean, the convention of every loss here;
    ``use_target_weight=False``: ``v = 1``). Sum over pixels, mean over batch and joints.

    Shapes:
        pred, target, labels: (N, K, H, W); target_weight: (N, K, 1) or (N, K). Returns a
        scalar (nats, times the HD weights).
    """

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = bool(use_target_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                target_weight: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        name = type(self).__name__
        if pred.shape != target.shape or (labels is not None and labels.shape != pred.shape):
            raise ValueError(f"{name}: prediction {tuple(pred.shape)}, target {tuple(target.shape)}"
                             f"{'' if labels is None else f', labels {tuple(labels.shape)}'} differ in shape")
        if pred.dim() != 4:
            raise ValueError(f"{name} expects (N, K, H, W) logit maps; got shape {tuple(pred.shape)}")
        n, k = pred.shape[:2]
        log_p = torch.log_softmax(pred.float().reshape(n, k, -1), dim=2)
        w = target.float().reshape(n, k, -1)
        y = (w > 0).float() if labels is None else labels.float().reshape(n, k, -1)
        per_joint = -(w * y * log_p).sum(dim=2)
        if self.use_target_weight:
            per_joint = per_joint * _joint_weights(pred, target_weight, name)
        return per_joint.mean()


@register_loss("mst")
class MaximumStabilityLoss(nn.Module):
    """Maximum stability training loss (stable heatmap regression, Eq. 9).

    For the outputs on a perturbed crop ``r'`` and on its clean crop ``r``, per map:
    ``mean_ij (r'_ij - r_ij)^2 + (r'(p*) - r(p*))^2`` with ``p* = argmax r`` (the clean map's
    maximum, first in row-major order on ties). ``r`` is the output as its task loss reads
    it: ``normalisation='raw'`` (Gaussian-trained maps) or ``'softmax'`` (the per-map pixel
    softmax of logits, HDHR), times ``scale`` (default 1; the ``stable`` method passes the
    HD region sum for softmax maps so ``r`` is on the HD target's scale, peak ~1). The
    value is the mean over the N x K maps, each times its target weight when one is given
    (``(1 / (N K)) sum v_nk MST_nk``). ``detach_clean`` stops the gradient through ``r``
    (the clean output then acts as a fixed target); default off: Eq. 9 is symmetric and
    the paper names no stop-gradient.

    Shapes:
        perturbed, clean: (N, K, H, W); target_weight: optional (N, K, 1) or (N, K).
        Returns a scalar (squared heatmap units, or squared probability x scale^2).
    """

    def __init__(self, normalisation: str = "raw", scale: float = 1.0,
                 detach_clean: bool = False) -> None:
        super().__init__()
        if normalisation not in ("raw", "softmax"):
            raise ValueError(f"MaximumStabilityLoss: normalisation must be 'raw' or 'softmax', "
                             f"got {normalisation!r}")
        if not float(scale) > 0:
            raise ValueError(f"MaximumStabilityLoss: scale must be > 0, got {scale!r}")
        self.normalisation, self.scale = normalisation, float(scale)
        self.detach_clean = bool(detach_clean)

    def _r(self, maps: torch.Tensor) -> torch.Tensor:
        flat = maps.float().flatten(2)
        if self.normalisation == "softmax":
            flat = torch.softmax(flat, dim=2)
        return flat * self.scale

    def forward(self, perturbed: torch.Tensor, clean: torch.Tensor,
                target_weight: torch.Tensor | None = None) -> torch.Tensor:
        name = type(self).__name__
        if perturbed.shape != clean.shape or perturbed.dim() != 4:
            raise ValueError(f"{name}: expects two (N, K, H, W) maps of one shape, got "
                             f"{tuple(perturbed.shape)} and {tuple(clean.shape)}")
        r_pert, r_clean = self._r(perturbed), self._r(clean)
        if self.detach_clean:
            r_clean = r_clean.detach()
        diff = r_pert - r_clean
        peak = r_clean.detach().argmax(dim=2, keepdim=True)  # first maximum (torch >= 1.7)
        per_map = diff.pow(2).mean(dim=2) + diff.gather(2, peak)[..., 0].pow(2)
        if target_weight is not None:
            per_map = per_map * _joint_weights(perturbed, target_weight, name)
        return per_map.mean()
