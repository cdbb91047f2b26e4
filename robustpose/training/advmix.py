"""AdvMix (Wang et al., CVPR 2021) and its ablations as training methods.

``train.method: advmix`` -- each step:

1. views: the clean crop and K augmentations of it (default AutoAugment with the restricted
   policy, GridMask), drawn from the trainer's ``np_rng`` (N x V x 3 x H x W, V = K + 1);
2. weights: the U-Net generator's per-pixel softmax over V (``mixing: adversarial``);
   ``I_mix = sum_v M_v * view_v`` in [0, 1] pixel space (equal to the official mix in
   normalised space, because the weights sum to 1);
3. pose loss ``(1 - alpha) L(D(I_mix), H_gt) + alpha L_kd``; ``L_kd`` compares the
   student's output on the clean crop with the frozen teacher's on the clean crop (paper
   Eq. 7, ``kd_on: clean``) or the student's output on the mix (the official code,
   ``kd_on: mix``); ``L`` is ``mse`` (paper) or ``smoothl1`` (official);
4. generator loss ``-generator_weight * L(D(I_mix), H_gt)``.

Updates: ``alternating`` (official semantics) steps the pose model on the detached mix,
then the generator through a re-forward of the updated pose model with its parameters
frozen (inside ``step.no_sync``: the pose model's gradients are neither computed nor
all-reduced; its BatchNorm running statistics are restored after the re-forward, so
they count the pose step's forward only); ``reversal`` runs one forward / backward through a gradient-reversal layer
(scale ``generator_weight / (1 - alpha)``) and steps both players from that pass: the
generator then sees the pose model *before* its update, and with ``kd_on: mix`` it also
ascends the KD term.

Ablations (``mixing``): ``image`` (AdvMix-Image: one weight vector per image from the
generator), ``equal`` (EqualMix: 1 / V), ``dirichlet`` (DirichletMix: per-image weights ~
Dirichlet(``dirichlet_alpha``)), ``sequential`` (SequentialMix: the augmentations applied
in a chain), ``none`` (KD only, FPD with the same architecture: the clean crop, no
augmentation); ``alpha: 0`` is AdvMix w/o KD (no teacher needed). ``train.method: augment``
trains the standard way on augmented crops (GridMask only, AutoAugment only, Transfer).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from robustpose.augment import build_augmentation, dirichlet_weights, make_views, mix, sequential
from robustpose.losses import build_loss
from robustpose.training.methods import StandardHeatmap, TrainingMethod, register_method
from robustpose.training.optim import OptimizerSpec
from robustpose.utils.seeding import derive_seed

MIXINGS = ("adversarial", "image", "equal", "dirichlet", "sequential", "none")
UPDATES = ("alternating", "reversal")


def _augmentations(blocks: Sequence[Any] | None, policy: str, who: str) -> list:
    """Augmentations from names or ``{type: name, ...kwargs}`` blocks (default AdvMix's two)."""
    if blocks is None:
        blocks = [{"type": "autoaugment", "policy": policy}, {"type": "gridmask"}]
    out = []
    for block in blocks:
        block = {"type": block} if isinstance(block, str) else dict(block)
        name = block.pop("type", None)
        if name == "autoaugment":
            block.setdefault("policy", policy)
        try:
            out.append(build_augmentation(str(name), **block))
        except TypeError as exc:
            raise ValueError(f"method {who!r}: augmentation {name!r}: {exc}") from None
    if not out:
        raise ValueError(f"method {who!r}: needs at least one augmentation")
    return out


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; the gradient is multiplied by ``-scale`` on the way back."""
    return _GradReverse.apply(x, float(scale))


@contextlib.contextmanager
def frozen_player(module: nn.Module) -> Iterator[None]:
    """Inside the block the module is a fixed function for the other player:
    ``requires_grad_(False)`` on every parameter (a backward computes only input
    gradients), and its buffers (BatchNorm running statistics) are restored on exit, so a
    re-forward in train mode leaves no trace. Both are restored after."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    buffers = [(b, b.detach().clone()) for b in module.buffers()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


@register_method("advmix")
class AdvMix(TrainingMethod):
    """AdvMix and its mixing ablations; see the module docstring. Keyword arguments are
    ``train.method_args``:

    Args:
        alpha: KD weight a (0.1); 0 = AdvMix w/o KD (no teacher).
        kd_on: 'clean' (paper Eq. 7) or 'mix' (official code).
        loss: 'mse' (paper) or 'smoothl1' (official code), for the pose and KD terms.
        generator_weight: the generator loss is ``-generator_weight * L(D(I_mix), H_gt)``.
        updates: 'alternating' (official) or 'reversal' (one pass).
        mixing: 'adversarial', 'image', 'equal', 'dirichlet', 'sequential', 'none'.
        teacher: weights file of the teacher (default ``model.init_from``).
        teacher_model: ``{name, extra, kwargs}`` of another teacher architecture (FPD);
            default the student's.
        ngf, activations: the generator's width and activations ('paper' | 'official').
        generator_lr: Adam learning rate of the generator (1e-3); ``generator_lr_steps``:
            its own milestones (default ``train.lr_steps``).
        policy: AutoAugment policy, 'paper' (no sharpness) or 'official'.
        augmentations: the K augmentations (names or ``{type: ..., kwargs}``).
        dirichlet_alpha: concentration of the DirichletMix weights.
    """

    name = "advmix"

    def __init__(self, use_target_weight: bool = True, alpha: float = 0.1, kd_on: str = "clean",
                 loss: str = "mse", generator_weight: float = 1.0, updates: str = "alternating",
                 mixing: str = "adversarial", teacher: str | None = None,
                 teacher_model: dict | None = None, ngf: int = 64, activations: str = "paper",
                 generator_lr: float = 1e-3, generator_lr_steps: Sequence[int] | None = None,
                 policy: str = "paper", augmentations: Sequence[Any] | None = None,
                 dirichlet_alpha: float = 1.0) -> None:
        choices = {"kd_on": (kd_on, ("clean", "mix")), "loss": (loss, ("mse", "smoothl1")),
                   "updates": (updates, UPDATES), "mixing": (mixing, MIXINGS)}
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"method 'advmix': {key} must be one of {', '.join(allowed)}; got {value!r}")
        if isinstance(ngf, bool) or not isinstance(ngf, int) or ngf < 1:
            raise ValueError(f"method 'advmix': train.method_args.ngf must be an integer >= 1 "
                             f"(the generator's first width), got {ngf!r}")
        if not 0.0 <= alpha <= 1.0 or (updates == "reversal" and alpha >= 1.0):
            raise ValueError(f"method 'advmix': alpha must be in [0, 1) , got {alpha}")
        self.alpha, self.kd_on, self.updates, self.mixing = float(alpha), kd_on, updates, mixing
        self.generator_weight = float(generator_weight)
        self.criterion = build_loss(loss, use_target_weight=use_target_weight)
        self.kd = build_loss("kd", criterion=loss)
        self.use_target_weight = bool(use_target_weight)
        self.teacher_path, self.teacher_model = teacher, teacher_model
        self.ngf, self.activations = int(ngf), activations
        self.generator_lr, self.generator_lr_steps = float(generator_lr), generator_lr_steps
        self.dirichlet_alpha = float(dirichlet_alpha)
        self.augs = _augmentations(augmentations, policy, "advmix")
        self.generator: nn.Module | None = None
        self.teacher: nn.Module | None = None

    @property
    def adversarial(self) -> bool:
        return self.mixing in ("adversarial", "image")

    # ------------------------------------------------------------------ building
    def setup(self, trainer: Any) -> None:
        kind = getattr(trainer.model, "output_kind", "heatmaps")
        if kind != "heatmaps":
            raise ValueError(f"train.method 'advmix' trains heatmap models; "
                             f"{trainer.config['model']['name']!r} outputs {kind}")
        self.rng = trainer.np_rng
        config = trainer.config
        if self.alpha > 0:
            self.teacher = self._build_teacher(config, trainer.num_joints)
        if self.adversarial:
            from robustpose.models import build_advmix_generator
            generator = build_advmix_generator(
                config["data"]["input_size"], num_views=len(self.augs) + 1, ngf=self.ngf,
                activations=self.activations, image_level=self.mixing == "image",
                seed=derive_seed(int(config["seed"]), "advmix-generator"))
            self.opt_g = torch.optim.Adam(generator.parameters(), lr=self.generator_lr)
            self.generator = trainer.wrap_module(generator)

    def _build_teacher(self, config: dict, num_joints: int) -> nn.Module:
        """The frozen teacher, rebuilt from its weights file on every start (never from a
        training checkpoint: a resumed run's teacher is the original)."""
        from robustpose.config import build_model_for
        from robustpose.models import load_checkpoint
        source = self.teacher_path or config["model"].get("init_from")
        if source is None:
            raise ValueError("method 'advmix': alpha > 0 needs a teacher: set model.init_from "
                             "(the standard checkpoint) or train.method_args.teacher")
        if not Path(str(source)).is_file():
            raise FileNotFoundError(f"{source}: advmix teacher weights not found")
        block = dict(config["model"])
        if self.teacher_model:
            block.update({"extra": None, "kwargs": None, **self.teacher_model})
        teacher = build_model_for({**config, "model": block}, num_joints)
        load_checkpoint(teacher, source, strict=True)
        return teacher

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator} if self.generator is not None else {}

    def extra_optimizers(self) -> dict[str, OptimizerSpec]:
        if self.generator is None:
            return {}
        return {"generator": OptimizerSpec(self.opt_g, lr_steps=self.generator_lr_steps)}

    def frozen_modules(self) -> dict[str, nn.Module]:
        return {"teacher": self.teacher} if self.teacher is not None else {}

    # ------------------------------------------------------------------ the step
    def mixed_input(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(views N x V x 3 x H x W, I_mix N x 3 x H x W, weights or None); I_mix carries
        the generator's graph in the adversarial modes."""
        if self.mixing == "none":
            return images.unsqueeze(1), images, None
        if self.mixing == "sequential":
            return images.unsqueeze(1), sequential(images, self.augs, self.rng), None
        views = make_views(images, self.augs, self.rng)
        n, v = views.shape[:2]
        if self.mixing == "equal":
            weights = torch.full((n, v), 1.0 / v, device=images.device)
        elif self.mixing == "dirichlet":
            weights = dirichlet_weights(n, v, self.rng, self.dirichlet_alpha).to(images.device)
        else:
            weights = self.generator(views)
        return views, mix(views, weights), weights

    def _pose_loss(self, model: nn.Module, out: torch.Tensor, images: torch.Tensor,
                   target: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gt = self.criterion(out, target, weight)
        if self.teacher is None:
            return gt, gt, None
        with torch.no_grad():
            taught = self.teacher(images)
        # with no mixing the student's clean output is ``out``: no second forward
        student = out if self.kd_on == "mix" or self.mixing == "none" else model(images)
        kd = self.kd(student, taught, weight if self.use_target_weight else None)
        return (1 - self.alpha) * gt + self.alpha * kd, gt, kd

    def generator_step(self, model: nn.Module, mixed: torch.Tensor, target: torch.Tensor,
                       weight: torch.Tensor, step: Any) -> torch.Tensor:
        """One generator update ascending ``L(D(I_mix), H_gt)`` at the pose model as it is
        now (``alternating``): ``mixed`` N x 3 x H x W carries the generator's graph; the
        pose model is re-run with its parameters frozen (input gradients only, nothing to
        all-reduce, BatchNorm buffers restored after). Returns the detached generator loss
        ``-generator_weight * L``."""
        with step.no_sync(model), frozen_player(model):
            with step.autocast():
                adv = -self.generator_weight * self.criterion(model(mixed), target, weight)
            step.backward_and_step(adv, optimizer="generator")
        return adv.detach()

    def train_step(self, model: nn.Module, batch: dict, step: Any) -> dict[str, torch.Tensor]:
        images, target, weight = batch["image"], batch["target"], batch["target_weight"]
        logs: dict[str, torch.Tensor] = {}
        reversal = self.adversarial and self.updates == "reversal"
        with step.autocast():
            _, mixed, _ = self.mixed_input(images)
            if reversal:
                out = model(grad_reverse(mixed, self.generator_weight / (1 - self.alpha)))
            else:
                out = model(mixed.detach())
            # kd_on clean: the student's clean forward joins this one backward (one pass
            # over both graphs was cheaper on CPU than two passes before one step: the
            # allocator hands the freed memory back between the passes; docs/advmix.md)
            pose, gt, kd = self._pose_loss(model, out, images, target, weight)
        if reversal:
            step.backward_and_step(pose, optimizer=("model", "generator"))
            logs["generator"] = -self.generator_weight * gt.detach()
        else:
            step.backward_and_step(pose)
            if self.adversarial:
                logs["generator"] = self.generator_step(model, mixed, target, weight, step)
        logs.update({"loss": pose.detach(), "pose_gt": gt.detach()})
        if kd is not None:
            logs["kd"] = kd.detach()
        return logs


@register_method("augment")
class AugmentedHeatmap(StandardHeatmap):
    """Standard heatmap training on augmented crops: the ablation rows GridMask only
    (``augmentations: [gridmask]``), AutoAugment only (``[autoaugment]``) and Transfer
    (``[corruptions]``: test-time corruptions as an augmentation). The augmentations run
    in a chain on every batch, drawn from the trainer's ``np_rng``; targets are untouched.
    """

    name = "augment"

    def __init__(self, use_target_weight: bool = True, intermediate_supervision: bool = True,
                 loss: str = "mse", augmentations: Sequence[Any] = ("gridmask",),
                 policy: str = "paper") -> None:
        super().__init__(use_target_weight, intermediate_supervision, loss)
        self.augs = _augmentations(list(augmentations), policy, "augment")

    def setup(self, trainer: Any) -> None:
        super().setup(trainer)
        self.rng = trainer.np_rng

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        return super().losses(model, {**batch, "image": sequential(batch["image"], self.augs, self.rng)})
