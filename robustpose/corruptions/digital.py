"""Digital family: contrast, elastic transform, pixelate, JPEG, and saturate (validation)."""
from __future__ import annotations

from io import BytesIO

import cv2
import numpy as np
from PIL import Image

from . import _jit, _mt19937
from ._color import hsv_to_rgb, map_unique_colors, rgb_to_hsv
from ._kernels import UNIT_FLOAT32, sk_gaussian
from .params import ELASTIC_MAX_SHIFT_FRACTION, ELASTIC_SIGMA_FRACTION, SEVERITY_PARAMS
from .registry import register, to_uint8


@register("contrast", deterministic=True)
def contrast(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """(x - mean) * c + mean, per channel means over the image."""
    factor = SEVERITY_PARAMS["contrast"][severity - 1]
    x = image / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    # Per channel the result depends only on the value: evaluate it on a 256-entry table.
    levels = (np.arange(256) / 255.0)[:, None]
    table = to_uint8(np.clip((levels - means[0]) * factor + means[0], 0, 1) * 255)
    if _jit.HAVE_NUMBA:
        out = np.empty_like(image)
        _jit.channel_lookup(image, np.ascontiguousarray(table), out)
        return out
    return np.stack([table[image[..., ch], ch] for ch in range(3)], axis=2)


@register("saturate", deterministic=True)
def saturate(image: np.ndarray, severity: int, rng: np.random.RandomState, use_jit: bool = True) -> np.ndarray:
    """HSV saturation * c0 + c1 (clipped), per pixel with numba, else per colour (same
    float64 operations either way)."""
    scale, offset = SEVERITY_PARAMS["saturate"][severity - 1]
    if use_jit and _jit.HAVE_NUMBA:
        out = np.empty_like(image)
        _jit.hsv_adjust_pixels(image, float(scale), float(offset), 0.0, out)
        return out

    def saturate_colors(rgb: np.ndarray) -> np.ndarray:
        hsv = rgb_to_hsv(rgb / 255.0)
        hsv[:, 1] = np.clip(hsv[:, 1] * scale + offset, 0, 1)
        return to_uint8(np.clip(hsv_to_rgb(hsv), 0, 1) * 255)

    return map_unique_colors(image, saturate_colors)


@register("jpeg_compression", deterministic=True)
def jpeg_compression(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Pillow JPEG round trip at quality c: encoded by Pillow as the reference; decoded by
    OpenCV straight to RGB when it can (the same libjpeg-turbo decode, the same pixels,
    tested against the reference, without Pillow's array conversion)."""
    quality = SEVERITY_PARAMS["jpeg_compression"][severity - 1]
    buffer = BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    if _IMREAD_RGB is not None:
        decoded = cv2.imdecode(np.frombuffer(buffer.getbuffer(), np.uint8), _IMREAD_RGB)
        if decoded is not None and decoded.shape == image.shape:
            return decoded
    return np.uint8(Image.open(buffer))  # in-memory buffer: nothing to close


_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10


@register("pixelate", deterministic=True)
def pixelate(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Pillow BOX downscale by c, NEAREST upscale back."""
    factor = SEVERITY_PARAMS["pixelate"][severity - 1]
    height, width = image.shape[:2]
    small = Image.fromarray(image).resize((int(width * factor), int(height * factor)), Image.BOX)
    return np.array(small.resize((width, height), Image.NEAREST), dtype=np.uint8)


@register("elastic_transform")
def elastic_transform(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Bilinear warp by a smoothed uniform displacement field (alpha px scale)."""
    alpha = SEVERITY_PARAMS["elastic_transform"][severity - 1]
    shape = image.shape
    sigma = np.array(shape[:2]) * ELASTIC_SIGMA_FRACTION
    max_dx = shape[0] * ELASTIC_MAX_SHIFT_FRACTION
    max_dy = shape[0] * ELASTIC_MAX_SHIFT_FRACTION
    field_x = _mt19937.uniform(rng, -max_dx, max_dx, shape[:2])  # == rng.uniform(...)
    field_y = _mt19937.uniform(rng, -max_dy, max_dy, shape[:2])
    dx = (sk_gaussian(field_x, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dy = (sk_gaussian(field_y, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    if _jit.HAVE_NUMBA:  # coordinates, corners, weights and the finish inside the fused warp
        out = np.empty_like(image)
        _jit.elastic_warp_u8(image, UNIT_FLOAT32, dx, dy, out)
        return out
    x = np.array(image, dtype=np.float32) / 255.0
    rows = np.arange(shape[0], dtype=np.float64)[:, None] + dy
    cols = np.arange(shape[1], dtype=np.float64)[None, :] + dx
    warped = bilinear_reflect(x, rows, cols)
    np.clip(warped, 0, 1, out=warped)
    warped *= 255
    return to_uint8(warped)


#: ``np.array(v, dtype=np.float32) / 255.0`` for every byte v (the reference's float32 input).


def bilinear_reflect(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.map_coordinates(order=1, mode='reflect')`` of an H x W x C float32
    image at float64 coordinates (rows, cols) of shape h x w, sampled for every channel.

    The four neighbours are gathered with OpenCV's nearest-neighbour remap (whose
    BORDER_REFLECT is scipy's half-sample 'reflect') and blended as two lerps in float32:
    flat neighbourhoods come out exact as in scipy, elsewhere the result differs from
    scipy's (double arithmetic rounded to float32) by a few units in the last place.
    (numpy path; with numba elastic_transform runs :func:`._jit.elastic_warp_u8`.)
    """
    r0 = np.floor(rows)
    c0 = np.floor(cols)
    wr = (rows - r0).astype(np.float32)[..., None]
    wc = (cols - c0).astype(np.float32)[..., None]
    corner = np.empty(rows.shape + (2,), np.int16)  # (x, y) integer map for cv2.remap
    corner[..., 0] = c0
    corner[..., 1] = r0

    def gather(dx: int, dy: int) -> np.ndarray:
        maps = corner if dx == dy == 0 else corner + np.array([dx, dy], np.int16)
        out = cv2.remap(image, maps, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
        return out.reshape(rows.shape + (image.shape[2],))

    top = gather(0, 0)
    top_right = gather(1, 0)
    top_right -= top
    top_right *= wc
    top += top_right
    bottom = gather(0, 1)
    bottom_right = gather(1, 1)
    bottom_right -= bottom
    bottom_right *= wc
    bottom += bottom_right
    bottom -= top
    bottom *= wr
    bottom += top
    return bottom
