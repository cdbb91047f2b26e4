"""Optional numba kernels (private): the same float operations as the numpy paths, fused.

Each kernel performs, per value, exactly the IEEE operations of the numpy implementation
it replaces (no fastmath, so no reassociation or fused multiply-add), in the same order,
and so returns the same bits; tests/test_corruptions.py compares every kernel with its
numpy path. They are used when numba is importable (it is in the ``dev`` extra and is a
dependency of the reference imagecorruptions-imaug); without numba the numpy paths run,
with the same results, 2-6x slower on these corruptions. Kernels are compiled on first
use and cached on disk (``cache=True``).
"""
from __future__ import annotations

import numpy as np

try:  # pragma: no cover - depends on the environment
    import numba
except ImportError:  # pragma: no cover
    numba = None

HAVE_NUMBA = numba is not None


def _jit(fn):
    return numba.njit(cache=True, nogil=True)(fn) if HAVE_NUMBA else None


def _column_lerp_py(x, row, c0, c1, wc, zc, buf):
    channels = x.shape[2]
    for j in range(c0.shape[0]):
        p, q, w = c0[j], c1[j], wc[j]
        for c in range(channels):
            if zc[j]:
                buf[j * channels + c] = 0.0
            else:
                left = x[row, p, c]
                buf[j * channels + c] = (x[row, q, c] - left) * w + left


_column_lerp = _jit(_column_lerp_py)


def _hsv_adjust_pixels(image, s_scale, s_offset, v_offset, out):
    """scikit-image rgb2hsv; S -> clip(S * s_scale + s_offset, 0, 1) and
    V -> clip(V + v_offset, 0, 1); hsv2rgb; ``uint8(clip(.) * 255)``, per pixel of an
    H x W x 3 uint8 image (the float64 operations of ``_color``). brightness passes
    (1, 0, c) and saturate (c0, c1, 0): S * 1 + 0 and V + 0 are exact, so each gets
    exactly its own operations."""
    height, width = image.shape[:2]
    for i in range(height):
        for j in range(width):
            r = image[i, j, 0] / 255.0
            g = image[i, j, 1] / 255.0
            b = image[i, j, 2] / 255.0
            v = max(max(r, g), b)
            delta = v - min(min(r, g), b)
            if delta == 0.0:
                s = 0.0
                h = 0.0
            else:
                s = delta / v
                if b == v:
                    hue = 4.0 + (r - g) / delta
                elif g == v:
                    hue = 2.0 + (b - r) / delta
                else:
                    hue = (g - b) / delta
                h = (hue / 6.0) % 1.0
            s = min(max(s * s_scale + s_offset, 0.0), 1.0)
            v = v + v_offset
            v = min(max(v, 0.0), 1.0)
            hi = np.floor(h * 6)
            f = h * 6 - hi
            p = v * (1 - s)
            q = v * (1 - f * s)
            t = v * (1 - (1 - f) * s)
            sector = int(hi) % 6
            if sector == 0:
                rr, gg, bb = v, t, p
            elif sector == 1:
                rr, gg, bb = q, v, p
            elif sector == 2:
                rr, gg, bb = p, v, t
            elif sector == 3:
                rr, gg, bb = p, q, v
            elif sector == 4:
                rr, gg, bb = t, p, v
            else:
                rr, gg, bb = v, p, q
            out[i, j, 0] = np.uint8(min(max(rr, 0.0), 1.0) * 255)
            out[i, j, 1] = np.uint8(min(max(gg, 0.0), 1.0) * 255)
            out[i, j, 2] = np.uint8(min(max(bb, 0.0), 1.0) * 255)


hsv_adjust_pixels = _jit(_hsv_adjust_pixels)


def _reflect(p, n):
    """OpenCV's BORDER_REFLECT index (``fedcba|abcdef|fedcba``), any distance."""
    if n == 1:
        return 0
    while p < 0 or p >= n:
        if p < 0:
            p = -p - 1
        else:
            p = n - 1 - (p - n)
    return p


_reflect_jit = _jit(_reflect)


