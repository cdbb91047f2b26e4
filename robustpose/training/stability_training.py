"""Stability training (Zheng et al., CVPR 2016) for heatmap models: ``st_g`` and ``st_a``.

``L = L_task(f(x), y) + alpha * D(f(x), f(x'))`` with ``x'`` a perturbed copy of the clean
crop ``x``; the task loss sees the clean crop only; the gradient flows through both
branches (one network, Zheng et al.'s shared-weight pair), computed in one forward of
``[x; x']`` (one BatchNorm batch).

- ``st_g``: ``x' = clip(x + sigma * n, 0, 1)``, ``n ~ N(0, 1)`` per pixel and channel on the
  [0, 1] scale (Zheng et al.'s Gaussian perturbation; the clip keeps the crop valid), from
  the trainer's torch generator (``cuda_rng`` on a GPU, ``torch_rng`` on the CPU).
- ``st_a``: ``x'`` = one of the paper's ten training perturbations (:data:`TRAIN10`) at a
  random severity 1..5, per crop, through
  :class:`robustpose.augment.CorruptionAugment` with the trainer's ``np_rng``.

``D`` (``distance``): ``'mse'`` (default) -- ``mean((f(x) - f(x'))^2)`` over N x K x h x w,
the task loss's own scale (JointsMSE is 0.5 x such a mean), so ``alpha`` weighs the two
alike; ``'l2'`` -- Zheng et al.'s feature distance, the Euclidean norm of each crop's
heatmap difference, averaged over the batch. Every joint counts (no label needed). Only
the final output (the last stack) enters ``D``.

Defaults (neither the stable-heatmap paper nor Zheng et al. give values for heatmaps):
``alpha = 1``, ``sigma = 0.08`` (the std of the gaussian_noise corruption at severity 1).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from robustpose.augment import CorruptionAugment
from robustpose.corruptions.selection import STABLE_TRAIN10
from robustpose.training.methods import StandardHeatmap, register_method

#: the stable-heatmap paper's ten training perturbations (the corruption grammar's 'train10')
TRAIN10: tuple[str, ...] = STABLE_TRAIN10
PERTURBATIONS = ("gaussian", "corruptions")
DISTANCES = ("mse", "l2")


def stability_distance(clean: torch.Tensor, perturbed: torch.Tensor, distance: str = "mse") -> torch.Tensor:
    """``D(f(x), f(x'))`` for N x K x h x w outputs: 'mse' (mean squared difference) or
    'l2' (per-crop Euclidean norm of the difference, batch mean). Scalar, float32."""
    diff = clean.float() - perturbed.float()
    if distance == "mse":
        return diff.square().mean()
    if distance == "l2":
        return diff.flatten(1).norm(dim=1).mean()
    raise ValueError(f"stability distance must be one of {', '.join(DISTANCES)}, got {distance!r}")


class StabilityTraining(StandardHeatmap):
    """Stability training; see the module docstring. ``train.method_args``:

    Args:
        perturbation: 'gaussian' (ST_g) or 'corruptions' (ST_a).
        alpha: weight of the stability term (1).
        distance: 'mse' (default) or 'l2'.
        sigma: Gaussian noise std on the [0, 1] scale (0.08; 'gaussian' only).
        corruptions, severities: ST_a's perturbations (default :data:`TRAIN10`, 1..5).
    """

    name = "stability_training"

    def __init__(self, use_target_weight: bool = True, intermediate_supervision: bool = True,
                 loss: str = "mse", perturbation: str = "gaussian", alpha: float = 1.0,
                 distance: str = "mse", sigma: float = 0.08,
                 corruptions: Sequence[str] | None = None,
                 severities: Sequence[int] = (1, 2, 3, 4, 5)) -> None:
        super().__init__(use_target_weight, intermediate_supervision, loss)
        who = f"method {self.name!r}"
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"{who}: perturbation must be one of {', '.join(PERTURBATIONS)}; "
                             f"got {perturbation!r}")
        if distance not in DISTANCES:
            raise ValueError(f"{who}: distance must be one of {', '.join(DISTANCES)}; got {distance!r}")
        if not float(alpha) >= 0 or not float(sigma) >= 0:
            raise ValueError(f"{who}: alpha and sigma must be >= 0, got {alpha!r}, {sigma!r}")
        if perturbation == "gaussian" and corruptions is not None:
            raise ValueError(f"{who}: corruptions are for perturbation 'corruptions' (st_a)")
        self.perturbation, self.distance = perturbation, distance
        self.alpha, self.sigma = float(alpha), float(sigma)
        self.corrupt = (CorruptionAugment(tuple(corruptions or TRAIN10), severities)
                        if perturbation == "corruptions" else None)

    def setup(self, trainer: Any) -> None:
        super().setup(trainer)
        self.np_rng = trainer.np_rng
        self.torch_rng = trainer.cuda_rng if trainer.cuda_rng is not None else trainer.torch_rng

    def perturb(self, images: torch.Tensor) -> torch.Tensor:
        """The perturbed copy ``x'`` (N x 3 x H x W in [0, 1], no gradient)."""
        with torch.no_grad():
            if self.corrupt is not None:
                return self.corrupt(images, self.np_rng)
            noise = torch.randn(images.shape, generator=self.torch_rng, device=self.torch_rng.device)
            return (images + self.sigma * noise.to(images.device, images.dtype)).clamp_(0.0, 1.0)

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        images, target, weight = batch["image"], batch["target"], batch["target_weight"]
        n = images.shape[0]
        both = torch.cat([images, self.perturb(images)])
        if self.intermediate_supervision:
            outs = list(model(both, all_outputs=True))
        else:
            outs = [model(both)]
        task = sum(self.criterion(o[:n], target, weight) for o in outs)
        stability = stability_distance(outs[-1][:n], outs[-1][n:], self.distance)
        return {"loss": task + self.alpha * stability, "task": task, "stability": stability}


@register_method("st_g")
class StabilityTrainingGaussian(StabilityTraining):
    """ST_g: stability training against Gaussian noise (``perturbation='gaussian'``)."""

    name = "st_g"

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.setdefault("perturbation", "gaussian") != "gaussian":
            raise ValueError("method 'st_g': perturbation is 'gaussian' (use st_a for the corruptions)")
        super().__init__(**kwargs)


@register_method("st_a")
class StabilityTrainingAll(StabilityTraining):
    """ST_a: stability training against the ten training perturbations
    (``perturbation='corruptions'``, default :data:`TRAIN10` at severities 1..5)."""

    name = "st_a"

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.setdefault("perturbation", "corruptions") != "corruptions":
            raise ValueError("method 'st_a': perturbation is 'corruptions' (use st_g for noise)")
        super().__init__(**kwargs)
