"""The baselines of the stable-heatmap paper (Zhang et al. 2022, Table 2 / Fig. 9), as methods.

Each is a registered training method (``train.method``); options are
``train.method_args``. All train heatmap models with the standard task loss
(:class:`~robustpose.training.methods.StandardHeatmap`: ``loss`` mse | smoothl1, target
weights, intermediate supervision over stacks) and add what defines them:

- ``at`` -- adversarial training (Madry et al. 2018): crops crafted against the current model
  by :class:`robustpose.attacks.IGSM` (PGD: random start, ``steps`` signed steps of
  ``alpha``, projection onto the l_inf ``eps`` ball and [0, 1]; 0..255 scale) ascending the
  task loss to the ground-truth heatmaps; the model trains on them
  (``adv_weight * L(adv) + (1 - adv_weight) * L(clean)``).
- ``augmix`` -- AugMix (Hendrycks et al. 2020): the task loss on the clean crop plus
  ``js_weight`` x the Jensen-Shannon divergence between the per-joint pixel-softmax
  distributions of the heatmaps of the clean crop and two AugMix views
  (:func:`heatmap_js`; chains from :class:`robustpose.augment.AugMix`).
- ``lipschitz`` -- standard training of a model whose convolutions are spectrally normalised
  (``model.kwargs: {spectral_norm: all}``, robustpose.models.spectral); refuses a model
  without it, so a config cannot silently train the plain network.
- ``pg`` -- standard training on Patch Gaussian crops (:class:`robustpose.augment.PatchGaussian`).
- ``st_g`` / ``st_a`` -- stability training (robustpose.training.stability_training).

Randomness: augmentations draw from the trainer's ``np_rng``; AT's random start from a seed
drawn from the trainer's ``torch_rng`` each step; both generators are checkpointed, so a
resumed run continues exactly.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robustpose.attacks import IGSM
from robustpose.augment import AugMix, PatchGaussian
from robustpose.models.spectral import is_spectral
from robustpose.training.methods import StandardHeatmap, register_method

CRAFT_MODES = ("eval", "train")


def _stack_outputs(model: nn.Module, images: torch.Tensor, all_stacks: bool) -> list[torch.Tensor]:
    """Every stack's output (intermediate supervision) or just the final one, as a list."""
    return list(model(images, all_outputs=True)) if all_stacks else [model(images)]


def heatmap_js(heatmaps: Sequence[torch.Tensor], temperature: float = 1.0,
               eps: float = 1e-7) -> torch.Tensor:
    """Jensen-Shannon divergence of per-joint pixel-softmax distributions (nats, scalar).

    For each crop n and joint k, ``p_i = softmax(h_i[n, k].flatten() / temperature)`` over
    the h x w pixels of each heatmap ``h_i`` (N x K x h x w, i = 1..m);
    ``JS = (1/m) sum_i KL(p_i || M)``, ``M = (1/m) sum_i p_i`` (clamped to ``eps`` before
    the log, as AugMix's official code does); the mean over the N x K distributions.
    Every joint counts (the consistency needs no label)."""
    if len(heatmaps) < 2:
        raise ValueError("heatmap_js needs at least two heatmap batches")
    shape = heatmaps[0].shape
    if any(h.shape != shape for h in heatmaps) or len(shape) != 4:
        raise ValueError(f"heatmap_js: heatmaps must share one N x K x h x w shape, got "
                         f"{[tuple(h.shape) for h in heatmaps]}")
    logs = [F.log_softmax(h.float().flatten(2) / float(temperature), dim=-1) for h in heatmaps]
    probs = [log.exp() for log in logs]
    log_mixture = torch.stack(probs).mean(0).clamp(eps, 1.0).log()
    js = sum((p * (log - log_mixture)).sum(-1) for p, log in zip(probs, logs)) / len(probs)
    return js.mean()