def _glass_copy_loop(x, draws, max_delta):
    """The reference's shuffle loop (``x[h, w] = x[h + dy, w + dx]`` per visit, rows from
    H - d down to d + 1, columns likewise), draws[it, visit] = (dx, dy)."""
    height, width, channels = x.shape
    d = max_delta
    for it in range(draws.shape[0]):
        n = 0
        for h in range(height - d, d, -1):
            for w in range(width - d, d, -1):
                dx = draws[it, n, 0]
                dy = draws[it, n, 1]
                n += 1
                for c in range(channels):
                    x[h, w, c] = x[h + dy, w + dx, c]


glass_copy_loop = _jit(_glass_copy_loop)


def _snow_blend(x, grey, layer, blend, keep, out):
    """The reference's snow composition per value: float32
    ``blend * x + (1 - blend) * max(x, grey * 1.5 + 0.5)``, then in float64 ``+ layer +
    rot180(layer)``, ``uint8(clip(., 0, 1) * 255)``; ``blend``/``keep`` are the float32
    weights, ``layer`` H x W float64 (already cropped)."""
    height, width, channels = x.shape
    for i in range(height):
        for j in range(width):
            lighter = grey[i, j] * np.float32(1.5) + np.float32(0.5)
            flakes = layer[i, j]
            flipped = layer[height - 1 - i, width - 1 - j]
            for c in range(channels):
                value = x[i, j, c]
                total = np.float64(blend * value + keep * max(value, lighter)) + flakes
                total += flipped
                out[i, j, c] = np.uint8(min(max(total, 0.0), 1.0) * 255)


snow_blend = _jit(_snow_blend)




def _glass_copy_loop_raw(x, raw, mask, low, max_delta):
    """:func:`_glass_copy_loop` drawing (dx, dy) as ``(raw & mask) + low`` straight from
    consecutive raw 32-bit outputs (legacy randint when its span is a power of two minus
    one, so no value is rejected)."""
    height, width, channels = x.shape
    d = max_delta
    n = 0
    while n < raw.shape[0]:
        for h in range(height - d, d, -1):
            for w in range(width - d, d, -1):
                dx = np.int64(raw[n] & mask) + low
                dy = np.int64(raw[n + 1] & mask) + low
                n += 2
                for c in range(channels):
                    x[h, w, c] = x[h + dy, w + dx, c]


glass_copy_loop_raw = _jit(_glass_copy_loop_raw)


def _plasma_step(maparray, step, wibble, noise_centre, noise_top, noise_left):
    """One diamond-square step of the reference's ``plasma_fractal`` on the float32 map:
    its rolled float32 sums and float64 ``noise * wibble + sum / 4`` (stored as float32)
    for the centres, then the top and left edge midpoints; noise_* are the three
    ``rng.uniform(-wibble, wibble, (m, m))`` fields in draw order."""
    size = maparray.shape[0]
    half = step // 2
    m = size // step
    for i in range(m):
        i1 = (i + 1) % m
        for j in range(m):
            j1 = (j + 1) % m
            left = maparray[i * step, j * step] + maparray[i1 * step, j * step]
            right = maparray[i * step, j1 * step] + maparray[i1 * step, j1 * step]
            total = left + right
            maparray[half + i * step, half + j * step] = np.float32(
                noise_centre[i, j] * wibble + np.float64(total / np.float32(4)))
    for i in range(m):
        i_up = (i - 1) % m
        i1 = (i + 1) % m
        for j in range(m):
            j1 = (j + 1) % m
            j_left = (j - 1) % m
            centre = maparray[half + i * step, half + j * step]
            corner = maparray[i * step, j * step]
            ldrsum = centre + maparray[half + i_up * step, half + j * step]
            lulsum = corner + maparray[i * step, j1 * step]
            total = ldrsum + lulsum
            maparray[i * step, half + j * step] = np.float32(
                noise_top[i, j] * wibble + np.float64(total / np.float32(4)))
            tdrsum = centre + maparray[half + i * step, half + j_left * step]
            tulsum = corner + maparray[i1 * step, j * step]
            total = tdrsum + tulsum
            maparray[half + i * step, j * step] = np.float32(
                noise_left[i, j] * wibble + np.float64(total / np.float32(4)))


