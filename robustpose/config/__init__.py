"""Experiment configs (YAML over :data:`DEFAULTS`, dotted ``key=value`` overrides) and
what they build below the trainer (model, codec). See docs/training.md.

    from robustpose.config import load_config, build_model_for
    config = load_config("configs/coco/hrnet_w32_256x192.yaml", ["data.root=/data/coco"])
"""
from robustpose.config.builders import (build_codec_for, build_model_for, codec_block,
                                        read_config_model)
from robustpose.config.experiment import (DEFAULTS, ConfigError, apply_overrides,
                                          config_from_dict, dump_config, load_config,
                                          resolve_path, validate_config)

__all__ = ["DEFAULTS", "ConfigError", "apply_overrides", "build_codec_for", "build_model_for",
           "codec_block", "config_from_dict", "dump_config", "load_config", "resolve_path",
           "read_config_model", "validate_config"]

# models sits below config: it learns here how ``load_adapter(config=...)`` reads a config
from robustpose.models.loading import register_config_reader as _register  # noqa: E402

_register(read_config_model)
