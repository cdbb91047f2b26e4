"""Stable heatmap regression (Zhang et al., Neurocomputing 2022) as a training method.

``train.method: stable`` with three switches in ``train.method_args``, so the paper's
ablation rows are configs (configs/stable/): Baseline (all off: exactly ``standard``'s
loss), RCC, HDHR, MST and R+H+M (all on). See docs/stable.md.

- ``rcc``: the RCC layer (Eq. 1, 7; :mod:`robustpose.models.rcc`) on the model's outputs,
  in training and inference. ``true`` means ``RCC()`` (ReLU first) for Gaussian targets
  and ``RCC(negative='softmax', log_output=True)`` with ``hdhr``: the RCC of the softmax
  map, returned as logits, so the weighted cross-entropy and the decoder read it as a
  distribution; a mapping gives the options. Applied in ``setup`` with
  :func:`~robustpose.models.rcc.with_rcc`; checkpoints record it in their meta.
- ``hdhr``: train, validate and decode with the ``hdhr`` codec (``codec_config``; ``true``
  or a mapping of its options: ``alpha``, ``t_hd``, ``distance``, ``score``) and the
  weighted cross-entropy (Eq. 8, ``robustpose.losses.WeightedCrossEntropyLoss``) instead of
  HRNet's JointsMSELoss.
- ``mst``: the maximum stability training loss (Eq. 9), ``task + mst_weight * MST``. Each
  step perturbs every clean crop once with one of ``perturbations`` (default the paper's
  ten, ``train10``) at a severity drawn from ``severities``, all from the trainer's
  ``np_rng`` (:class:`~robustpose.augment.CorruptionAugment`), and runs a second forward
  on the perturbed batch (a separate pass: the clean forward and its BatchNorm
  statistics are those of a standard step). The task loss sees the clean crop only.
  ``r`` is the output as the task loss reads it: raw maps for Gaussian targets, the
  per-map softmax for HDHR, there multiplied by the HD region sum ``Z`` (``codec.region_sum``,
  51.0 for alpha 0.7, T_hd 8), so that ``r`` is on the HD target's scale (peak ~1) and
  ``mst`` behaves alike for both; on the paper's softmax ``r`` that is a weight of
  ``mst_weight * Z^2``. ``mst_weight`` default: :data:`MST_WEIGHT` (Gaussian targets), times
  the heatmap's h * w with HDHR. Not detached by default (``mst_detach_clean``), unmasked
  by default (``mst_masked``: weight each map by its joint's target weight).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from robustpose.augment import CorruptionAugment
from robustpose.corruptions import parse_corruptions, parse_severities
from robustpose.losses import build_loss
from robustpose.models.rcc import rcc_config, rcc_options, with_rcc
from robustpose.training.methods import TrainingMethod, register_method, supervised_outputs

#: the default MST weight for Gaussian targets (the paper gives none): at 0.003 the MST
#: gradient is 0.5-1x the JointsMSELoss gradient on the bundled SynthPose model (3 batches
#: of 16, train10 at severities 1-5; docs/stable.md). With HDHR the default is
#: 0.003 * h * w: the weighted cross-entropy sums over the h x w pixels where
#: JointsMSELoss averages, so the same balance needs h * w times the weight (derived).
MST_WEIGHT = 0.003
#: RCC defaults under HDHR: the RCC of the softmax map, read back as logits
HDHR_RCC = {"negative": "softmax", "log_output": True}


def _switch(value: Any, what: str) -> dict | None:
    """``false``/``None`` -> None, ``true`` -> {}, a mapping -> its copy."""
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    raise ValueError(f"method 'stable': {what} must be true, false or a mapping, got {value!r}")


@register_method("stable")
class StableHeatmap(TrainingMethod):
    """The stable heatmap regression method; see the module docstring.

    Args (``train.method_args``):
        rcc, hdhr, mst: the three switches (``rcc`` / ``hdhr`` may be option mappings).
        mst_weight: weight of the MST term; default (None) :data:`MST_WEIGHT`, times h * w
            (the heatmap's pixels) with HDHR.
        mst_detach_clean: stop the gradient through the clean output in the MST term.
        mst_masked: weight each map's MST by its joint's target weight.
        perturbations, severities: the MST perturbations (``parse_corruptions`` words,
            default ``train10``) and severities (default 1-5).
        intermediate_supervision: task loss summed over every stack (hourglass).
    """

    name = "stable"

    def __init__(self, use_target_weight: bool = True, rcc: bool | Mapping = False,
                 hdhr: bool | Mapping = False, mst: bool = False,
                 mst_weight: float | None = None, mst_detach_clean: bool = False,
                 mst_masked: bool = False, perturbations: str | Sequence[str] = "train10",
                 severities: str | Sequence[int] = "1-5",
                 intermediate_supervision: bool = True) -> None:
        self.hdhr = _switch(hdhr, "hdhr") is not None
        rcc_block = _switch(rcc, "rcc")
        self.rcc = None if rcc_block is None else rcc_config(
            {**(HDHR_RCC if self.hdhr else {}), **rcc_block})
        if not isinstance(mst, bool):
            raise ValueError(f"method 'stable': mst must be true or false, got {mst!r}")
        self.mst = mst
        try:  # a YAML string ('abc') must be named by its key, not by float()'s message
            self.mst_weight = None if mst_weight is None else float(mst_weight)
        except (TypeError, ValueError):
            self.mst_weight = float("nan")
        if self.mst_weight is not None and not 0 <= self.mst_weight < float("inf"):
            raise ValueError(f"train.method_args.mst_weight of method 'stable' must be a "
                             f"finite number >= 0, got {mst_weight!r}")
        self.mst_detach_clean, self.mst_masked = bool(mst_detach_clean), bool(mst_masked)
        self.use_target_weight = bool(use_target_weight)
        self.intermediate_supervision = bool(intermediate_supervision)
        self.perturb = CorruptionAugment(parse_corruptions(perturbations),
                                         parse_severities(severities))
        self.criterion = build_loss("wce" if self.hdhr else "mse",
                                    use_target_weight=self.use_target_weight)
        self.mst_loss: nn.Module | None = None

    @classmethod
    def codec_config(cls, config: dict) -> dict | None:
        """``{type: hdhr, ...}`` when ``hdhr`` is on (the user's ``data.codec`` block if it
        is an hdhr one, updated with the switch's mapping), else None (``data.codec``)."""
        from robustpose.config import codec_block

        options = _switch((config["train"].get("method_args") or {}).get("hdhr"), "hdhr")
        if options is None:
            return None
        block = codec_block(config)
        block = block if block.get("type") == "hdhr" else {"type": "hdhr"}
        block.update({k: v for k, v in options.items() if k != "type"})
        return block

    def setup(self, trainer: Any) -> None:
        kind = getattr(trainer.model, "output_kind", "heatmaps")
        if kind != "heatmaps":
            raise ValueError(f"train.method 'stable' trains heatmap models; "
                             f"{trainer.config['model']['name']!r} outputs {kind}")
        codec_is_hdhr = getattr(trainer.codec, "name", None) == "hdhr"
        if codec_is_hdhr != self.hdhr:
            raise ValueError("method 'stable': the training codec is "
                             f"{getattr(trainer.codec, 'name', '?')!r} but method_args.hdhr is "
                             f"{self.hdhr}; set hdhr: true to train with the hdhr codec")
        have = rcc_options(trainer.model)
        if self.rcc is not None and have is None:
            with_rcc(trainer.model, **self.rcc)
        elif have != self.rcc:
            raise ValueError(f"method 'stable': the model has RCC {have} (model.kwargs.rcc or "
                             f"model.init_from's meta) but method_args.rcc asks for {self.rcc}")
        self.rng = trainer.np_rng
        if self.mst:
            if self.mst_weight is None:  # see MST_WEIGHT
                w, h = trainer.codec.heatmap_size if self.hdhr else (1, 1)
                self.mst_weight = MST_WEIGHT * w * h
            scale = float(trainer.codec.region_sum) if self.hdhr else 1.0
            self.mst_loss = build_loss("mst", normalisation="softmax" if self.hdhr else "raw",
                                       scale=scale, detach_clean=self.mst_detach_clean)

    def _task(self, out: torch.Tensor, batch: dict) -> torch.Tensor:
        if self.hdhr:
            return self.criterion(out, batch["target"], batch["target_weight"],
                                  batch.get("target_labels"))
        return self.criterion(out, batch["target"], batch["target_weight"])

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        """The task loss on the clean crop (+ MST when on; see :meth:`train_step`)."""
        images = batch["image"]
        outputs = supervised_outputs(model, images, self.intermediate_supervision)
        task = sum(self._task(out, batch) for out in outputs)
        if not self.mst:
            return {"loss": task}
        perturbed = batch.get("perturbed")
        if perturbed is None:
            raise ValueError("method 'stable': mst needs batch['perturbed'] (train_step makes it)")
        weight = batch["target_weight"] if self.mst_masked else None
        mst = self.mst_loss(model(perturbed), outputs[-1], weight)
        return {"loss": task + self.mst_weight * mst, "task": task, "mst": mst}

    def with_perturbed(self, batch: dict) -> dict:
        """``batch`` plus ``perturbed`` (N x 3 x H x W in [0, 1]) when MST is on: one
        perturbation per crop from the trainer's ``np_rng`` (numpy, outside autocast)."""
        if not self.mst:
            return batch
        return {**batch, "perturbed": self.perturb(batch["image"], self.rng)}

    def train_step(self, model: nn.Module, batch: dict, step: Any) -> dict[str, torch.Tensor]:
        return super().train_step(model, self.with_perturbed(batch), step)