class _TrainingIGSM(IGSM):
    """IGSM for crafting inside a training step.

    ``craft_mode='eval'`` is the attack base class's behaviour: the model is put in eval mode
    for the crafting passes (BatchNorm on its running statistics, so each crop's gradient is
    its own and the crafting forwards do not enter the running averages; spectral norm
    uses its stored vectors) and its mode is restored after. ``craft_mode='train'`` keeps
    train mode (BatchNorm on the batch's statistics, as some AT codes craft) and restores
    every buffer after the call (running statistics, spectral-norm vectors), so crafting
    leaves the model exactly as it found it either way."""

    def __init__(self, model: nn.Module, craft_mode: str = "eval", **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.craft_mode = craft_mode

    def _mode_modules(self) -> list[nn.Module]:
        return [] if self.craft_mode == "train" else super()._mode_modules()

    def __call__(self, crops: torch.Tensor, targets: Any = None) -> torch.Tensor:
        if self.craft_mode != "train":
            return super().__call__(crops, targets)
        saved = [(b, b.detach().clone()) for b in self._module().buffers()]
        try:
            return super().__call__(crops, targets)
        finally:
            with torch.no_grad():
                for buffer, value in saved:
                    buffer.copy_(value)


@register_method("at")
class AdversarialTraining(StandardHeatmap):
    """Adversarial training with IGSM/PGD on the heatmap loss (see the module docstring).

    Args:
        eps: l_inf budget on the 0..255 scale (8).
        steps: IGSM iterations per training step (7).
        alpha: step size on the 0..255 scale (2); Madry et al.'s CIFAR-10 setting 8 / 7 / 2.
        random_start: start from a uniform draw in the eps ball (True, PGD).
        adv_weight: weight of the adversarial loss; ``1 - adv_weight`` goes to the clean
            loss (1: adversarial crops only, Madry et al.; 0.5: Goodfellow et al.'s mix).
        craft_mode: 'eval' (default) or 'train', the model's mode while crafting
            (:class:`_TrainingIGSM`).
    """

    name = "at"

    def __init__(self, use_target_weight: bool = True, intermediate_supervision: bool = True,
                 loss: str = "mse", eps: float = 8.0, steps: int = 7, alpha: float = 2.0,
                 random_start: bool = True, adv_weight: float = 1.0,
                 craft_mode: str = "eval") -> None:
        super().__init__(use_target_weight, intermediate_supervision, loss)
        if craft_mode not in CRAFT_MODES:
            raise ValueError(f"method 'at': craft_mode must be one of {', '.join(CRAFT_MODES)}; "
                             f"got {craft_mode!r}")
        if not 0.0 <= float(adv_weight) <= 1.0:
            raise ValueError(f"method 'at': adv_weight must be in [0, 1], got {adv_weight!r}")
        if not float(eps) > 0 or int(steps) < 1 or not float(alpha) > 0:
            raise ValueError(f"method 'at': eps and alpha must be > 0 and steps >= 1, got "
                             f"eps={eps!r}, steps={steps!r}, alpha={alpha!r}")
        self.eps, self.steps, self.alpha = float(eps), int(steps), float(alpha)
        self.random_start, self.adv_weight = bool(random_start), float(adv_weight)
        self.craft_mode = craft_mode
        self.attack: _TrainingIGSM | None = None

    def setup(self, trainer: Any) -> None:
        super().setup(trainer)
        self.torch_rng = trainer.torch_rng
        # the bare model, not the DDP wrapper: crafting takes input gradients only and
        # must not enter DDP's gradient reduction
        self.attack = _TrainingIGSM(trainer.model, craft_mode=self.craft_mode, eps=self.eps,
                                    steps=self.steps, alpha=self.alpha, loss=self.criterion,
                                    all_stacks=self.intermediate_supervision,
                                    random_start=self.random_start)

    def craft(self, batch: dict) -> torch.Tensor:
        """Adversarial copies of ``batch['image']`` against the current model (fp32, no
        autocast), the random start seeded by one draw from the trainer's ``torch_rng``."""
        self.attack.seed = int(torch.randint(0, 2**62, (1,), generator=self.torch_rng))
        return self.attack(batch["image"], {"target": batch["target"],
                                            "target_weight": batch["target_weight"]})

    def train_step(self, model: nn.Module, batch: dict, step: Any) -> dict[str, torch.Tensor]:
        adv = self.craft(batch)
        target, weight = batch["target"], batch["target_weight"]
        n = adv.shape[0]
        with step.autocast():
            if self.adv_weight >= 1.0:
                outs = _stack_outputs(model, adv, self.intermediate_supervision)
                adv_loss = sum(self.criterion(o, target, weight) for o in outs)
                logs = {"loss": adv_loss, "adv": adv_loss}
            else:  # one forward of [clean; adversarial]: one BatchNorm batch, as in the loss
                outs = _stack_outputs(model, torch.cat([batch["image"], adv]),
                                      self.intermediate_supervision)
                clean = sum(self.criterion(o[:n], target, weight) for o in outs)
                adv_loss = sum(self.criterion(o[n:], target, weight) for o in outs)
                total = self.adv_weight * adv_loss + (1.0 - self.adv_weight) * clean
                logs = {"loss": total, "adv": adv_loss, "clean": clean}
        step.backward_and_step(logs["loss"])
        return {k: v.detach() for k, v in logs.items()}


@register_method("augmix")
class AugMixConsistency(StandardHeatmap):
    """AugMix with Jensen-Shannon consistency on heatmaps (see the module docstring).

    One forward of ``[clean; augmix_1; augmix_2]`` (3N crops, one BatchNorm batch, as the
    official code); the task loss on the clean third; ``js_weight * heatmap_js(...)`` on the
    final outputs of all three.

    Args:
        js_weight: lambda (12, AugMix's default).
        temperature: softmax temperature of the heatmap distributions (1: the raw heatmap
            values are the logits).
        width, depth, severity, mix_alpha, ops: the chains (:class:`robustpose.augment.AugMix`).
    """

    name = "augmix"

    def __init__(self, use_target_weight: bool = True, intermediate_supervision: bool = True,
                 loss: str = "mse", js_weight: float = 12.0, temperature: float = 1.0,
                 width: int = 3, depth: int = -1, severity: float = 3.0, mix_alpha: float = 1.0,
                 ops: str | Sequence[str] = "default") -> None:
        super().__init__(use_target_weight, intermediate_supervision, loss)
        if not float(js_weight) >= 0 or not float(temperature) > 0:
            raise ValueError(f"method 'augmix': js_weight must be >= 0 and temperature > 0, "
                             f"got {js_weight!r}, {temperature!r}")
        self.js_weight, self.temperature = float(js_weight), float(temperature)
        self.augmix = AugMix(width=width, depth=depth, severity=severity, alpha=mix_alpha, ops=ops)

    def setup(self, trainer: Any) -> None:
        super().setup(trainer)
        self.rng = trainer.np_rng

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        images, target, weight = batch["image"], batch["target"], batch["target_weight"]
        n = images.shape[0]
        views = [images, self.augmix(images, self.rng), self.augmix(images, self.rng)]
        outs = _stack_outputs(model, torch.cat(views), self.intermediate_supervision)
        task = sum(self.criterion(o[:n], target, weight) for o in outs)
        final = outs[-1]
        js = heatmap_js([final[:n], final[n:2 * n], final[2 * n:]], self.temperature)
        return {"loss": task + self.js_weight * js, "task": task, "js": js}


@register_method("lipschitz")
class LipschitzHeatmap(StandardHeatmap):
    """The Lipschitz-constraint baseline: standard training of a spectrally normalised
    model (``model.kwargs: {spectral_norm: all}``); the method only checks the model."""

    name = "lipschitz"

    def setup(self, trainer: Any) -> None:
        super().setup(trainer)
        if not is_spectral(trainer.model):
            raise ValueError("train.method 'lipschitz' needs a spectrally normalised model: set "
                             "model.kwargs: {spectral_norm: all} (robustpose.models.spectral)")


@register_method("pg")
class PatchGaussianHeatmap(StandardHeatmap):
    """Standard training on Patch Gaussian crops (:class:`robustpose.augment.PatchGaussian`;
    ``patch_size`` None = the crop's longer side, ``max_sigma`` 1.0, ``randomize`` True,
    ``prob`` 1.0), drawn from the trainer's ``np_rng``; targets untouched."""

    name = "pg"

    def __init__(self, use_target_weight: bool = True, intermediate_supervision: bool = True,
                 loss: str = "mse", patch_size: int | None = None, max_sigma: float = 1.0,
                 randomize: bool = True, prob: float = 1.0) -> None:
        super().__init__(use_target_weight, intermediate_supervision, loss)
        self.augmentation = PatchGaussian(patch_size, max_sigma, randomize, prob)

    def setup(self, trainer: Any) -> None:
        super().setup(trainer)
        self.rng = trainer.np_rng

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        return super().losses(model, {**batch, "image": self.augmentation(batch["image"], self.rng)})