plasma_step = _jit(_plasma_step)


def _zoom_blur_rows(x, r0, r1, wr, zr, c0, c1, wc, zc, out):
    """The whole zoom_blur, row by row, as robustpose's numpy path computes it: for output
    row i, the float32 sum over layers (in order, from 0) of each layer's bilinear value
    (column lerp ``(b - a) * w + a`` of two source rows, then the row lerp of the two;
    zeroed rows/columns contribute 0: a zeroed column's lerped rows are 0 and
    (0 - 0) * w + 0 is 0), then the reference's finish
    ``uint8(clip((x + sum) / (layers + 1), 0, 1) * 255)`` in float32. Each layer keeps its
    two most recent column-lerped source rows, so every source row is lerped once."""
    layers, height = r0.shape
    width = c0.shape[1]
    channels = x.shape[2]
    row_len = width * channels
    cache = np.empty((layers, 2, row_len), np.float32)
    held = np.full((layers, 2), -1, np.int64)
    acc = np.empty(row_len, np.float32)
    count = np.float32(layers + 1)
    for i in range(height):
        acc[:] = 0
        for k in range(layers):
            if zr[k, i]:
                continue
            a, b = r0[k, i], r1[k, i]
            slot_a = 0 if held[k, 0] == a else (1 if held[k, 1] == a else -1)
            slot_b = 0 if held[k, 0] == b else (1 if held[k, 1] == b else -1)
            if slot_a < 0:
                slot_a = 1 if slot_b == 0 else 0
                _column_lerp(x, a, c0[k], c1[k], wc[k], zc[k], cache[k, slot_a])
                held[k, slot_a] = a
            if slot_b < 0:
                slot_b = 1 - slot_a
                _column_lerp(x, b, c0[k], c1[k], wc[k], zc[k], cache[k, slot_b])
                held[k, slot_b] = b
            top = cache[k, slot_a]
            bottom = cache[k, slot_b]
            w_row = wr[k, i]
            for n in range(row_len):
                acc[n] += (bottom[n] - top[n]) * w_row + top[n]
        source = x[i].reshape(row_len)
        target = out[i].reshape(row_len)
        for n in range(row_len):
            value = (acc[n] + source[n]) / count
            value = min(max(value, np.float32(0)), np.float32(1)) * np.float32(255)
            target[n] = np.uint8(value)


zoom_blur_rows = _jit(_zoom_blur_rows)


def _shift_sum(padded, weights, dys, dxs, pad_y, pad_x, channels, out, band):
    """:func:`._kernels.motion_blur_exact` fused: ``out`` (H x W*C float64, zeros) +=
    ``weight * float64(value)`` of each tap's shifted rows, taps in order, band of rows by
    band of rows (each value gets the same float64 operations in the same order).
    ``padded`` is the edge-padded input reshaped to (H + 2 pad_y) x (W + 2 pad_x)*C."""
    height, row_len = out.shape
    for top in range(0, height, band):
        stop = min(top + band, height)
        for t in range(weights.shape[0]):
            w = weights[t]
            start = (pad_x - dxs[t]) * channels
            for i in range(top, stop):
                src = padded[pad_y - dys[t] + i, start:start + row_len]
                acc = out[i]
                for n in range(row_len):
                    acc[n] += w * np.float64(src[n])


shift_sum = _jit(_shift_sum)


def _masked_accept(raw, mask, span, low, out, filled):
    """numpy's legacy masked rejection on a raw 32-bit stream: ``out[filled:]`` takes
    ``(r & mask) + low`` of each ``r`` with ``r & mask <= span``, in order, until full.
    Returns (filled, raw values consumed)."""
    for i in range(raw.shape[0]):
        value = raw[i] & mask
        if value <= span:
            out[filled] = np.int64(value) + low
            filled += 1
            if filled == out.shape[0]:
                return filled, i + 1
    return filled, raw.shape[0]


