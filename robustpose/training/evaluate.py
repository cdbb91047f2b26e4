"""Evaluate a checkpoint with an experiment config (``robustpose test``), sharded under
torchrun exactly like validation during training."""
from __future__ import annotations

import os
from typing import Any, Callable

from robustpose.training.distributed import DistInfo, init_distributed, rank_zero_first, shutdown
from robustpose.training.validation import predict_fn_for, validate
from robustpose.utils.seeding import derive_seed


def build_model_for(config: dict, num_joints: int, pretrained: str | None = None) -> Any:
    """The config's model architecture, initialised from the config's seed (weights come
    from a checkpoint afterwards, or ``pretrained``: an ImageNet backbone file)."""
    from robustpose.models import create_model
    mcfg = config["model"]
    return create_model(mcfg["name"], num_joints=int(mcfg["num_joints"] or num_joints),
                        extra=mcfg["extra"], pretrained=pretrained,
                        seed=derive_seed(int(config["seed"]), "model-init"),
                        **(mcfg["kwargs"] or {}))


def evaluate_checkpoint(config: dict, checkpoint: str | os.PathLike, device: str | None = None,
                        progress: bool = True, predict_fn: Callable | None = None,
                        dist_info: DistInfo | None = None) -> tuple[dict[str, float] | None, Any]:
    """Metrics of ``checkpoint`` on the config's val split: ``(stats, metric)`` on rank 0,
    ``(None, None)`` on other ranks. Loads with ``weights_only=True`` through
    ``robustpose.models.load_checkpoint`` (robustpose, official HRNet/SBL, mmpose)."""
    from robustpose.models import load_checkpoint
    from robustpose.training.datasets import build_split

    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: checkpoint not found")
    if not config["data"].get("val"):
        raise ValueError(f"{config.get('_config_path', 'config')}: no data.val split to test on")
    info = dist_info or init_distributed(device)
    try:
        with rank_zero_first(info):
            val = build_split(config, "val", train=False, progress=progress and info.is_main)
        if val.metric_factory is None:
            raise ValueError(f"{val.annotation_file}: no metric for this val split")
        model = build_model_for(config, len(val.spec.keypoint_names)).to(info.device)
        load_checkpoint(model, checkpoint)
        vcfg = config["val"]
        return validate(model, val.dataset, val.spec, val.metric_factory, info,
                        batch_size=int(vcfg["batch_size"]), flip_test=bool(vcfg["flip_test"]),
                        shift=bool(vcfg["shift"]), num_workers=int(config["data"]["num_workers"]),
                        predict_fn=predict_fn or predict_fn_for(config), progress=progress,
                        desc="test")
    finally:
        if dist_info is None:
            shutdown(info)
