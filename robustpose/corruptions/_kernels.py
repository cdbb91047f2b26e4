"""Shared numerical kernels of the corruptions (private).

Each helper reproduces one building block of imagecorruptions 1.1.2 (scikit-image's
``gaussian``, ``clipped_zoom``, the numpy motion blur, legacy ``randint``), with the
reference's operation order where the result feeds a truncating cast.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def sk_gaussian(x: np.ndarray, sigma, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """``skimage.filters.gaussian(x, sigma, channel_axis=-1 if 3-D)`` for float64 ``x``:
    scipy's separable gaussian over the two spatial axes."""
    if np.ndim(sigma) == 0:
        sigma = [sigma, sigma]
    sigmas = list(sigma) + [0] * (x.ndim - 2)
    return ndimage.gaussian_filter(x, sigmas, mode=mode, truncate=truncate)


def legacy_randint(rng: np.random.RandomState, low: int, high: int, count: int) -> np.ndarray:
    """``count`` values of ``rng.randint(low, high)`` (int64, in draw order), drawn in bulk.

    Reproduces numpy's legacy masked rejection sampling from raw 32-bit outputs, and
    leaves ``rng`` in exactly the state the one-by-one calls would.
    """
    span = high - 1 - low
    mask = (1 << int(span).bit_length()) - 1
    if count == 0:
        return np.zeros(0, np.int64)
    if mask == span:
        raw = rng.randint(0, 2**32, size=count, dtype=np.uint32)
        return (raw & np.uint32(mask)).astype(np.int64) + low
    state = rng.get_state(legacy=False)
    need = int(count * (mask + 1) / (span + 1) * 1.02) + 64
    while True:
        raw = rng.randint(0, 2**32, size=need, dtype=np.uint32) & np.uint32(mask)
        accepted = np.flatnonzero(raw <= span)
        if accepted.size >= count:
            break
        rng.set_state(state)
        need = int(need * 1.5)
    used = int(accepted[count - 1]) + 1
    if used < need:  # rewind and consume exactly what the reference consumes
        rng.set_state(state)
        rng.randint(0, 2**32, size=used, dtype=np.uint32)
    return raw[accepted[:count]].astype(np.int64) + low


def clipped_zoom(x: np.ndarray, zoom_factor: float) -> np.ndarray:
    """imagecorruptions' ``clipped_zoom``: centre crop of ceil(side / z), zoomed by z with
    ``scipy.ndimage.zoom(order=1)`` (output larger than or equal to ``x``; not trimmed)."""
    ch0 = int(np.ceil(x.shape[0] / float(zoom_factor)))
    top0 = (x.shape[0] - ch0) // 2
    ch1 = int(np.ceil(x.shape[1] / float(zoom_factor)))
    top1 = (x.shape[1] - ch1) // 2
    return ndimage.zoom(x[top0:top0 + ch0, top1:top1 + ch1], (zoom_factor, zoom_factor, 1), order=1)


def motion_kernel(radius: int, sigma: float, angle: float, shape: tuple[int, int]):
    """Taps of the reference motion blur: list of (weight, dy, dx) in summation order.

    Weights are a half gaussian over ``2 * radius + 1`` steps along ``angle`` degrees;
    the walk stops where the shift would leave an image of ``shape``.
    """
    width = radius * 2 + 1
    steps = np.arange(width)
    k = (np.exp(-(steps - 0) ** 2 / (2 * (sigma ** 2)))) / (np.sqrt(2 * np.pi) * sigma)
    k = k / np.sum(k)
    point = (width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle)))
    hypot = math.hypot(point[0], point[1])
    taps = []
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hypot) - 0.5)
        dx = -math.ceil(((i * point[1]) / hypot) - 0.5)
        if abs(dy) >= shape[0] or abs(dx) >= shape[1]:
            break
        taps.append((k[i], dy, dx))
    return taps


def motion_blur_exact(x: np.ndarray, taps) -> np.ndarray:
    """Sum of edge-replicated shifts ``sum_i k_i * shift(x, dx_i, dy_i)`` in float64, in the
    reference's order (bit-identical to its ``_motion_blur``); ``x`` is H x W or H x W x C."""
    if not taps:
        return np.zeros(x.shape, np.float64)
    pad_y = max(abs(dy) for _, dy, _ in taps)
    pad_x = max(abs(dx) for _, _, dx in taps)
    pad = [(pad_y, pad_y), (pad_x, pad_x)] + [(0, 0)] * (x.ndim - 2)
    padded = np.pad(x, pad, mode="edge")
    height, width = x.shape[:2]
    acc = np.zeros(x.shape, np.float64)
    tmp = np.empty(x.shape, np.float64)
    for weight, dy, dx in taps:
        # shift(x, dx, dy)[i, j] = x[clamp(i - dy), clamp(j - dx)]
        view = padded[pad_y - dy:pad_y - dy + height, pad_x - dx:pad_x - dx + width]
        np.multiply(view, weight, out=tmp)
        acc += tmp
    return acc
