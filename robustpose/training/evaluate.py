"""Evaluate a checkpoint with an experiment config (``robustpose test``), sharded under
torchrun exactly like validation during training."""
from __future__ import annotations

import os
from typing import Any, Callable

from robustpose.config import build_model_for
from robustpose.training.distributed import DistInfo, init_distributed, rank_zero_first, shutdown
from robustpose.training.validation import predict_fn_for, validate


def evaluate_checkpoint(config: dict, checkpoint: str | os.PathLike, device: str | None = None,
                        progress: bool = True, predict_fn: Callable | None = None,
                        dist_info: DistInfo | None = None) -> tuple[dict[str, float] | None, Any]:
    """Metrics of ``checkpoint`` on the config's val split: ``(stats, metric)`` on rank 0,
    ``(None, None)`` on other ranks. Loads with ``weights_only=True`` through
    ``robustpose.models.load_checkpoint`` (robustpose, official HRNet/SBL, mmpose).
    Crops, codec and decoding follow the config (its InferenceSetting), as in training
    validation."""
    from robustpose.models import load_checkpoint
    from robustpose.training.datasets import build_codec_for, build_split

    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: checkpoint not found")
    if not config["data"].get("val"):
        raise ValueError(f"{config.get('_config_path', 'config')}: no data.val split to test on")
    info = dist_info or init_distributed(device)
    try:
        codec = build_codec_for(config)  # the training codec: same targets, same decoding
        with rank_zero_first(info):
            val = build_split(config, "val", train=False, progress=progress and info.is_main,
                              codec=codec)
        if val.metric_factory is None:
            raise ValueError(f"{val.annotation_file}: no metric for this val split")
        model = build_model_for(config, len(val.spec.keypoint_names)).to(info.device)
        load_checkpoint(model, checkpoint)
        return validate(model, val.dataset, val.spec, val.metric_factory, info,
                        batch_size=int(config["val"]["batch_size"]),
                        num_workers=int(config["data"]["num_workers"]),
                        predict_fn=predict_fn or predict_fn_for(config, codec), progress=progress,
                        desc="test")
    finally:
        if dist_info is None:
            shutdown(info)
