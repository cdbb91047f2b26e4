"""Direct coordinate regression training (DeepPose), ``train.method: regression``.

The model outputs (N, K, 2) coordinates (``output_kind == 'coords'``: ``deeppose_resnet*``,
``deeppose_shufflenetv2``, ...). The method declares the ``regression`` codec
(:class:`~robustpose.codecs.CoordinateRegression`) through :meth:`codec_config`, so the
training targets, validation (OKS AP through the trainer's own validation) and
``robustpose test`` / ``--config`` adapters all encode and decode coordinates with it.
Its ``units`` follow the model's ``coord_units`` (``model.kwargs``, default ``pixels``),
so targets and outputs are always in the same frame: input-crop pixels, or the crop
normalised to [0, 1].

Loss: ``coord_l1`` (default; :class:`~robustpose.losses.CoordL1Loss`,
``mean(|w * (pred - gt)|)``, the L1 objective of the attack study's regression model)
or ``coord_l2`` (:class:`~robustpose.losses.CoordL2Loss`, DeepPose's original L2), with
the codec's visibility weights (1 for every labelled joint, also outside the crop; 0
for unlabelled ones, which still count in the mean, as in HRNet's heatmap loss).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustpose.config import ConfigError, codec_block
from robustpose.losses import build_loss
from robustpose.training.methods import TrainingMethod, register_method, supervised_outputs

LOSSES = ("coord_l1", "coord_l2")


@register_method("regression")
class CoordinateRegressionMethod(TrainingMethod):
    """DeepPose-style training of a coordinate-regression model.

    Args:
        use_target_weight: weight each joint by its visibility (``target_weight``).
        loss: ``'coord_l1'`` (default) or ``'coord_l2'``.
        intermediate_supervision: sum the loss over every ``forward_all`` output (a model
            with several coordinate stages); single-output models are unaffected.
    """

    name = "regression"

    def __init__(self, use_target_weight: bool = True, loss: str = "coord_l1",
                 intermediate_supervision: bool = True) -> None:
        if loss not in LOSSES:
            raise ValueError(f"method 'regression': loss must be one of {', '.join(LOSSES)}, "
                             f"got {loss!r}")
        self.loss_name = loss
        self.criterion = build_loss(loss, use_target_weight=use_target_weight)
        self.intermediate_supervision = bool(intermediate_supervision)

    @classmethod
    def codec_config(cls, config: dict) -> dict:
        """``{type: regression, units: <model.kwargs.coord_units or pixels>}``, keeping the
        user's regression block; a heatmap codec named in the config is refused (it would
        mean the config was written for another method)."""
        units = str((config["model"].get("kwargs") or {}).get("coord_units", "pixels"))
        data = config["data"]
        if not (data.get("codec") or data.get("target_encoding")):
            return {"type": "regression", "units": units}
        block = codec_block(config)
        if block.get("type") != "regression":
            raise ConfigError(f"train.method 'regression' trains with the regression codec; "
                              f"data.codec names {block.get('type')!r} (remove it)")
        if block.get("units", units) != units:
            raise ConfigError(f"data.codec.units {block['units']!r} disagrees with "
                              f"model.kwargs.coord_units {units!r}")
        return {**block, "units": units}

    def setup(self, trainer: Any) -> None:
        kind = getattr(trainer.model, "output_kind", "heatmaps")
        if kind != "coords":
            raise ValueError(f"train.method 'regression' trains coordinate models "
                             f"(deeppose_*); {trainer.config['model']['name']!r} outputs {kind}")

    def losses(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        """``batch['target']`` (N, K, 2) in the codec's units, ``target_weight`` (N, K, 1)."""
        target, weight = batch["target"], batch["target_weight"]
        outputs = supervised_outputs(model, batch["image"], self.intermediate_supervision)
        # a model may append a score column (N, K, 3): only (x, y) is supervised
        loss = sum(self.criterion(out[..., :2], target, weight) for out in outputs)
        return {"loss": loss}
