"""What the trainer gives each player: optimizers with their own schedule and clipping,
frozen modules (teachers), and the step (AMP, backward, clipping, ``no_sync``).

A method's extra optimizer (``TrainingMethod.extra_optimizers``) is either a bare
``torch.optim.Optimizer`` -- it then follows the model's schedule (``train.lr_steps``,
``train.lr_factor``) and clipping (``train.grad_clip``) -- or an :class:`OptimizerSpec`
whose fields override those. Its learning rate is the one it was built with
(``trainer.make_optimizer(module, lr=...)`` builds one like the model's).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from robustpose.training.distributed import no_sync


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer with its own schedule and clipping; ``None`` fields take the model's.

    Attributes:
        optimizer: the optimizer (its param groups' ``lr`` is the base learning rate).
        lr_steps: epochs after which the lr is multiplied by ``lr_factor`` (MultiStepLR
            milestones); None = ``train.lr_steps``.
        lr_factor: the decay factor; None = ``train.lr_factor``.
        grad_clip: max L2 norm of this optimizer's gradients; None = ``train.grad_clip``,
            0 = no clipping.
    """

    optimizer: torch.optim.Optimizer
    lr_steps: Sequence[int] | None = None
    lr_factor: float | None = None
    grad_clip: float | None = None


@dataclass(frozen=True)
class Schedule:
    """A resolved schedule: sorted milestones (epochs), decay factor, clip norm (0 = off)."""

    lr_steps: tuple[int, ...]
    lr_factor: float
    grad_clip: float


def resolve_spec(entry: torch.optim.Optimizer | OptimizerSpec, train: dict,
                 name: str) -> tuple[torch.optim.Optimizer, Schedule]:
    """The optimizer of ``entry`` and its schedule, defaults taken from the ``train`` block."""
    spec = entry if isinstance(entry, OptimizerSpec) else OptimizerSpec(entry)
    if not isinstance(spec.optimizer, torch.optim.Optimizer):
        raise ValueError(f"extra optimizer {name!r} is a {type(spec.optimizer).__name__}, "
                         f"not a torch.optim.Optimizer or OptimizerSpec")
    steps = train["lr_steps"] if spec.lr_steps is None else spec.lr_steps
    factor = train["lr_factor"] if spec.lr_factor is None else spec.lr_factor
    clip = train["grad_clip"] if spec.grad_clip is None else spec.grad_clip
    return spec.optimizer, Schedule(tuple(sorted(int(s) for s in steps)), float(factor),
                                    float(clip or 0.0))


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule,
                   last_epoch: int = -1) -> torch.optim.lr_scheduler.MultiStepLR:
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(schedule.lr_steps),
                                                gamma=schedule.lr_factor, last_epoch=last_epoch)


def follow_schedule(sched: torch.optim.lr_scheduler.MultiStepLR,
                    schedule: Schedule) -> torch.optim.lr_scheduler.MultiStepLR | None:
    """A scheduler at the same epoch following ``schedule``; None when ``sched`` already does.

    The new scheduler is built through the public constructor: each group's lr is set to
    what the new schedule gives before epoch ``E = sched.last_epoch`` (milestones < E),
    then ``MultiStepLR(..., last_epoch=E - 1)`` takes its one initial step to E, applying
    a milestone at E itself. So the lr is ``initial_lr * factor ** #(milestones <= E)``.
    """
    if tuple(sorted(sched.milestones.elements())) == schedule.lr_steps and \
            sched.gamma == schedule.lr_factor:
        return None
    done = sched.last_epoch
    before = sum(1 for s in schedule.lr_steps if s < done)
    for group in sched.optimizer.param_groups:
        group["lr"] = group["initial_lr"] * schedule.lr_factor ** before
    return make_scheduler(sched.optimizer, schedule, last_epoch=done - 1)


def freeze_modules(modules: dict[str, torch.nn.Module], device: torch.device,
                   optimizers: dict[str, torch.optim.Optimizer],
                   trained: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Module]:
    """Frozen modules (teachers), moved in place: on ``device``, eval mode, no gradients.

    They are never DDP-wrapped, belong to no optimizer and are not checkpointed (the
    method rebuilds them from their source in ``setup``); a name also in ``trained``
    (the method's extra modules), a DDP wrapper or a parameter some optimizer updates is
    refused with a one-line ValueError.
    """
    from torch.nn.parallel import DistributedDataParallel
    clash = set(modules) & set(trained)
    if clash:
        raise ValueError(f"module {sorted(clash)[0]!r} is both frozen and trained "
                         f"(frozen_modules and extra_modules)")
    optimized = {id(p): name for name, opt in optimizers.items()
                 for group in opt.param_groups for p in group["params"]}
    for name, module in modules.items():
        if isinstance(module, DistributedDataParallel):
            raise ValueError(f"frozen module {name!r} must not be DDP-wrapped")
        owner = next((optimized[id(p)] for p in module.parameters() if id(p) in optimized), None)
        if owner is not None:
            raise ValueError(f"frozen module {name!r} has parameters in optimizer {owner!r}")
        module.to(device).eval().requires_grad_(False)
    return dict(modules)


class StepContext:
    """What ``method.train_step`` gets: autocast, backward + step, ``no_sync``.

    ``backward_and_step(loss, optimizer=name)`` zeroes that optimizer's gradients,
    back-propagates the (AMP-scaled) loss, clips that optimizer's parameters to its own
    ``grad_clip`` (unscaled first) and steps it with its own GradScaler.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.trainer.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def no_sync(self, *modules: torch.nn.Module) -> contextlib.AbstractContextManager:
        """No DDP gradient all-reduce for these modules inside the block (forward and
        backward); a no-op for modules that are not DDP-wrapped (single process)."""
        return no_sync(*modules)

    def backward_and_step(self, loss: torch.Tensor,
                          optimizer: str | Sequence[str] = "model") -> None:
        """Zero, back-propagate, clip and step. ``optimizer`` may name several optimizers
        (e.g. ``("model", "generator")`` for a gradient-reversal step): one backward fills
        every one's gradients, each is clipped to its own ``grad_clip`` and stepped, all
        through the first one's GradScaler (PyTorch's recipe for one backward and several
        optimizers)."""
        names = (optimizer,) if isinstance(optimizer, str) else tuple(optimizer)
        opts = [self.trainer.optimizers[name] for name in names]
        scaler = self.trainer.scalers[names[0]]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        for name, opt in zip(names, opts):
            clip = self.trainer.schedules[name].grad_clip
            if clip:
                scaler.unscale_(opt)
                params = [p for group in opt.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, clip)
        for opt in opts:
            scaler.step(opt)
        scaler.update()
