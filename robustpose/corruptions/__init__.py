"""The 19 ImageNet-C corruptions, faithful to imagecorruptions 1.1.2, seeded and fast, and
PoseBench's three (color_quant, low_light, mask; ``posebench.py``).

>>> import numpy as np
>>> from robustpose.corruptions import corrupt, get_corruption_names
>>> image = np.full((64, 64, 3), 128, np.uint8)
>>> out = corrupt(image, "gaussian_noise", severity=3, seed=0)
>>> out.shape, out.dtype.name
((64, 64, 3), 'uint8')

``parse_corruptions`` / ``parse_severities`` read the ``--corruptions`` / ``--severities``
choices of every command (one grammar, see docs/corruptions.md).
``corrupt_batch`` (the torch path) is imported lazily, so importing this package never
imports torch.
"""
from __future__ import annotations

from typing import Any

from .api import corrupt, get_corruption_names, resolve_rng, validate_image
from .params import (ALL_CORRUPTIONS, CORRUPTION_NAMES, FAMILIES, POSEBENCH, POSEBENCH_EXTRA,
                     SEVERITY_PARAMS, SUBSETS)
from .selection import parse_corruptions, parse_severities

__all__ = [
    "corrupt",
    "corrupt_batch",
    "get_corruption_names",
    "parse_corruptions",
    "parse_severities",
    "resolve_rng",
    "validate_image",
    "ALL_CORRUPTIONS",
    "CORRUPTION_NAMES",
    "POSEBENCH",
    "POSEBENCH_EXTRA",
    "FAMILIES",
    "SEVERITY_PARAMS",
    "SUBSETS",
]


def __getattr__(name: str) -> Any:
    if name == "corrupt_batch":
        from .batch import corrupt_batch

        return corrupt_batch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
