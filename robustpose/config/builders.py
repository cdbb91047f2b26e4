"""What an experiment config builds below the trainer: its model and its codec.

Training, ``robustpose test``, the benchmark's ``--config`` adapter and the bundled-model
export all build these two things from a config; they live here, under every one of
them, so none has to import another.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from robustpose.config.experiment import ConfigError
from robustpose.utils.seeding import derive_seed

__all__ = ["build_model_for", "codec_block", "build_codec_for", "read_config_model"]


def build_model_for(config: dict, num_joints: int, pretrained: str | None = None) -> Any:
    """The config's model architecture, initialised from the config's seed (weights come
    from a checkpoint afterwards, or ``pretrained``: an ImageNet backbone file)."""
    from robustpose.models import create_model
    mcfg = config["model"]
    return create_model(mcfg["name"], num_joints=int(mcfg["num_joints"] or num_joints),
                        extra=mcfg["extra"], pretrained=pretrained,
                        seed=derive_seed(int(config["seed"]), "model-init"),
                        **(mcfg["kwargs"] or {}))


def codec_block(config: dict) -> dict:
    """The config's codec block: ``data.codec``, or ``{type: data.target_encoding}`` (the
    alias), or ``{type: hrnet}``; a copy the caller may change
    (:func:`robustpose.codecs.registry.config_codec_block`)."""
    from robustpose.codecs.registry import config_codec_block
    return config_codec_block(config)


def build_codec_for(config: dict, declared: Mapping[str, Any] | None = None) -> Any:
    """The experiment's codec, built at ``data.input_size`` / ``heatmap_size`` with
    ``data.sigma``; it decodes with its own defaults unless ``val.refine`` /
    ``val.dark_kernel`` / ``val.boundary`` say otherwise. ``declared``: the block a
    training method asks for (its ``codec_config(config)``), which wins over
    :func:`codec_block`."""
    from robustpose.codecs import InferenceSetting, build_codec

    block = dict(declared) if declared else codec_block(config)
    setting = InferenceSetting.from_config(config, codec=block)
    try:
        return build_codec(block, input_size=setting.input_size,
                           heatmap_size=setting.heatmap_size, sigma=float(config["data"]["sigma"]),
                           refine=setting.refine, boundary=setting.boundary,
                           blur_kernel=setting.dark_kernel)
    except ValueError as exc:
        raise ConfigError(f"data.codec: {exc}") from None


def read_config_model(config: str | os.PathLike, checkpoint: str | os.PathLike | None,
                      num_joints: int) -> Any:
    """An experiment config -> :class:`robustpose.models.loading.ConfigModel`: its
    architecture (weights not loaded), InferenceSetting, codec and checkpoint (the given
    one, else ``<output_dir>/best.pt``, which must exist). ``robustpose.config`` registers
    it with :func:`robustpose.models.loading.register_config_reader` on import, because
    ``models`` sits below ``config`` and cannot import it."""
    from robustpose.codecs import InferenceSetting
    from robustpose.config.experiment import load_config
    from robustpose.models.loading import ConfigModel

    cfg = load_config(config)
    ckpt = checkpoint
    if ckpt is None:
        ckpt = Path(cfg.get("output_dir") or f"runs/{cfg['name']}") / "best.pt"
        if not ckpt.is_file():
            raise FileNotFoundError(f"{config}: no --checkpoint given and {ckpt} not found")
    return ConfigModel(model=build_model_for(cfg, num_joints),
                       setting=InferenceSetting.from_config(cfg),
                       codec=build_codec_for(cfg), name=str(cfg["name"]),
                       checkpoint=Path(ckpt))
