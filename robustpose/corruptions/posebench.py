"""The three PoseBench corruptions ImageNet-C lacks: colour quantisation, low light, mask.

PoseBench (Ma et al. 2024, arXiv 2406.14367) evaluates 10 corruptions; seven are ImageNet-C's
(the other modules), these three are new. Colour quantisation and low light follow 3D Common
Corruptions (Kar et al. 2022, ``create_3dcc/create_non3d.py``: ``color_quant``, ``low_light``),
which PoseBench defers to; the formulas are restated here, the severity tables live in
:mod:`.params`. Mask is our own definition (PoseBench's parameters are not published); see
docs/corruptions.md.

- ``color_quant``: posterise every channel value to its top ``b = 6 - severity`` bits
  (``v & (0xFF << (8 - b))``), deterministic.
- ``low_light``: ``y = ((x - min) / (max - min)) ** 2 * d`` (x in [0, 1], min/max over the
  whole image, all channels; ``d`` = 0.6 .. 0.2), then Poisson noise with 120 photons per unit
  (``clip(Poisson(120 y) / 120, 0, 1)``) and Gaussian read noise of std 0.018 (clipped), the
  uint8 result truncated as the reference's ``np.uint8``. A constant image (max == min) has
  no range to rescale: 3DCC divides by zero there; we map it to 0 (black, then the noise).
- ``mask``: ``n`` solid rectangles of random colour (uniform in 0..255 per channel), each side
  uniform in [lo, hi] x the image's width / height, placed uniformly inside the image (they
  may overlap). Pixels only: the ground truth is untouched, so keypoints under a rectangle
  keep their labels and visibility (a benchmark asks the model to find them, as under any
  other corruption the model has not seen).

Each function has the registry's signature ``fn(image, severity, rng)``; the random ones draw
from the ``RandomState`` they are given, in a fixed order (documented per function), so an int
seed gives the same bytes in every process.
"""
from __future__ import annotations

import numpy as np

from . import _legacy_draws
from .params import LOW_LIGHT_GAMMA, LOW_LIGHT_PHOTONS, LOW_LIGHT_READ_STD, SEVERITY_PARAMS
from .registry import register, to_uint8


def posterize_table(severity: int) -> np.ndarray:
    """The 256-entry uint8 lookup table of ``color_quant`` at ``severity`` (PIL's posterize LUT:
    ``v & ~(2 ** (8 - bits) - 1)``)."""
    bits = SEVERITY_PARAMS["color_quant"][severity - 1]
    return (np.arange(256, dtype=np.uint8) & np.uint8((0xFF << (8 - bits)) & 0xFF)).astype(np.uint8)


@register("color_quant", deterministic=True)
def color_quant(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Keep the top ``6 - severity`` bits of every channel value (5 bits at severity 1, 1 at 5)."""
    return posterize_table(severity)[image]


def low_light_levels(image: np.ndarray, severity: int) -> np.ndarray:
    """The darkened image before noise, float64 in [0, d] x 255 (the reference's ``x_scaled``):
    the gamma-2 stretch of [min, max] onto [0, d]. Depends on each value only through the
    image's min and max, so it is evaluated on a 256-entry table (same float64 operations)."""
    return np.take(_low_light_table(image, severity), image)


def _low_light_table(image: np.ndarray, severity: int) -> np.ndarray:
    """:func:`low_light_levels` of every byte value 0..255 for this image's min and max."""
    top = SEVERITY_PARAMS["low_light"][severity - 1]
    low, high = int(image.min()), int(image.max())
    if high == low:  # 3DCC divides by zero here; a flat image goes to black
        return np.zeros(256, np.float64)
    levels = np.arange(256) / 255.0
    a, b = low / 255.0, high / 255.0
    table = (((levels - a) / (b - a)) ** LOW_LIGHT_GAMMA) * (top - 0) + 0
    table *= 255
    return table


@register("low_light")
def low_light(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Darken with a gamma-2 stretch onto [0, d], then photon and read noise.

    Draws ``rng.poisson(lam)`` (H x W x 3) then ``rng.normal(size=(H, W, 3), scale=0.018)``,
    the reference's order, so ``seed=k`` gives 3DCC's ``low_light`` after ``np.random.seed(k)``.
    """
    lam_levels = (_low_light_table(image, severity) / 255.0) * LOW_LIGHT_PHOTONS
    if _legacy_draws.replayable(rng):  # numpy's sampler, compiled: same counts, same state
        counts = _legacy_draws.poisson_levels(rng, lam_levels, image, cap=LOW_LIGHT_PHOTONS)
    else:
        counts = rng.poisson(np.take(lam_levels, image))
    # the value after the photon noise depends on the count only: a table over counts
    finish = (np.clip(np.arange(int(counts.max()) + 1) / LOW_LIGHT_PHOTONS, 0, 1) * 255) / 255.0
    x = np.take(finish, counts)
    x = np.clip(x + rng.normal(size=x.shape, scale=LOW_LIGHT_READ_STD), 0, 1) * 255
    return to_uint8(x)


def mask_rectangles(height: int, width: int, severity: int,
                    rng: np.random.RandomState) -> list[tuple[int, int, int, int, tuple[int, int, int]]]:
    """The rectangles of ``mask``: ``[(top, left, h, w, (r, g, b)), ...]`` in pixels.

    Draws, in this order: ``rng.uniform(lo, hi, (n, 2))`` (width, height fractions),
    ``rng.random_sample((n, 2))`` (left, top positions) and ``rng.randint(0, 256, (n, 3))``
    (colours). Shared by ``corrupt`` and ``corrupt_batch`` (which calls it with a
    ``RandomState`` of the same seed), so both paint the same rectangles.
    """
    count, lo, hi = SEVERITY_PARAMS["mask"][severity - 1]
    sides = rng.uniform(lo, hi, (count, 2))
    where = rng.random_sample((count, 2))
    colours = rng.randint(0, 256, (count, 3))
    rects = []
    for (fw, fh), (fx, fy), colour in zip(sides, where, colours):
        w = max(1, min(width, int(round(fw * width))))
        h = max(1, min(height, int(round(fh * height))))
        left = int(fx * (width - w + 1))  # uniform over the positions that keep it inside
        top = int(fy * (height - h + 1))
        rects.append((top, left, h, w, tuple(int(c) for c in colour)))
    return rects


@register("mask")
def mask(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Paint ``n`` random solid rectangles (2, 4, 6, 8, 10 at severities 1..5; sides 10-25 %
    of the image's width / height), later ones over earlier ones."""
    out = image.copy()
    for top, left, h, w, colour in mask_rectangles(image.shape[0], image.shape[1], severity, rng):
        out[top:top + h, left:left + w] = colour
    return out
