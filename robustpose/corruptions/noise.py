"""Noise family: gaussian, shot (Poisson), impulse (salt & pepper), speckle.

Each draws exactly what imagecorruptions 1.1.2 draws from numpy's legacy random state,
in the same order, from the ``RandomState`` it is given; arithmetic is the reference's
(float64, same operation order), so outputs are bit-identical for the same draws. With
numba and a legacy ``RandomState`` (what int seeds give) the draws run through
:mod:`._legacy_draws` (numpy's samplers, compiled, with the arithmetic fused: same values,
same final state, ~2x faster); other generators use numpy's samplers.
"""
from __future__ import annotations

import numpy as np

from . import _legacy_draws
from ._kernels import row_bands
from .params import SEVERITY_PARAMS
from .registry import register


def _unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> float64 in [0, 1] exactly as ``np.array(x) / 255.``."""
    return image / 255.0


def _finish(values: np.ndarray) -> np.ndarray:
    """``np.uint8(np.clip(values, 0, 1) * 255)`` with in-place work (same roundings)."""
    np.clip(values, 0, 1, out=values)
    values *= 255
    return values.astype(np.uint8)


@register("gaussian_noise")
def gaussian_noise(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """x + N(0, c^2) with c = noise std in [0, 1] units."""
    scale = SEVERITY_PARAMS["gaussian_noise"][severity - 1]
    if _legacy_draws.replayable(rng):
        return _legacy_draws.normal_add_u8(rng, image, scale)
    noise = rng.normal(size=image.shape, scale=scale)
    out = np.empty(image.shape, np.uint8)
    for rows in row_bands(image):  # x / 255 + n, clip, * 255, truncate: band by band
        x = _unit_float(image[rows])
        x += noise[rows]
        out[rows] = _finish(x)
    return out


@register("shot_noise")
def shot_noise(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Poisson(x * c) / c: c photons per unit intensity."""
    photons = SEVERITY_PARAMS["shot_noise"][severity - 1]
    # lam = (x / 255.) * c and the output uint8(clip(k / c, 0, 1) * 255) depend on one
    # integer each: evaluate both through tables (same float64 operations as the reference).
    levels = (np.arange(256) / 255.0) * photons
    if _legacy_draws.replayable(rng):  # counts >= photons all give 255: cap them there
        cap = int(np.ceil(photons))
        counts = _legacy_draws.poisson_levels(rng, levels, image, cap=cap)
    else:
        counts = rng.poisson(np.take(levels, image))
        cap = int(counts.max())
    return np.take(_finish(np.arange(cap + 1) / float(photons)), counts)


@register("impulse_noise")
def impulse_noise(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Salt & pepper on each channel value: with probability ``amount`` a value becomes
    0 or 255 (equal odds), as ``skimage.util.random_noise(mode='s&p')``.

    Draws two uniform fields (flip, then salt), like scikit-image's ``_bernoulli``; with
    ``seed=np.random.default_rng(k)`` the output equals the imagecorruptions-imaug fork's
    ``corrupt(..., seed=k)`` bit for bit.
    """
    amount = SEVERITY_PARAMS["impulse_noise"][severity - 1]
    if _legacy_draws.replayable(rng):
        return _legacy_draws.salt_and_pepper_u8(rng, image, amount, _ROUND_TRIP)
    flipped = rng.random_sample(image.shape) <= amount
    salted = rng.random_sample(image.shape) <= 0.5
    # Unflipped values go through the reference's float round trip (x / 255 * 255,
    # truncated), which is not the identity for every x: use a 256-entry table.
    out = _ROUND_TRIP[image]
    out[flipped & salted] = 255
    out[flipped & ~salted] = 0
    return out


_ROUND_TRIP = (np.clip(np.arange(256) / 255.0, 0, 1) * 255).astype(np.uint8)


@register("speckle_noise")
def speckle_noise(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """x + x * N(0, c^2): multiplicative noise."""
    scale = SEVERITY_PARAMS["speckle_noise"][severity - 1]
    if _legacy_draws.replayable(rng):
        return _legacy_draws.normal_add_u8(rng, image, scale, multiplicative=True)
    noise = rng.normal(size=image.shape, scale=scale)
    out = np.empty(image.shape, np.uint8)
    for rows in row_bands(image):  # x + x * n, clip, * 255, truncate: band by band
        x = _unit_float(image[rows])
        product = noise[rows] * x
        x += product
        out[rows] = _finish(x)
    return out
