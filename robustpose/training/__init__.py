"""Training: one loop (:class:`Trainer`) for every method; methods turn batches into losses.

    from robustpose.training import Trainer, load_config
    config = load_config("configs/coco/hrnet_w32_256x192.yaml", ["data.root=/data/coco"])
    trainer = Trainer(config)
    trainer.fit()
"""
from robustpose.losses import JointsMSELoss  # re-exported: the losses live below training
from robustpose.config import ConfigError, apply_overrides, config_from_dict, load_config
from robustpose.training.methods import (METHODS, StandardHeatmap, TrainingMethod, build_method,
                                         register_method)
from robustpose.training.optim import OptimizerSpec, StepContext
from robustpose.training.trainer import PoseForward, Trainer
from robustpose.training.advmix import AdvMix, AugmentedHeatmap  # registers 'advmix', 'augment'
from robustpose.training.stable import StableHeatmap  # registers 'stable'
from robustpose.training.regression import CoordinateRegressionMethod  # registers 'regression'
from robustpose.training import stable_baselines, stability_training  # noqa: F401  (at, augmix, lipschitz, pg, st_g, st_a)

__all__ = ["AdvMix", "AugmentedHeatmap", "ConfigError", "CoordinateRegressionMethod", "JointsMSELoss", "METHODS", "OptimizerSpec", "PoseForward",
           "StableHeatmap", "StandardHeatmap", "StepContext", "Trainer", "TrainingMethod", "apply_overrides",
           "build_method", "config_from_dict", "load_config", "register_method"]
