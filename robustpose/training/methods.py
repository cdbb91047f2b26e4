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
- ``codec_config(config) -> dict | None`` (classmethod): the codec the method needs
  (e.g. one whose ``encode`` also returns a multi-label map), read before the datasets
  are built; ``None`` keeps ``data.codec``.
- ``setup(trainer)``: called once after the model is on its device and wrapped (DDP);
  build teachers, generators, ... here. ``trainer.device``, ``trainer.config``,
  ``trainer.np_rng`` / ``trainer.torch_rng`` (seeded generators saved in checkpoints)
  and ``trainer.wrap_module(module)`` (DDP-wraps a trainable extra module) are available.
- ``extra_modules() -> dict[str, nn.Module]``: trained modules to checkpoint besides the
  model (wrap them with ``trainer.wrap_module`` for DDP).
- ``extra_optimizers() -> dict[str, Optimizer | OptimizerSpec]``: further optimizers, each
  with its own GradScaler and checkpointed. A bare optimizer follows the model's
  MultiStepLR (``train.lr_steps`` / ``lr_factor``) and ``train.grad_clip``;
  ``OptimizerSpec(opt, lr_steps=, lr_factor=, grad_clip=)`` (robustpose.training.optim)
  overrides any of them (``grad_clip=0``: none). Its lr is the one it is built with;
  ``trainer.make_optimizer(module, lr=...)`` builds one like the model's. The epoch log
  gets an ``lr_<name>`` column per extra optimizer.
- ``frozen_modules() -> dict[str, nn.Module]``: modules that are used but never trained
  (a KD teacher). After ``setup`` the trainer moves them to the device, sets ``eval()``
  (again at every epoch) and ``requires_grad_(False)``; they are never DDP-wrapped, may
  not share parameters with an optimizer and are *not* checkpointed: ``setup`` rebuilds
  them from their source (e.g. a weights file) on every start, so a resumed run's teacher
  is the original source, never anything trained.
- ``train_step(model, batch, step) -> dict[str, Tensor | float]``: the whole step. The
  default computes ``losses`` and calls ``step.backward_and_step(loss)``; methods with
  alternating updates (AdvMix: pose step, then generator step) override it and call
  ``step.backward_and_step(loss, optimizer=name)`` once per update. Return *detached*
  tensors, not floats: the trainer sums them on the device and reads them once per epoch
  (a ``float()`` per step would stall the GPU). ``step.no_sync(*modules)`` is DDP's
  ``no_sync`` for the DDP-wrapped ones (a no-op otherwise): put a player's forward *and*
  backward inside it when that backward must not all-reduce the other player's gradients
  (AdvMix's generator step runs through the pose model).
- ``state_dict() / load_state_dict(state)``: method state (plain types / tensors only,
  so checkpoints load with ``weights_only=True``).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from robustpose.losses import build_loss
from robustpose.training.optim import OptimizerSpec
from robustpose.utils.registry import Registry


class TrainingMethod:
    """Base class of training methods; see the module docstring for the hooks."""

    name = "base"

    @classmethod
    def codec_config(cls, config: dict) -> dict | None:
        """The codec block this method trains with (``{type: ..., ...}``, as
        ``data.codec``), or ``None`` to use the config's. Consulted on the class before
        the datasets are built, so both splits, validation and ``robustpose test`` get
        this codec; start from ``training.datasets.codec_block(config)`` to extend the
        user's block."""
        return None

    def setup(self, trainer: Any) -> None:
        """Build extra modules / optimizers once the trainer has its model and device."""

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def extra_modules(self) -> dict[str, nn.Module]:
        return {}

    def extra_optimizers(self) -> dict[str, torch.optim.Optimizer | OptimizerSpec]:
        return {}

    def frozen_modules(self) -> dict[str, nn.Module]:
        return {}

    def train_step(self, model: nn.Module, batch: dict, step: Any) -> dict[str, torch.Tensor]:
        with step.autocast():
            losses = self.losses(model, batch)
        total = losses["loss"] if "loss" in losses else sum(losses.values())
        step.backward_and_step(total)
        out = {k: v.detach() for k, v in losses.items()}
        out.setdefault("loss", total.detach())
        return out

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


def supervised_outputs(model: nn.Module, images: torch.Tensor,
                       intermediate_supervision: bool) -> list[torch.Tensor]:
    """The outputs a task loss is summed over: every ``forward_all`` output (hourglass
    stacks; one element for single-output models) or only the final one."""
    if intermediate_supervision:
        return model(images, all_outputs=True)
    return [model(images)]


class StandardHeatmap(TrainingMethod):
    """Standard top-down heatmap training (HRNet / SimpleBaseline).

    Loss: HRNet's ``JointsMSELoss`` (robustpose.losses, ``loss='mse'``) between the model's
    heatmaps and the targets, with target weights; ``loss='smoothl1'`` is the variant the
    official AdvMix code trains with. A model whose ``forward_all`` returns several outputs
    (stacked hourglass) gets the loss summed over all of them (intermediate supervision);
    ``intermediate_supervision=False`` uses only the final output.
    """

    name = "standard"

    def __init__(self, use_target_weight: bool = True, intermediate_supervision: bool = True,
                 loss: str = "mse") -> None:
        if loss not in ("mse", "smoothl1"):
            raise ValueError(f"method 'standard': loss must be 'mse' or 'smoothl1', got {loss!r}")
        self.loss_name = loss  # recorded in best.pt's meta (train_loss): attacks default to it
        self.criterion = build_loss(loss, use_target_weight=use_target_weight)
        self.intermediate_supervision = intermediate_supervision

    def setup(self, trainer: Any) -> None:
        kind = getattr(trainer.model, "output_kind", "heatmaps")
        if kind != "heatmaps":
            raise ValueError(f"train.method 'standard' trains heatmap models; "
                             f"{trainer.config['model']['name']!r} outputs {kind}")

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        target, weight = batch["target"], batch["target_weight"]
        outputs = supervised_outputs(model, batch["image"], self.intermediate_supervision)
        loss = sum(self.criterion(out, target, weight) for out in outputs)
        return {"loss": loss}


#: name -> factory(use_target_weight=..., **method_args)
METHODS: Registry = Registry("train.method")
METHODS.register("standard", StandardHeatmap)


def register_method(name: str) -> Callable:
    """Decorator registering a method class under ``name`` (for ``train.method``); a taken
    name raises a one-line ``ValueError`` (it used to overwrite silently)."""
    return lambda cls: METHODS.register(name, cls)


def method_names() -> list[str]:
    """The registered ``train.method`` names, sorted (argparse ``choices``); the methods
    register when ``robustpose.training`` is imported."""
    return METHODS.names()


def build_method(config: dict) -> TrainingMethod:
    """The method named by ``train.method`` with ``train.method_args``."""
    name = config["train"]["method"]
    factory = METHODS.get(name)  # one-line error naming the choices and the nearest
    args = dict(config["train"].get("method_args") or {})
    args.setdefault("use_target_weight", config["train"]["use_target_weight"])
    try:
        return factory(**args)
    except TypeError as exc:
        raise ValueError(f"train.method_args for {name!r}: {exc}") from None
