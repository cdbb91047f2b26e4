"""Training methods: small objects that turn a batch into losses.

The :class:`~robustpose.training.trainer.Trainer` owns the loop, the model, the main
optimizer, the schedule, AMP, clipping, checkpoints and validation. A method decides what
one training step computes. The interface (all hooks optional except ``losses``):

- ``model`` as a method sees it is the trainer's forward wrapper (DDP-wrapped when
  distributed): ``model(images)`` -> final output (N,K,h,w heatmaps), and
  ``model(images, all_outputs=True)`` -> list of every output (hourglass stacks; one
  element for single-output models). Going through it keeps DDP's gradient sync.

- ``losses(model, batch) -> dict[str, Tensor]``: scalar losses; the key ``'loss'`` is the
  total that is back-propagated (if absent, the sum of all values is). Called inside
  autocast when AMP is on. ``batch`` is the collated dataset item, already on the
  device: ``image`` (N,3,H,W in [0,1]), ``target`` (N,K,h,w), ``target_weight`` (N,K,1),
  ``meta``.
- ``setup(trainer)``: called once after the model is on its device and wrapped (DDP);
  build teachers, generators, ... here. ``trainer.device``, ``trainer.config``,
  ``trainer.np_rng`` / ``trainer.torch_rng`` (seeded generators saved in checkpoints)
  and ``trainer.wrap_module(module)`` (DDP-wraps a trainable extra module) are available.
- ``extra_modules() -> dict[str, nn.Module]``: modules to checkpoint besides the model.
- ``extra_optimizers() -> dict[str, Optimizer]``: further optimizers; the trainer gives
  each the same MultiStepLR schedule and checkpoints both.
- ``train_step(model, batch, step) -> dict[str, float]``: the whole step. The default
  computes ``losses`` and calls ``step.backward_and_step(loss)``; methods with
  alternating updates (AdvMix: pose step, then generator step) override it and call
  ``step.backward_and_step(loss, optimizer=name)`` once per update.
- ``state_dict() / load_state_dict(state)``: method state (plain types / tensors only,
  so checkpoints load with ``weights_only=True``).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from robustpose.training.losses import JointsMSELoss


class TrainingMethod:
    """Base class of training methods; see the module docstring for the hooks."""

    name = "base"

    def setup(self, trainer: Any) -> None:
        """Build extra modules / optimizers once the trainer has its model and device."""

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def extra_modules(self) -> dict[str, nn.Module]:
        return {}

    def extra_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def train_step(self, model: nn.Module, batch: dict, step: Any) -> dict[str, float]:
        with step.autocast():
            losses = self.losses(model, batch)
        total = losses["loss"] if "loss" in losses else sum(losses.values())
        step.backward_and_step(total)
        out = {k: float(v.detach()) for k, v in losses.items()}
        out.setdefault("loss", float(total.detach()))
        return out

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


class StandardHeatmap(TrainingMethod):
    """Standard top-down heatmap training (HRNet / SimpleBaseline).

    Loss: :class:`JointsMSELoss` between the model's heatmaps and the Gaussian targets,
    with target weights. A model whose ``forward_all`` returns several outputs (stacked
    hourglass) gets the loss summed over all of them (intermediate supervision);
    ``intermediate_supervision=False`` uses only the final output.
    """

    name = "standard"

    def __init__(self, use_target_weight: bool = True, intermediate_supervision: bool = True) -> None:
        self.criterion = JointsMSELoss(use_target_weight=use_target_weight)
        self.intermediate_supervision = intermediate_supervision

    def setup(self, trainer: Any) -> None:
        kind = getattr(trainer.model, "output_kind", "heatmaps")
        if kind != "heatmaps":
            raise ValueError(f"train.method 'standard' trains heatmap models; "
                             f"{trainer.config['model']['name']!r} outputs {kind}")

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        target, weight = batch["target"], batch["target_weight"]
        if self.intermediate_supervision:
            outputs = model(batch["image"], all_outputs=True)
        else:
            outputs = [model(batch["image"])]
        loss = sum(self.criterion(out, target, weight) for out in outputs)
        return {"loss": loss}


#: name -> factory(use_target_weight=..., **method_args)
METHODS: dict[str, Callable[..., TrainingMethod]] = {"standard": StandardHeatmap}


def register_method(name: str) -> Callable:
    """Decorator registering a method class under ``name`` (for ``train.method``)."""
    def wrap(cls: Callable[..., TrainingMethod]) -> Callable[..., TrainingMethod]:
        METHODS[name] = cls
        return cls
    return wrap


def build_method(config: dict) -> TrainingMethod:
    """The method named by ``train.method`` with ``train.method_args``."""
    name = config["train"]["method"]
    if name not in METHODS:
        raise ValueError(f"unknown train.method {name!r}; choose from {', '.join(sorted(METHODS))}")
    args = dict(config["train"].get("method_args") or {})
    args.setdefault("use_target_weight", config["train"]["use_target_weight"])
    try:
        return METHODS[name](**args)
    except TypeError as exc:
        raise ValueError(f"train.method_args for {name!r}: {exc}") from None