masked_accept = _jit(_masked_accept)


def _elastic_warp_u8(image, unit, dx, dy, out):
    """elastic_transform's warp and finish fused: :func:`_bilinear_reflect` at rows
    ``i + dy[i, j]``, cols ``j + dx[i, j]`` (float64 sums of the float32 fields), corners and
    weights computed in place, the uint8 image read through ``unit`` (the float32 values
    ``float32(v) / 255``), output ``uint8(clip(value, 0, 1) * 255)`` in float32."""
    height, width = dx.shape
    rows, cols, channels = image.shape
    for i in range(height):
        for j in range(width):
            r = np.float64(i) + np.float64(dy[i, j])
            q = np.float64(j) + np.float64(dx[i, j])
            r_floor = np.floor(r)
            c_floor = np.floor(q)
            w_row = np.float32(r - r_floor)
            w_col = np.float32(q - c_floor)
            r0 = int(r_floor)
            c0 = int(c_floor)
            ra = _reflect_jit(r0, rows)
            rb = _reflect_jit(r0 + 1, rows)
            ca = _reflect_jit(c0, cols)
            cb = _reflect_jit(c0 + 1, cols)
            for c in range(channels):
                top = unit[image[ra, ca, c]]
                top = top + (unit[image[ra, cb, c]] - top) * w_col
                bottom = unit[image[rb, ca, c]]
                bottom = bottom + (unit[image[rb, cb, c]] - bottom) * w_col
                value = top + (bottom - top) * w_row
                out[i, j, c] = np.uint8(min(max(value, np.float32(0)), np.float32(1)) * np.float32(255))


elastic_warp_u8 = _jit(_elastic_warp_u8)


def _fog_blend_raw(image, maparray, strength32, max_val, strength, out):
    """fog's finish from the raw (unnormalised) plasma map: the reference's float32
    ``plasma = strength * ((m - m.min()) / (m - m.min()).max())`` on the image's top-left
    crop, then per value in float64
    ``uint8(clip((x / 255 + plasma) * max_val / (max_val + strength), 0, 1) * 255)``.
    ``(m - min).max()`` is ``max(m) - min`` rounded once (subtracting a constant is
    monotonic in floating point)."""
    lowest = maparray[0, 0]
    highest = maparray[0, 0]
    for i in range(maparray.shape[0]):
        for j in range(maparray.shape[1]):
            v = maparray[i, j]
            lowest = min(lowest, v)
            highest = max(highest, v)
    top = highest - lowest
    height, width, channels = image.shape
    denominator = max_val + strength
    for i in range(height):
        for j in range(width):
            p = np.float64(strength32 * ((maparray[i, j] - lowest) / top))
            for c in range(channels):
                value = (image[i, j, c] / 255.0 + p) * max_val / denominator
                out[i, j, c] = np.uint8(min(max(value, 0.0), 1.0) * 255)


fog_blend_raw = _jit(_fog_blend_raw)


def _unit_to_uint8(values, out, clip):
    """``uint8(clip(v, 0, 1) * 255)`` (or ``uint8(v * 255)`` without ``clip``) of float64
    values, both arrays flat."""
    for n in range(values.shape[0]):
        v = values[n]
        if clip:
            v = min(max(v, 0.0), 1.0)
        out[n] = np.uint8(v * 255)


unit_to_uint8 = _jit(_unit_to_uint8)


def _channel_lookup(image, table, out):
    """``out[i, j, c] = table[image[i, j, c], c]`` (per-channel 256-entry tables)."""
    height, width, channels = image.shape
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                out[i, j, c] = table[image[i, j, c], c]


channel_lookup = _jit(_channel_lookup)


def _pair_lookup_bgr(image, texture, table, out):
    """``out[i, j, c] = table[image[i, j, c], texture[i, j, 2 - c]]`` (BGR texture)."""
    height, width, channels = image.shape
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                out[i, j, c] = table[image[i, j, c], texture[i, j, channels - 1 - c]]


pair_lookup_bgr = _jit(_pair_lookup_bgr)
