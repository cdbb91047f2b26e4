"""scikit-image's RGB <-> HSV formulas (same float64 operations), and a per-colour map.

``rgb_to_hsv`` / ``hsv_to_rgb`` reproduce ``skimage.color.rgb2hsv`` / ``hsv2rgb`` operation by
operation on an N x 3 float64 array, so results are bit-identical. Because both are
per-pixel, corruptions built on them (brightness, saturate) are evaluated once per distinct
colour of the image (``map_unique_colors``): natural images have far fewer colours than
pixels.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def rgb_to_hsv(arr: np.ndarray) -> np.ndarray:
    """N x 3 RGB float64 in [0, 1] -> N x 3 HSV (scikit-image's formulas and overrides:
    where channels tie for the maximum, blue's hue formula wins over green's over red's)."""
    r, g, b = arr[:, 0], arr[:, 1], arr[:, 2]
    out_v = np.maximum(np.maximum(r, g), b)  # == arr.max(-1), without a slow short-axis reduce
    delta = out_v - np.minimum(np.minimum(r, g), b)  # == np.ptp(arr, axis=-1)
    flat = delta == 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out_s = delta / out_v
        hue = np.where(
            b == out_v, 4.0 + (r - g) / delta,
            np.where(g == out_v, 2.0 + (b - r) / delta, (g - b) / delta),
        )
        out_h = (hue / 6.0) % 1.0
    out_s[flat] = 0.0
    out_h[flat] = 0.0
    out = np.stack([out_h, out_s, out_v], axis=1)
    out[np.isnan(out)] = 0
    return out


def hsv_to_rgb(arr: np.ndarray) -> np.ndarray:
    """N x 3 HSV float64 -> N x 3 RGB (scikit-image's formulas)."""
    h, s, v = arr[:, 0], arr[:, 1], arr[:, 2]
    hi = np.floor(h * 6)
    f = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    sector = hi.astype(np.uint8) % 6
    return np.stack(
        [
            np.choose(sector, (v, q, p, p, t, v)),
            np.choose(sector, (t, v, v, q, p, p)),
            np.choose(sector, (p, p, t, v, v, q)),
        ],
        axis=1,
    )


def map_unique_colors(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a per-pixel colour map ``fn`` (N x 3 uint8 -> N x 3 uint8) to an H x W x 3
    uint8 image by evaluating it once per distinct colour."""
    codes = (
        (image[..., 0].astype(np.int32) << 16) | (image[..., 1].astype(np.int32) << 8) | image[..., 2]
    ).ravel()
    unique, inverse = _unique_24bit(codes)
    colors = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1).astype(np.uint8)
    return fn(colors)[inverse].reshape(image.shape)


def _unique_24bit(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(codes, return_inverse=True)`` for int codes < 2**24, via two stable
    radix argsorts (16 low bits, then 8 high bits): about twice as fast."""
    order = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    order = order[np.argsort((codes >> 16).astype(np.uint8)[order], kind="stable")]
    ordered = codes[order]
    starts = np.empty(ordered.size, bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    inverse = np.empty(ordered.size, np.intp)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse
