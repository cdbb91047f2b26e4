"""The loss ``robustpose attack`` ascends on each attacked model.

``--loss auto`` (the default) is the model's own training loss when its files record it:
best.pt's meta ``train_loss`` (written by the trainer), else the training config
(``--config``, or the ``config.yaml`` the trainer writes beside ``best.pt``):
``train.method_args.loss`` or its method's default. A recorded loss that an attack cannot
use on the model's outputs, or none, falls back to the ``auto`` rule: mse for heatmaps,
coord_l2 for coordinates. The run's settings (``loss_used``, ``loss_source``) say which
loss was used and why; each cell's record carries ``loss``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def training_files(info: dict) -> tuple[dict | None, dict | None]:
    """(checkpoint meta, training config) of a resolved model (``resolve_adapter``'s facts):
    the checkpoint's meta, and its ``--config`` or the trainer's ``config.yaml`` beside it."""
    from robustpose.config import load_config
    from robustpose.models.checkpoint import read_checkpoint

    ckpt = info.get("checkpoint")
    meta = None
    if ckpt and Path(ckpt).is_file():
        obj = read_checkpoint(ckpt)
        meta = obj.get("meta") if isinstance(obj, dict) else None
    config = load_config(info["config"]) if info.get("config") else None
    beside = Path(ckpt).parent / "config.yaml" if ckpt else None
    if config is None and beside is not None and beside.is_file():
        try:
            config = load_config(beside)
        except (ValueError, FileNotFoundError):  # not a training config: nothing recorded
            config = None
    return (meta if isinstance(meta, dict) else None), config


def model_loss(loss: str, attacked: Any, info: dict, name: Any = None) -> tuple[str, str]:
    """(loss name, why) for one attacked model: ``loss`` when given (checked against the
    model's output kind), else its training loss when recorded, else the 'auto' rule."""
    from robustpose.attacks import KIND_LOSSES, attack_loss_for, output_kind, training_loss

    kind = output_kind(attacked)
    if loss != "auto":
        if loss not in KIND_LOSSES[kind]:
            raise ValueError(f"--loss {loss!r} does not fit the {kind} outputs of {name}; "
                             f"choose from auto, {', '.join(KIND_LOSSES[kind])}")
        return loss, "--loss"
    trained, where = training_loss(*training_files(info))
    used = attack_loss_for(kind, trained)
    if used == trained:
        return used, f"the model's training loss ({where})"
    why = f"training loss {trained!r} is not an attack loss for {kind}" if trained else \
        "training loss not recorded"
    return used, f"auto rule for {kind} ({why})"
