"""The attack base class and the white-box gradient attacks FGSM and IGSM (BIM).

Shape follows torchattacks: ``atk = IGSM(model, eps=8, steps=10)``; ``adv = atk(crops01,
targets)``. Crops are the top-down path's ``(N, 3, H, W)`` float tensors in [0, 1] (models
normalise inside), and ``adv`` stays in [0, 1] and in the l_inf ball of radius ``eps/255``
around ``crops``. ``eps`` and ``alpha`` are on the 0..255 intensity scale.

:meth:`Attack.__call__` does the shared work: it checks the crops, puts the model in eval
mode with frozen weights and restores every submodule's own mode and every parameter's
``requires_grad`` afterwards (also on error; :func:`attack_mode`), builds the reference (targets, or
the clean prediction for untargeted attacks without targets), seeds one explicit
``torch.Generator`` from ``seed`` for any random draw, runs :meth:`Attack.perturb` and
projects the result. Gradients are taken with ``torch.autograd.grad`` with respect to the
input only, so no weight's ``.grad`` is ever created or changed. Subclasses override one
method: :meth:`Attack.step` (an iteration; FGSM, IGSM, SPSA) or :meth:`Attack.perturb`
(the whole perturbation; UAP).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch

from robustpose.attacks.losses import AttackObjective, LossLike, as_targets, output_kind


def kurakin_steps(eps: float) -> int:
    """Kurakin et al.'s BIM iteration count for ``alpha = 1``: ``min(eps + 4, 1.25 eps)``
    (eps on the 0..255 scale), at least 1."""
    return max(1, int(min(eps + 4.0, 1.25 * eps)))


def torch_model(model: Any) -> torch.nn.Module:
    """The ``nn.Module`` an attack differentiates: ``model`` itself when it is a module, or
    the ``.model`` of a non-module adapter (:class:`RegistryAdapter`).

    Only adapters are unwrapped: a module that wraps another one (e.g.
    :class:`~robustpose.attacks.transfer.ResizedInput`, which resizes the crop before its
    ``.model``) is attacked as it is, so whatever it does in ``forward`` is attacked too."""
    if isinstance(model, torch.nn.Module):
        return model
    inner = getattr(model, "model", None)
    if not isinstance(inner, torch.nn.Module):
        raise ValueError(f"a white-box attack needs a torch model, not a "
                         f"{type(model).__name__}; use SPSA or a transfer attack")
    return inner


@contextmanager
def attack_mode(modules: Sequence[torch.nn.Module]) -> Iterator[None]:
    """Every submodule of ``modules`` in eval mode and every parameter with
    ``requires_grad=False`` inside the block (attacks differentiate the input only, so no
    weight-gradient graph is built); on exit, also on error, each submodule gets back its
    *own* ``training`` flag and each parameter its own ``requires_grad`` (``train(mode)``
    on the top module would set every submodule alike, e.g. turn a BatchNorm that was
    frozen in eval inside a training model back to train mode)."""
    flags = [(m, m.training) for root in modules for m in root.modules()]
    grads = [(p, p.requires_grad) for root in modules for p in root.parameters()]
    try:
        for root in modules:
            root.eval()
            root.requires_grad_(False)
        yield
    finally:
        for m, mode in flags:
            m.training = mode
        for p, flag in grads:
            p.requires_grad_(flag)


class Attack:
    """Base class: an l_inf attack on a pose model with budget ``eps`` (0..255 scale).

    Args:
        model: a :class:`~robustpose.models.PoseModel`, any ``nn.Module`` crops -> outputs,
            or a :class:`RegistryAdapter` (its ``.model`` is attacked).
        eps: l_inf radius in intensity levels (8 means 8/255 in [0, 1] crops).
        loss: ``'auto'`` (mse for heatmaps, coord_l2 for coordinates), a
            :mod:`robustpose.losses` name, or a callable ``(pred, target, weight)``.
        targeted: minimise the loss to ``targets`` instead of maximising it.
        all_stacks: sum the loss over every ``forward_all`` output (hourglass "ALL").
        random_start: start from a uniform draw in the eps ball (from the seeded generator).
            Always on for an untargeted call without targets: the loss to the model's own
            clean prediction has zero gradient at the clean crop.
        seed: seeds the attack's ``torch.Generator`` (each call starts from it again).
    """

    name = "attack"

    def __init__(self, model: Any, eps: float = 8.0, *, loss: LossLike = "auto",
                 targeted: bool = False, all_stacks: bool = False, random_start: bool = False,
                 seed: int = 0) -> None:
        if not eps >= 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0 (0..255 scale), got {eps!r}")
        self.model = model
        self.eps = float(eps)
        self.kind = output_kind(model)
        self.objective = AttackObjective(self.kind, loss, targeted, all_stacks)
        self.targeted = bool(targeted)
        self.all_stacks = bool(all_stacks)
        self.random_start = bool(random_start)
        self.seed = int(seed)
        self.steps = 1
        self.alpha = self.eps

    def __repr__(self) -> str:
        mode = "T" if self.targeted else "U"
        return (f"{type(self).__name__}(eps={self.eps:g}, steps={self.steps}, "
                f"alpha={self.alpha:g}, mode={mode}{', ALL' if self.all_stacks else ''})")

    # -- model access ------------------------------------------------------------------
    def _module(self) -> torch.nn.Module:
        return torch_model(self.model)

    def outputs(self, x: torch.Tensor) -> Any:
        """The outputs the loss reads: every stack (``forward_all``) or the final one."""
        net = self._module()
        if self.all_stacks:
            if not hasattr(net, "forward_all"):
                raise ValueError(f"all_stacks needs a model with forward_all, not "
                                 f"{type(net).__name__}")
            return net.forward_all(x)
        return net(x)

    def gradient(self, x: torch.Tensor, target: torch.Tensor,
                 weight: torch.Tensor) -> torch.Tensor:
        """d objective / d x (same shape as ``x``); weights get no gradient."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            value = self.objective.total(self.outputs(x), target, weight)
            (grad,) = torch.autograd.grad(value, [x])
        return grad

    # -- the shared work ---------------------------------------------------------------
    def _mode_modules(self) -> list[torch.nn.Module]:
        try:
            return [self._module()]
        except ValueError:  # a black-box model has no mode to set
            return []

    def frame(self, crops: torch.Tensor) -> tuple[tuple[int, int], tuple[float, float]]:
        """(crop size (w, h) in pixels that coordinate outputs refer to, pixels per output
        unit): the crop the network sees (a :class:`ResizedInput`'s own size, else the
        crops'), and (w, h) per unit for coordinates normalised to the crop."""
        try:
            net: Any = self._module()
        except ValueError:  # a black box: its outputs are in its crops' pixels
            net = self.model
        size = getattr(net, "crop_size", None) or (int(crops.shape[-1]), int(crops.shape[-2]))
        normalized = getattr(net, "coord_units", "pixels") == "normalized"
        return size, ((float(size[0]), float(size[1])) if normalized else (1.0, 1.0))

    def reference(self, crops: torch.Tensor, targets: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(target, weight) the loss compares with: ``targets`` or the clean prediction."""
        with torch.no_grad():
            clean = self.query(crops)
        if targets is None:
            if self.targeted:
                raise ValueError(f"{type(self).__name__}: a targeted attack needs targets "
                                 "(see robustpose.attacks.shuffled_pose_targets)")
            return as_targets(clean.detach(), clean)
        return as_targets(targets, clean)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        """The final output for ``x`` (no gradient); SPSA overrides it for black boxes."""
        out = self.outputs(x)
        return (out[-1] if isinstance(out, (list, tuple)) else out).detach().float()

    def project(self, adv: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
        """Onto the eps ball around ``crops`` and into [0, 1]."""
        e = self.eps / 255.0
        return torch.min(torch.max(adv, crops - e), crops + e).clamp_(0.0, 1.0)

    def __call__(self, crops: torch.Tensor, targets: Any = None) -> torch.Tensor:
        """Adversarial copies of ``crops`` ((N, 3, H, W) in [0, 1]); targets: a tensor of
        the model's output shape, or a dict with ``target`` (+ ``target_weight`` (N, K))."""
        if not isinstance(crops, torch.Tensor) or crops.dim() != 4 or crops.shape[1] != 3:
            raise ValueError("attack crops must be an (N, 3, H, W) tensor in [0, 1]")
        if crops.numel() and (float(crops.min()) < 0.0 or float(crops.max()) > 1.0):
            raise ValueError("attack crops must lie in [0, 1] (unnormalised RGB)")
        crops = crops.detach().float()
        if self.eps == 0:
            # the eps-0 ball is the crop itself: no iteration (and no query) can move it
            if hasattr(self, "queries_used"):
                self.queries_used = 0
            return crops.clone()
        with attack_mode(self._mode_modules()):
            target, weight = self.reference(crops, targets)
            self.objective.set_frame(*self.frame(crops))
            generator = torch.Generator(device=crops.device).manual_seed(self.seed)
            # against the clean prediction the loss is at its minimum on the clean crop
            # (zero gradient, sign 0): such a run must start off it, from the seeded draw
            self._from_noise = self.random_start or (targets is None and not self.targeted)
            adv = self.perturb(crops, target, weight, generator)
            return self.project(adv, crops).detach()

    def start(self, crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The first iterate: ``crops``, or a uniform draw in the ball (``random_start``)."""
        if not getattr(self, "_from_noise", self.random_start):
            return crops.clone()
        e = self.eps / 255.0
        noise = torch.rand(crops.shape, generator=generator, device=crops.device) * 2 * e - e
        return self.project(crops + noise, crops)

    def perturb(self, crops: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                generator: torch.Generator) -> torch.Tensor:
        """``steps`` iterations of :meth:`step`, each projected; returns the last iterate."""
        adv = self.start(crops, generator)
        for t in range(self.steps):
            adv = self.project(self.step(adv, target, weight, generator, t), crops)
        return adv

    def step(self, adv: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
             generator: torch.Generator, t: int) -> torch.Tensor:
        """One iteration from ``adv`` (before projection)."""
        raise NotImplementedError


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al.): one step of size ``eps``.

    ``FGSM(model, eps=8)`` is FGSM-U (ascend the loss to the clean prediction or GT);
    ``targeted=True`` is FGSM-T (descend the loss to the target heatmaps).
    """

    name = "fgsm"

    def step(self, adv, target, weight, generator, t):
        return adv + self.alpha / 255.0 * self.gradient(adv, target, weight).sign()


class IGSM(FGSM):
    """Iterative FGSM / BIM (Kurakin et al.): ``steps`` signed steps of ``alpha``, each
    projected onto the eps ball and [0, 1].

    Default ``alpha = 2.5 * eps / steps`` (the PGD rule of Madry et al.): the iterate can
    reach the ball's boundary within 40% of the budget and then move along it, so the
    budget N -- not the step size -- decides how strong IGSM-N is, and IGSM-10 vs IGSM-100
    compares iteration budgets at one eps. Kurakin's own setting is ``alpha=1`` with
    ``steps=kurakin_steps(eps)`` (``min(eps + 4, 1.25 eps)``); pass it explicitly.
    """

    name = "igsm"

    def __init__(self, model: Any, eps: float = 8.0, steps: int = 10,
                 alpha: float | None = None, **kwargs: Any) -> None:
        super().__init__(model, eps, **kwargs)
        if int(steps) < 1:
            raise ValueError(f"IGSM: steps must be >= 1, got {steps!r}")
        self.steps = int(steps)
        self.alpha = 2.5 * self.eps / self.steps if alpha is None else float(alpha)
        if not self.alpha >= 0:
            raise ValueError(f"IGSM: alpha must be >= 0 (0..255 scale), got {alpha!r}")
