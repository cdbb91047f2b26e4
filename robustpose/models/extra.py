"""The official configs' ``MODEL.EXTRA`` block: merging a user block over a preset."""
from __future__ import annotations

import copy
from typing import Any, Mapping

# Keys of official MODEL.EXTRA blocks that do not change the architecture.
IGNORED_KEYS = frozenset({"PRETRAINED_LAYERS", "TARGET_TYPE", "HEATMAP_SIZE", "SIGMA", "STEM_INPLANES"})


def _upper(d: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).upper(): (_upper(v) if isinstance(v, Mapping) else v) for k, v in d.items()}


def merge_extra(preset: Mapping[str, Any], extra: Mapping[str, Any] | None,
                model: str) -> dict[str, Any]:
    """Deep-merge ``extra`` (keys case-insensitive) over ``preset``.

    Keys the preset does not know raise ``ValueError`` (a typo would otherwise be silently
    ignored), except the non-architectural official keys in ``IGNORED_KEYS``, which are kept.
    """
    merged = copy.deepcopy(dict(preset))
    if not extra:
        return merged
    if not isinstance(extra, Mapping):
        raise ValueError(f"{model}: extra must be a dict (the official MODEL.EXTRA block), "
                         f"got {type(extra).__name__}")
    for key, value in _upper(extra).items():
        if key in IGNORED_KEYS:
            merged[key] = copy.deepcopy(value)
        elif key not in merged:
            raise ValueError(f"{model}: unknown MODEL.EXTRA key {key!r}; known: {sorted(preset)}")
        elif isinstance(merged[key], dict):
            if not isinstance(value, Mapping):
                raise ValueError(f"{model}: MODEL.EXTRA.{key} must be a dict")
            unknown = sorted(set(value) - set(merged[key]))
            if unknown:
                raise ValueError(f"{model}: unknown keys {unknown} in MODEL.EXTRA.{key}; "
                                 f"known: {sorted(merged[key])}")
            merged[key].update(copy.deepcopy(dict(value)))
        else:
            merged[key] = copy.deepcopy(value)
    return merged
