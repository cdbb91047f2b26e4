"""Shared numerical kernels of the corruptions (private).

Each helper reproduces one building block of imagecorruptions 1.1.2 (scikit-image's
``gaussian``, ``clipped_zoom``, the numpy motion blur, legacy ``randint``), with the
reference's operation order where the result feeds a truncating cast.
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from scipy import ndimage

from . import _jit
from ._mt19937 import raw_uint32


@functools.lru_cache(maxsize=64)
def _gaussian_taps(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's 1-D gaussian kernel (radius ``int(truncate * sigma + 0.5)``)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (float(sigma) * float(sigma)) * x ** 2)
    return phi / phi.sum()


_BORDERS = {"nearest": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT}


def sk_gaussian(x: np.ndarray, sigma, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """``skimage.filters.gaussian(x, sigma, mode=mode, truncate=truncate)`` over the two
    spatial axes (channels of a 3-D ``x`` filtered separately), for float ``x``.

    scipy's kernel, applied by OpenCV's separable filter in float64 (2-4x faster than
    scipy.ndimage); results agree with scipy to the last bits of a double. The output
    dtype is ``x``'s (float32 in, float32 out, like scikit-image).
    """
    sig_y, sig_x = (sigma, sigma) if np.ndim(sigma) == 0 else (sigma[0], sigma[1])
    ky, kx = _gaussian_taps(float(sig_y), truncate), _gaussian_taps(float(sig_x), truncate)
    src = x.astype(np.float64, copy=False)
    if src.ndim == 3 and src.shape[2] > 4:
        raise ValueError("sk_gaussian supports at most 4 channels")
    out = cv2.sepFilter2D(src, cv2.CV_64F, kx, ky, borderType=_BORDERS[mode])
    return out.astype(x.dtype, copy=False).reshape(x.shape)


def legacy_randint(rng: np.random.RandomState, low: int, high: int, count: int,
                   dtype: type = np.int64) -> np.ndarray:
    """``count`` values of ``rng.randint(low, high)`` (``dtype``, in draw order), drawn in bulk.

    Reproduces numpy's legacy masked rejection sampling from raw 32-bit outputs, and
    leaves ``rng`` in exactly the state the one-by-one calls would.
    """
    span = high - 1 - low
    mask = (1 << int(span).bit_length()) - 1
    if count == 0:
        return np.zeros(0, dtype)
    if mask == span:
        raw = raw_uint32(rng, count)
        return ((raw & np.uint32(mask)).astype(np.int64) + low).astype(dtype, copy=False)
    if _jit.HAVE_NUMBA:  # the same rejection in one compiled pass per chunk
        out = np.empty(count, dtype)
        ratio = (mask + 1) / (span + 1)
        filled, chunk = 0, max(64, int(count * ratio * 0.98))
        while filled < count:
            state = rng.get_state(legacy=False)
            raw = raw_uint32(rng, chunk)
            filled, used = _jit.masked_accept(raw, np.uint32(mask), np.uint32(span), low, out, filled)
            if filled == count and used < chunk:
                rng.set_state(state)
                raw_uint32(rng, used)
            chunk = max(64, int((count - filled) * ratio * 1.1))
        return out
    # Draw slightly fewer raw values than expected to be needed, then top up in small
    # chunks; only the last chunk may overshoot, and it is rewound and redrawn exactly.
    ratio = (mask + 1) / (span + 1)
    parts, missing = [], count
    chunk = max(64, int(count * ratio * 0.98))
    while missing:
        state = rng.get_state(legacy=False)
        raw = raw_uint32(rng, chunk) & np.uint32(mask)
        accepted = np.flatnonzero(raw <= span)
        if accepted.size >= missing:
            used = int(accepted[missing - 1]) + 1
            if used < chunk:
                rng.set_state(state)
                raw_uint32(rng, used)
            parts.append(raw[accepted[:missing]])
            break
        parts.append(raw[accepted])
        missing -= accepted.size
        chunk = max(64, int(missing * ratio * 1.1))
    return np.concatenate(parts).astype(np.int64) + low


@functools.lru_cache(maxsize=256)
def _zoom_axis(n_in: int, zoom_factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear-interpolation taps of ``scipy.ndimage.zoom(order=1)`` along one axis of
    length ``n_in``: (first index, second index, weight of the second, outputs that scipy
    sets to cval 0), one entry per output.

    scipy's rule: ``n_out = round(n_in * z)``, output k samples ``k * (n_in - 1) / (n_out - 1)``
    (a coordinate that rounds past ``n_in - 1`` is outside in 'constant' mode: 0).
    tests/test_corruptions.py checks these taps against scipy zooming the identity.
    """
    n_out = int(round(n_in * zoom_factor))
    ratio = (n_in - 1) / (n_out - 1) if n_out > 1 else 1.0
    coords = np.arange(n_out, dtype=np.float64) * ratio
    first = np.floor(coords)
    weight = 1.0 - (1.0 - (coords - first))  # scipy's rounding of the second tap's weight
    first = first.astype(np.intp)
    outside = np.flatnonzero(coords > n_in - 1)
    first = np.minimum(first, n_in - 1)
    second = np.minimum(first + 1, n_in - 1)
    weight = np.where(second != first, weight, 0.0)
    return first, second, weight, outside


