"""One registry for the 22 corruptions (ImageNet-C's 19 and PoseBench's three): name ->
function, filled by the family modules.

A corruption function has the signature ``fn(image, severity, rng) -> np.ndarray`` where
``image`` is a C-contiguous uint8 H x W x 3 RGB array (never modified), ``severity`` an int
in 1..5 and ``rng`` a ``np.random.RandomState`` that replays the reference's draws
(imagecorruptions 1.1.2, or 3DCC for low_light, run after ``np.random.seed(k)``). It
returns uint8 H x W x 3.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from robustpose.utils.registry import Registry

CorruptionFn = Callable[[np.ndarray, int, np.random.RandomState], np.ndarray]

#: name -> function (meta ``deterministic``); the canonical order is ``params.CORRUPTION_NAMES``.
CORRUPTIONS: Registry = Registry("corruption")

#: Corruptions that draw no random numbers (they are called with ``rng=None``).
DETERMINISTIC: set[str] = set()


def register(name: str, deterministic: bool = False) -> Callable[[CorruptionFn], CorruptionFn]:
    """Decorator adding ``fn`` to :data:`CORRUPTIONS` under ``name`` (a taken name raises a
    one-line ``ValueError``)."""

    def add(fn: CorruptionFn) -> CorruptionFn:
        CORRUPTIONS.register(name, fn, deterministic=bool(deterministic))
        if deterministic:
            DETERMINISTIC.add(name)
        return fn

    return add


def to_uint8(values: np.ndarray) -> np.ndarray:
    """The reference's final ``np.uint8(x)``: truncates floats in [0, 255] toward zero."""
    return np.asarray(values).astype(np.uint8)
