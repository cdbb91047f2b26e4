"""Heatmap losses of the official code, written from their definitions."""
from __future__ import annotations

import torch
from torch import nn


class JointsMSELoss(nn.Module):
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

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                target_weight: torch.Tensor | None = None) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"JointsMSELoss: prediction {tuple(pred.shape)} and target "
                             f"{tuple(target.shape)} differ in shape")
        pred = pred.float()
        target = target.float()
        if self.use_target_weight:
            if target_weight is None:
                raise ValueError("JointsMSELoss(use_target_weight=True) needs target_weight")
            weight = target_weight.float().reshape(pred.shape[0], pred.shape[1], 1, 1)
            pred = pred * weight
            target = target * weight
        return 0.5 * torch.mean((pred - target) ** 2)