def _zoom_axis_scipy(n_in: int, zoom_factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_zoom_axis` read off scipy by zooming the identity (O(n^2) memory; tests)."""
    m = ndimage.zoom(np.eye(n_in), (zoom_factor, 1.0), order=1)
    nonzero = m != 0
    first = np.argmax(nonzero, axis=1)
    second = np.minimum(first + 1, n_in - 1)
    rows = np.arange(m.shape[0])
    weight = np.where(second != first, m[rows, second], 0.0)
    zero = np.flatnonzero(~nonzero.any(1))
    first[zero], weight[zero] = n_in - 1, 0.0
    second = np.minimum(first + 1, n_in - 1)
    return first, second, weight, zero


def zoom_linear(x: np.ndarray, zoom_factor: float, out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """``scipy.ndimage.zoom(x, (z, z, 1), order=1)`` (optionally only its top-left
    ``out_shape``) as two separable lerps ``a + w * (b - a)`` in ``x``'s dtype.

    Flat regions come out exact, as in scipy; elsewhere float32 results differ from scipy's
    (double arithmetic rounded to float32) by a few units in the last place.
    """
    r0, r1, wr, zero_rows = _zoom_axis(x.shape[0], zoom_factor)
    c0, c1, wc, zero_cols = _zoom_axis(x.shape[1], zoom_factor)
    if out_shape is not None:
        r0, r1, wr = r0[:out_shape[0]], r1[:out_shape[0]], wr[:out_shape[0]]
        c0, c1, wc = c0[:out_shape[1]], c1[:out_shape[1]], wc[:out_shape[1]]
        zero_rows, zero_cols = zero_rows[zero_rows < out_shape[0]], zero_cols[zero_cols < out_shape[1]]
    wr = wr.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    wc = wc.astype(x.dtype).reshape((1, -1) + (1,) * (x.ndim - 2))
    # Columns first (on the fewer rows of the input), gathering whole pixels as opaque
    # items (much faster than a strided gather of C floats), then rows.
    left, cols = _take_columns(x, c0), _take_columns(x, c1)
    cols -= left
    cols *= wc
    cols += left
    top = cols[r0]
    out = cols[r1]
    out -= top
    out *= wr
    out += top
    out[zero_rows] = 0
    out[:, zero_cols] = 0
    return out


def _take_columns(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``x[:, index]`` for a C-contiguous H x W (x C) array, copying pixels as void items."""
    x = np.ascontiguousarray(x)
    item = x.dtype.itemsize * (x.shape[2] if x.ndim == 3 else 1)
    pixels = x.view(np.dtype((np.void, item))).reshape(x.shape[0], x.shape[1])
    return np.take(pixels, index, axis=1).view(x.dtype).reshape((x.shape[0], len(index)) + x.shape[2:])


def clipped_zoom_fast(x: np.ndarray, zoom_factor: float, out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """:func:`clipped_zoom` computed with :func:`zoom_linear`."""
    ch0 = int(np.ceil(x.shape[0] / float(zoom_factor)))
    top0 = (x.shape[0] - ch0) // 2
    ch1 = int(np.ceil(x.shape[1] / float(zoom_factor)))
    top1 = (x.shape[1] - ch1) // 2
    return zoom_linear(x[top0:top0 + ch0, top1:top1 + ch1], zoom_factor, out_shape)


#: Work size of the banded loops (bytes of one band of float rows): fits in L2 cache.
BAND_BYTES = 1 << 18

#: uint8 value -> value / 255 as float32 (the reference's ``(x / 255.).astype(np.float32)``)
UNIT_FLOAT32 = (np.arange(256) / 255.0).astype(np.float32)


def row_bands(image: np.ndarray, budget: int = BAND_BYTES) -> list[slice]:
    """Row slices of about ``budget`` float64 bytes (element-wise work stays in cache)."""
    band = max(1, budget // (8 * image[0].size))
    return [slice(top, top + band) for top in range(0, image.shape[0], band)]


def add_clipped_zoom(accumulate: np.ndarray, x: np.ndarray, zoom_factor: float) -> None:
    """``accumulate += clipped_zoom(x, z)[:h, :w]`` (h x w = ``accumulate``'s size), same
    arithmetic as :func:`zoom_linear`, computed in bands of output rows so that each
    band's source rows, column lerp and row lerp stay in cache."""
    ch0 = int(np.ceil(x.shape[0] / float(zoom_factor)))
    top0 = (x.shape[0] - ch0) // 2
    ch1 = int(np.ceil(x.shape[1] / float(zoom_factor)))
    top1 = (x.shape[1] - ch1) // 2
    height, width = accumulate.shape[:2]
    if zoom_factor == 1.0 and (ch0, ch1) == (height, width):  # identity (every list starts at 1)
        accumulate += x
        return
    r0, r1, wr, zero_rows = _zoom_axis(ch0, zoom_factor)
    c0, c1, wc, zero_cols = _zoom_axis(ch1, zoom_factor)
    r0, r1, wr = r0[:height] + top0, r1[:height] + top0, wr[:height].astype(x.dtype)[:, None, None]
    c0, c1 = c0[:width] + top1, c1[:width] + top1
    wc = wc[:width].astype(x.dtype)[None, :, None]
    zero_rows, zero_cols = zero_rows[zero_rows < height], zero_cols[zero_cols < width]
    pixels = np.ascontiguousarray(x)
    band = max(1, BAND_BYTES // max(1, accumulate[0].nbytes))
    for start in range(0, height, band):
        stop = min(start + band, height)
        lo, hi = int(r0[start]), int(r1[stop - 1]) + 1
        left = _take_columns(pixels[lo:hi], c0)
        cols = _take_columns(pixels[lo:hi], c1)
        cols -= left
        cols *= wc
        cols += left
        top = cols[r0[start:stop] - lo]
        rows = cols[r1[start:stop] - lo]
        rows -= top
        rows *= wr[start:stop]
        rows += top
        rows[zero_rows[(zero_rows >= start) & (zero_rows < stop)] - start] = 0
        rows[:, zero_cols] = 0
        accumulate[start:stop] += rows


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


def motion_blur_exact(x: np.ndarray, taps, use_jit: bool = True) -> np.ndarray:
    """Sum of edge-replicated shifts ``sum_i k_i * shift(x, dx_i, dy_i)`` in float64, in the
    reference's order (bit-identical to its ``_motion_blur``); ``x`` is H x W or H x W x C.
    With numba the same sum runs compiled (:func:`._jit.shift_sum`)."""
    if not taps:
        return np.zeros(x.shape, np.float64)
    pad_y = max(abs(dy) for _, dy, _ in taps)
    pad_x = max(abs(dx) for _, _, dx in taps)
    pad = [(pad_y, pad_y), (pad_x, pad_x)] + [(0, 0)] * (x.ndim - 2)
    padded = np.pad(x, pad, mode="edge")
    height, width = x.shape[:2]
    acc = np.zeros(x.shape, np.float64)
    if use_jit and _jit.HAVE_NUMBA:
        weights = np.array([w for w, _, _ in taps], np.float64)
        dys = np.array([dy for _, dy, _ in taps], np.int64)
        dxs = np.array([dx for _, _, dx in taps], np.int64)
        channels = x.shape[2] if x.ndim == 3 else 1
        band = max(1, BAND_BYTES // max(1, acc[0].nbytes))
        _jit.shift_sum(padded.reshape(padded.shape[0], -1), weights, dys, dxs, pad_y, pad_x, channels,
                       acc.reshape(height, -1), band)
        return acc
    # Row bands small enough to stay in cache; per band the taps are summed in the
    # reference's order, so every value is the same sequence of float64 operations.
    band = max(1, BAND_BYTES // max(1, acc[0].nbytes))
    tmp = np.empty((band,) + x.shape[1:], np.float64)
    for top in range(0, height, band):
        rows = min(band, height - top)
        out = acc[top:top + rows]
        scratch = tmp[:rows]
        for weight, dy, dx in taps:
            # shift(x, dx, dy)[i, j] = x[clamp(i - dy), clamp(j - dx)]
            view = padded[pad_y - dy + top:pad_y - dy + top + rows, pad_x - dx:pad_x - dx + width]
            np.multiply(view, weight, out=scratch)
            out += scratch
    return acc
