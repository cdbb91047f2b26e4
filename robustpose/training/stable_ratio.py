"""How strong is a stability regulariser? Its gradient norm against the task loss's.

Stability training (``st_g``, ``st_a``: ``task + alpha * D``) and the MST loss (``stable``
with ``mst``: ``task + mst_weight * MST``) each add a regulariser to the task loss with a
weight nobody tuned against the others; a comparison of the rows then compares weights as
much as loss forms. :func:`gradient_ratio` measures, on the trainer's own first batches
(the ones fine-tuning starts with), the ratio

    rho = || grad_theta (weight * R) || / || grad_theta L_task ||

over the model's trainable parameters, in train mode, with the method's own perturbations
(its seeded generators). ``rho`` is linear in the weight, so :func:`matched_weight` gives
the weight at which a method's ratio equals a target: ``weight * target / rho``.
docs/stable.md ("Comparable regularisers") has the command.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: method name -> (the regulariser's key in ``method.losses``, its weight's ``method_args`` key)
REGULARISERS: dict[str, tuple[str, str]] = {"stable": ("mst", "mst_weight"),
                                            "st_g": ("stability", "alpha"),
                                            "st_a": ("stability", "alpha")}

__all__ = ["REGULARISERS", "regulariser_of", "gradient_ratio", "matched_weight"]


def regulariser_of(method: Any) -> tuple[str, str, float]:
    """(loss key, ``method_args`` weight key, the weight in use) of a set-up method."""
    name = getattr(method, "name", type(method).__name__)
    if name not in REGULARISERS:
        raise ValueError(f"train.method {name!r} has no stability regulariser; choose from "
                         f"{', '.join(REGULARISERS)}")
    if name == "stable" and not method.mst:
        raise ValueError("train.method 'stable' has no regulariser with mst: false")
    loss_key, weight_key = REGULARISERS[name]
    return loss_key, weight_key, float(getattr(method, weight_key))


def _grad_norm(loss: torch.Tensor, params: list[torch.nn.Parameter], retain: bool) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True)
    total = sum(float(g.detach().double().pow(2).sum()) for g in grads if g is not None)
    return float(np.sqrt(total))


def gradient_ratio(trainer: Any, batches: int = 3) -> dict[str, Any]:
    """Regulariser-to-task gradient-norm ratio of ``trainer.method`` on its first batches.

    ``trainer``: a :class:`~robustpose.training.Trainer` (model, method set up, loader of
    epoch 0). Per batch, one forward as in training (the method's ``losses``), then the
    gradient of the task loss and of the unweighted regulariser, each over every
    trainable parameter. No optimizer step; BatchNorm running statistics do move (train
    mode), so use a trainer built for the measurement.

    -> ``{'method', 'weight_key', 'weight', 'task_grad': [per batch], 'reg_grad': [per
    batch, unweighted], 'unit_ratio': mean of reg_grad / task_grad, 'ratio': weight *
    unit_ratio, 'batches'}`` (gradient norms in loss units per parameter unit)."""
    if int(batches) < 1:
        raise ValueError(f"batches must be >= 1, got {batches!r}")
    method = trainer.method
    loss_key, weight_key, weight = regulariser_of(method)
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    trainer.forward.train()
    task_norms, reg_norms = [], []
    for i, batch in enumerate(trainer._train_loader(0)):
        if i >= int(batches):
            break
        batch = {k: v.to(trainer.device) if isinstance(v, torch.Tensor) else v
                 for k, v in batch.items()}
        if hasattr(method, "with_perturbed"):  # MST draws its perturbed copy in train_step
            batch = method.with_perturbed(batch)
        losses = method.losses(trainer.forward, batch)
        task_norms.append(_grad_norm(losses["task"], params, retain=True))
        reg_norms.append(_grad_norm(losses[loss_key], params, retain=False))
    if not task_norms:
        raise ValueError("gradient_ratio: the training split gave no batch")
    if min(task_norms) <= 0:
        raise ValueError("gradient_ratio: a task gradient is zero (no labelled joint?)")
    unit = float(np.mean(np.divide(reg_norms, task_norms)))
    return {"method": method.name, "weight_key": weight_key, "weight": weight,
            "task_grad": task_norms, "reg_grad": reg_norms, "unit_ratio": unit,
            "ratio": weight * unit, "batches": len(task_norms)}


def matched_weight(measured: dict[str, Any], target_ratio: float) -> float:
    """The weight at which ``measured`` (a :func:`gradient_ratio` result) reaches
    ``target_ratio``: ``target_ratio / unit_ratio`` (the ratio is linear in the weight)."""
    if not float(target_ratio) > 0:
        raise ValueError(f"target_ratio must be > 0, got {target_ratio!r}")
    if not measured["unit_ratio"] > 0:
        raise ValueError(f"{measured['method']}: the regulariser's gradient is zero on the "
                         "measured batches; no weight can match a ratio")
    return float(target_ratio) / float(measured["unit_ratio"])
