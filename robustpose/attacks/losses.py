"""What an attack optimises: a shared loss between a model's output and a reference.

An attack *ascends* :meth:`AttackObjective.__call__`:

- untargeted: ``+ loss(output, reference)``, the reference being the ground-truth targets
  (heatmaps / coordinates from the model's codec) or, by default, the model's own clean
  prediction (detached; the study's choice when labels are unknown);
- targeted: ``- loss(output, target)``, the target being another pose's encoding
  (:func:`robustpose.attacks.targets.shuffled_pose_targets`).

The loss is one of :mod:`robustpose.losses` by registry name (``mse``, ``smoothl1`` for
heatmap models, ``coord_l1``, ``coord_l2`` for regression models), an attack loss of
:data:`ATTACK_LOSSES` (``pck_margin``: :class:`PckMarginLoss`, either output kind), or any
callable ``(pred, target, weight) -> scalar``. ``loss='auto'`` picks by the model's
``output_kind``: ``mse`` (:class:`~robustpose.losses.JointsMSELoss`) for heatmaps,
``coord_l2`` (:class:`~robustpose.losses.CoordL2Loss`) for coordinates; ``robustpose
attack`` replaces it by the model's own training loss when its checkpoint records one
(:func:`attack_loss_for`).
``all_stacks=True`` sums the loss over every output of ``model.forward_all`` (the
study's hourglass "ALL" variant); otherwise only the final output counts.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

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


#: the losses an attack can ascend for each output kind (``robustpose attack --loss``)
KIND_LOSSES = {"heatmaps": ("mse", "smoothl1", "pck_margin"),
               "coords": ("coord_l1", "coord_l2", "pck_margin")}
AUTO_LOSS = {"heatmaps": "mse", "coords": "coord_l2"}


#: the default task loss of robustpose.training's methods that name one, for a training
#: config whose ``train.method_args`` gives none (attacks sit below training and cannot
#: import it; tests/test_attack_losses.py checks these against the method classes)
METHOD_LOSS = {"standard": "mse", "regression": "coord_l1"}


def training_loss(meta: Mapping | None = None, config: Mapping | None = None) -> tuple[str | None, str]:
    """(the loss a model was trained with, where that was read), from what its files record:
    best.pt's meta ``train_loss`` (written by the trainer), else the training config's
    ``train.method_args.loss`` or, without one, the default loss of its ``train.method``
    (:data:`METHOD_LOSS`); ``(None, 'not recorded')`` otherwise."""
    if meta and meta.get("train_loss"):
        return str(meta["train_loss"]), "checkpoint meta train_loss"
    train = (config or {}).get("train") or {}
    method_loss = (train.get("method_args") or {}).get("loss")
    if method_loss:
        return str(method_loss), "training config train.method_args.loss"
    method = train.get("method")
    if method in METHOD_LOSS:
        return METHOD_LOSS[method], f"training config: method {method}'s default loss"
    return None, "not recorded"


def attack_loss_for(kind: str, trained_with: str | None = None) -> str:
    """The default attack loss of a model: its training loss ``trained_with`` when it is one
    an attack can use on ``kind`` outputs (:data:`KIND_LOSSES`), else the ``'auto'`` rule
    (mse for heatmaps, coord_l2 for coordinates)."""
    if trained_with in KIND_LOSSES[kind]:
        return str(trained_with)
    return AUTO_LOSS[kind]


def resolve_loss(loss: LossLike, kind: str, targeted: bool = False) -> Callable[..., torch.Tensor]:
    """``'auto'`` -> mse (heatmaps) / coord_l2 (coords); ``'pck_margin'`` ->
    :class:`PckMarginLoss` (its targeted form with ``targeted``); another name ->
    :func:`build_loss`; a callable as it is."""
    if callable(loss):
        return loss
    name = AUTO_LOSS[kind] if loss == "auto" else str(loss)
    if name in ATTACK_LOSSES:
        return ATTACK_LOSSES[name](targeted=targeted)
    return build_loss(name, use_target_weight=True)


def soft_argmax(heatmaps: torch.Tensor, beta: float = 20.0) -> torch.Tensor:
    """Differentiable peak location of (N, K, h, w) heatmaps -> (N, K, 2) (x, y) in heatmap
    cells: the softmax-weighted mean cell of ``beta * heatmap / max``. Dividing by each
    map's (detached) maximum makes the temperature scale-free: cells within a few tenths
    of the peak value get weight, so the location follows the argmax that decoding reads
    (a plain softmax over [0, 1] values would sit near the map's centre)."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.float().reshape(n, k, h * w)
    peak = flat.detach().amax(-1, keepdim=True).clamp_min(1e-6)
    p = torch.softmax(beta * flat / peak, dim=-1).reshape(n, k, h, w)
    xs = torch.arange(w, dtype=p.dtype, device=p.device)
    ys = torch.arange(h, dtype=p.dtype, device=p.device)
    return torch.stack([(p.sum(-2) * xs).sum(-1), (p.sum(-1) * ys).sum(-1)], dim=-1)


class PckMarginLoss(torch.nn.Module):
    """A bounded loss on the PCK decision: per joint ``min(d / thr, 1)`` (untargeted), the
    joint's distance from the reference in units of the PCK threshold, saturating once it
    is past it (a joint already counted as wrong gives no gradient, so the budget goes to
    the joints still inside); targeted: ``max(d / thr - 1, 0)`` (a clamped hinge that is
    zero once the joint is within the threshold of its target). Mean over N x K of
    ``weight * value`` (zero-weight joints count in the mean, as in the shared losses).

    ``thr`` = ``pck_thr * max(frame) / padding``: PCK@``pck_thr`` of the box size, the box
    being the crop's longer side without the top-down padding (exact when the box fills
    that side, the usual case for a standing person). Heatmaps (N, K, h, w): locations by
    :func:`soft_argmax`, distances and frame in heatmap cells. Coordinates (N, K, 2): in the
    model's units; :meth:`set_frame` gives the crop size in pixels the outputs refer to and
    the pixels per unit (``(W, H)`` for coordinates normalised to the crop), which
    :class:`~robustpose.attacks.Attack` calls with the crop the network sees.
    """

    def __init__(self, targeted: bool = False, pck_thr: float = 0.1, padding: float = 1.25,
                 beta: float = 20.0) -> None:
        super().__init__()
        self.targeted, self.pck_thr = bool(targeted), float(pck_thr)
        self.padding, self.beta = float(padding), float(beta)
        self.frame: tuple[float, float] | None = None
        self.px_per_unit: tuple[float, float] = (1.0, 1.0)

    def set_frame(self, frame: tuple[float, float], px_per_unit: tuple[float, float] = (1.0, 1.0)) -> None:
        """Crop size (w, h) in pixels of coordinate outputs, and pixels per output unit."""
        self.frame = (float(frame[0]), float(frame[1]))
        self.px_per_unit = (float(px_per_unit[0]), float(px_per_unit[1]))

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        if pred.shape != target.shape or pred.dim() not in (3, 4):
            raise ValueError(f"pck_margin: prediction {tuple(pred.shape)} and target "
                             f"{tuple(target.shape)} must be equal (N, K, h, w) or (N, K, 2)")
        if pred.dim() == 4:
            p = soft_argmax(pred, self.beta)
            with torch.no_grad():
                t = soft_argmax(target, self.beta)
            frame = (pred.shape[-1], pred.shape[-2])
        else:
            if self.frame is None:
                raise ValueError("pck_margin on coordinates needs the crop frame (set_frame)")
            scale = pred.new_tensor(self.px_per_unit)
            p, t, frame = pred.float() * scale, target.float().detach() * scale, self.frame
        thr = self.pck_thr * max(frame) / self.padding
        # the epsilon keeps the gradient finite at d = 0 (an untargeted start on the reference)
        d = ((p - t).pow(2).sum(-1) + 1e-12).sqrt() / thr
        value = (d - 1.0).clamp(min=0.0) if self.targeted else d.clamp(max=1.0)
        if weight is not None:
            value = value * weight.float().reshape(value.shape)
        return value.mean()


#: losses defined here (by name), beside robustpose.losses' registry
ATTACK_LOSSES: dict[str, type] = {"pck_margin": PckMarginLoss}


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
        self.loss = resolve_loss(loss, kind, targeted)
        self.targeted = bool(targeted)
        self.all_stacks = bool(all_stacks)
        self.sign = -1.0 if self.targeted else 1.0

    def set_frame(self, frame: tuple[float, float], px_per_unit: tuple[float, float]) -> None:
        """Tell a loss that measures distances (``pck_margin``) the crop frame (w, h) in
        pixels of coordinate outputs and the pixels per output unit."""
        if hasattr(self.loss, "set_frame"):
            self.loss.set_frame(frame, px_per_unit)

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
