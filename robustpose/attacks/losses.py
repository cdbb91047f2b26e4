"""What an attack optimises: a shared loss between a model's output and a reference.

An attack *ascends* :meth:`AttackObjective.__call__`:

- untargeted: ``+ loss(output, reference)``, the reference being the ground-truth targets
  (heatmaps / coordinates from the model's codec) or, by default, the model's own clean
  prediction (detached; the study's choice when labels are unknown);
- targeted: ``- loss(output, target)``, the target being another pose's encoding
  (:func:`robustpose.attacks.targets.shuffled_pose_targets`).

The loss is one of :mod:`robustpose.losses` by registry name: ``mse``
(:class:`~robustpose.losses.JointsMSELoss`) for heatmap models, ``coord_l2``
(:class:`~robustpose.losses.CoordL2Loss`) for regression models (``loss='auto'`` picks by
the model's ``output_kind``), or any callable ``(pred, target, weight) -> scalar``.
``all_stacks=True`` sums the loss over every output of ``model.forward_all`` (the
study's hourglass "ALL" variant); otherwise only the final output counts.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from robustpose.losses import build_loss

LossLike = str | Callable[..., torch.Tensor]


def output_kind(model: Any) -> str:
    """'heatmaps' or 'coords' for a model or adapter (default 'heatmaps')."""
    # an adapter's network is its .model; a module (ResizedInput included) speaks for itself
    inner = model if isinstance(model, torch.nn.Module) else getattr(model, "model", model)
    kind = getattr(inner, "output_kind", None) or getattr(getattr(model, "spec", None),
                                                          "output_kind", None)
    # 'auto' (a callable's): heatmaps until its outputs say otherwise (SPSA checks)
    return kind if kind in ("heatmaps", "coords") else "heatmaps"


def resolve_loss(loss: LossLike, kind: str) -> Callable[..., torch.Tensor]:
    """``'auto'`` -> mse (heatmaps) / coord_l2 (coords); a name -> :func:`build_loss`."""
    if callable(loss):
        return loss
    name = {"heatmaps": "mse", "coords": "coord_l2"}[kind] if loss == "auto" else str(loss)
    return build_loss(name, use_target_weight=True)


def as_targets(targets: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``targets`` (tensor, or dict with ``target`` and optional ``target_weight``) ->
    (target on ``like``'s device/dtype, weight (N, K) of ones when absent)."""
    if isinstance(targets, dict):
        target, weight = targets["target"], targets.get("target_weight")
    else:
        target, weight = targets, None
    target = torch.as_tensor(target).to(like.device, torch.float32)
    if target.shape != like.shape:
        raise ValueError(f"attack target {tuple(target.shape)} does not match the model "
                         f"output {tuple(like.shape)}")
    n, k = like.shape[:2]
    weight = torch.ones(n, k, device=like.device) if weight is None else \
        torch.as_tensor(weight).to(like.device, torch.float32).reshape(n, k)
    return target, weight


class AttackObjective:
    """The value an attack ascends, from the model's outputs and a reference.

    ``total(outputs, target, weight)``: the sum over crops (one loss call on the batch:
    the shared losses are means over equally sized crops, so ``N * loss(batch)`` is the sum
    of the per-crop losses and each crop's input gradient is its own); what gradient
    attacks differentiate. ``per_crop(...)``: (N,) values, for SPSA's per-crop estimates.
    ``outputs``: the list of stack outputs (``forward_all``) or one tensor.
    """

    def __init__(self, kind: str, loss: LossLike = "auto", targeted: bool = False,
                 all_stacks: bool = False) -> None:
        self.kind = kind
        self.loss = resolve_loss(loss, kind)
        self.targeted = bool(targeted)
        self.all_stacks = bool(all_stacks)
        self.sign = -1.0 if self.targeted else 1.0

    def _used(self, outputs: Any) -> list[torch.Tensor]:
        stacks = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        return stacks if self.all_stacks else stacks[-1:]

    def total(self, outputs: Any, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Scalar: sign * sum over crops (and over stacks with ``all_stacks``) of the loss."""
        used = self._used(outputs)
        n = used[0].shape[0]
        return self.sign * n * sum(self.loss(out.float(), target, weight) for out in used)

    def per_crop(self, outputs: Any, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """(N,) sign * loss of each crop (one loss call per crop)."""
        used = self._used(outputs)
        return self.sign * sum(self._one_each(out.float(), target, weight) for out in used)

    def _one_each(self, pred: torch.Tensor, target: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
        def one(p: torch.Tensor, t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return self.loss(p[None], t[None], w[None])

        try:  # one vectorised call; a loss vmap cannot trace falls back to a loop
            return torch.func.vmap(one)(pred, target, weight)
        except Exception:  # noqa: BLE001 -- any tracing failure: the loop is exact
            return torch.stack([one(pred[i], target[i], weight[i])
                                for i in range(pred.shape[0])])
