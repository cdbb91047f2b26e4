"""Blur family: defocus, glass, motion, zoom, and gaussian (validation)."""
from __future__ import annotations

import functools

import cv2
import numpy as np

from . import _jit
from ._mt19937 import raw_uint32
from ._kernels import (UNIT_FLOAT32, _zoom_axis, add_clipped_zoom, legacy_randint, motion_blur_exact,
                       motion_kernel, sk_gaussian)
from .params import SEVERITY_PARAMS
from .registry import register, to_uint8


def _finish_unit(x: np.ndarray, clip: bool = True) -> np.ndarray:
    """``np.uint8(np.clip(x, 0, 1) * 255)`` (``np.uint8(x * 255)`` without ``clip``)."""
    if _jit.HAVE_NUMBA and x.dtype == np.float64:  # one compiled pass, same operations
        out = np.empty(x.shape, np.uint8)
        _jit.unit_to_uint8(np.ascontiguousarray(x).reshape(-1), out.reshape(-1), clip)
        return out
    return to_uint8((np.clip(x, 0, 1) if clip else x) * 255)


@register("gaussian_blur", deterministic=True)
def gaussian_blur(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Gaussian blur, sigma in px (scikit-image ``gaussian``, mode 'nearest', 4 sigma)."""
    sigma = SEVERITY_PARAMS["gaussian_blur"][severity - 1]
    return _finish_unit(sk_gaussian(image / 255.0, sigma))


@functools.lru_cache(maxsize=16)
def disk_kernel(radius: int, alias_blur: float) -> np.ndarray:
    """The reference's anti-aliased disk (float32, sums to ~1); cached, read-only."""
    if radius <= 8:
        coords = np.arange(-8, 8 + 1)
        ksize = (3, 3)
    else:
        coords = np.arange(-radius, radius + 1)
        ksize = (5, 5)
    xx, yy = np.meshgrid(coords, coords)
    aliased = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    aliased /= np.sum(aliased)
    kernel = cv2.GaussianBlur(aliased, ksize=ksize, sigmaX=alias_blur)
    kernel.setflags(write=False)
    return kernel


@register("defocus_blur", deterministic=True)
def defocus_blur(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Convolution with an anti-aliased disk (radius px, alias sigma)."""
    radius, alias_blur = SEVERITY_PARAMS["defocus_blur"][severity - 1]
    kernel = disk_kernel(radius, alias_blur)
    # One 3-channel call: bit-identical to the reference's three per-channel calls.
    return _finish_unit(cv2.filter2D(image / 255.0, -1, kernel))


def glass_shuffle(x: np.ndarray, max_delta: int, iterations: int, rng: np.random.RandomState,
                  use_jit: bool = True) -> np.ndarray:
    """The reference's local pixel shuffle, vectorised, with its exact draws and semantics.

    For each iteration, pixels (h, w) are visited with h from H - d down to d + 1 and, within
    a row, w from W - d down to d + 1; each draws ``dx, dy = randint(-d, d, size=2)`` and
    executes ``x[h, w], x[h', w'] = x[h', w'], x[h, w]``, which for H x W x 3 arrays is a
    copy ``x[h, w] = x[h', w']`` (the right-hand side is a pair of views). The value
    copied is therefore the source's value at visit time: the source's own final value
    when it was visited earlier, else its value before the iteration. Following these
    pointers reproduces the sequential loop exactly. With numba (``use_jit``) the
    sequential loop itself runs, compiled.
    """
    height, width = x.shape[:2]
    d = max_delta
    rows, cols = height - 2 * d, width - 2 * d
    if rows <= 0 or cols <= 0:
        return x
    hh = (height - d - np.arange(rows, dtype=np.int32))[:, None]
    ww = (width - d - np.arange(cols, dtype=np.int32))[None, :]
    visited = (hh * width + ww).ravel()                  # flat index, in visit order
    count = visited.size
    # visit rank of every pixel; never-visited pixels rank after all visited ones
    rank = np.full(height * width, count, np.int32)
    rank[visited] = np.arange(count, dtype=np.int32)
    span = 2 * d - 1  # randint(-d, d): values -d .. d - 1
    mask = (1 << span.bit_length()) - 1
    if use_jit and _jit.HAVE_NUMBA and mask == span:  # no rejection: raw outputs in draw order
        out = np.array(x, copy=True, order="C")
        raw = raw_uint32(rng, iterations * count * 2)
        _jit.glass_copy_loop_raw(out, raw, np.uint32(mask), -d, d)
        return out
    draws = legacy_randint(rng, -d, d, iterations * count * 2, np.int32).reshape(iterations, count, 2)
    if use_jit and _jit.HAVE_NUMBA:
        out = np.array(x, copy=True, order="C")
        _jit.glass_copy_loop(out, draws, d)
        return out
    pixels = np.ascontiguousarray(x).view(np.dtype((np.void, x.shape[2]))).reshape(-1)
    pointer = np.arange(height * width, dtype=np.int32)
    for it in range(iterations):
        source = visited + draws[it, :, 1] * width + draws[it, :, 0]
        pointer[visited] = source
        pending = np.flatnonzero(rank[source] < rank[visited])
        while pending.size:
            current = source[pending]
            nxt = pointer[current]
            source[pending] = nxt
            pending = pending[rank[nxt] < rank[current]]
        shuffled = pixels.copy()
        shuffled[visited] = pixels[source]
        pixels = shuffled
    return pixels.view(x.dtype).reshape(x.shape)


@register("glass_blur")
def glass_blur(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Gaussian blur, local pixel shuffle (max_delta px, iterations), gaussian blur."""
    sigma, max_delta, iterations = SEVERITY_PARAMS["glass_blur"][severity - 1]
    x = _finish_unit(sk_gaussian(image / 255.0, sigma), clip=False)  # uint8(blurred * 255)
    x = glass_shuffle(x, max_delta, iterations, rng)
    return _finish_unit(sk_gaussian(x / 255.0, sigma))


@register("motion_blur")
def motion_blur(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Half-gaussian blur along a random angle in [-45, 45) degrees (one uniform draw)."""
    radius, sigma = SEVERITY_PARAMS["motion_blur"][severity - 1]
    angle = rng.uniform(-45, 45)
    taps = motion_kernel(radius, sigma, angle, image.shape[:2])
    return to_uint8(np.clip(motion_blur_exact(image, taps), 0, 255))


@register("zoom_blur", deterministic=True)
def zoom_blur(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Mean of the image and its centre zooms by each factor of the severity."""
    factors = SEVERITY_PARAMS["zoom_blur"][severity - 1]
    x = UNIT_FLOAT32[image]  # == (image / 255.0).astype(np.float32)
    if _jit.HAVE_NUMBA:  # layers and finish fused, row by row (same operations)
        out = np.empty(image.shape, np.uint8)
        _jit.zoom_blur_rows(x, *_zoom_tables(x.shape[0], x.shape[1], tuple(factors)), out)
        return out
    total = zoom_layers_sum(x, factors)
    total += x  # the reference's (x + out) / (n + 1), then clip * 255, in place
    total /= len(factors) + 1
    np.clip(total, 0, 1, out=total)
    total *= 255
    return to_uint8(total)




def zoom_layers_sum(x: np.ndarray, factors: tuple[float, ...]) -> np.ndarray:
    """``sum(clipped_zoom(x, z)[:H, :W] for z in factors)`` in float32 (accumulated from
    zeros in order), for an H x W x C float32 ``x`` (numpy path)."""
    out = np.zeros_like(x)
    for factor in factors:
        add_clipped_zoom(out, x, factor)
    return out


@functools.lru_cache(maxsize=32)
def _zoom_tables(height: int, width: int, factors: tuple[float, ...]):
    """Per-layer taps of :func:`._kernels.add_clipped_zoom` stacked for :func:`_jit.zoom_blur_rows`:
    (r0, r1, wr, zero_rows) layers x H and (c0, c1, wc, zero_cols) layers x W."""
    def axis(n: int, factor: float):
        crop = int(np.ceil(n / float(factor)))
        start = (n - crop) // 2
        first, second, weight, outside = _zoom_axis(crop, factor)
        zero = np.zeros(n, np.bool_)
        zero[outside[outside < n]] = True
        return first[:n] + start, second[:n] + start, weight[:n].astype(np.float32), zero

    rows = [axis(height, f) for f in factors]
    cols = [axis(width, f) for f in factors]
    stacked = [np.stack([layer[i] for layer in rows]) for i in range(4)]
    stacked += [np.stack([layer[i] for layer in cols]) for i in range(4)]
    for array in stacked:
        array.setflags(write=False)
    return tuple(stacked)
