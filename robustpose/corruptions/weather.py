"""Weather family: snow, frost, fog, brightness, and spatter (validation)."""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
from pathlib import Path

import cv2
import numpy as np

from . import _jit, _mt19937
from ._color import map_unique_colors, rgb_to_hsv, hsv_to_rgb
from ._kernels import clipped_zoom_fast, motion_blur_exact, motion_kernel, row_bands, sk_gaussian
from .params import FROST_FILES, SEVERITY_PARAMS, SPATTER_MUD_RGB, SPATTER_WATER_BGR
from .registry import register, to_uint8

# ---------------------------------------------------------------- frost textures


def _frost_path(name: str) -> Path:
    """Bundled texture, else the copy inside an installed imagecorruptions wheel."""
    bundled = importlib.resources.files("robustpose") / "assets" / "frost" / name
    if bundled.is_file():
        return Path(str(bundled))
    for dist in ("imagecorruptions-imaug", "imagecorruptions"):
        try:
            candidate = Path(str(importlib.metadata.distribution(dist).locate_file(f"imagecorruptions/frost/{name}")))
        except importlib.metadata.PackageNotFoundError:
            continue
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"frost texture {name} not found in robustpose/assets/frost: reinstall robustpose "
        f"(it ships the ImageNet-C textures) or `pip install --no-deps imagecorruptions-imaug`"
    )


@functools.lru_cache(maxsize=len(FROST_FILES))
def frost_texture(index: int) -> np.ndarray:
    """Frost texture ``index`` (0..5) as read by ``cv2.imread`` (BGR uint8), read-only."""
    path = _frost_path(FROST_FILES[index])
    texture = cv2.imread(str(path))
    if texture is None:
        raise ValueError(f"cannot decode frost texture {path}")
    texture.setflags(write=False)
    return texture


@functools.lru_cache(maxsize=16)
def _frost_rescaled(index: int, height: int, width: int) -> np.ndarray:
    """The reference's rescale of texture ``index`` for an image of height x width."""
    frost = frost_texture(index)
    fh, fw = frost.shape[:2]
    if fh >= height and fw >= width:
        scaling = 1
    elif fh < height and fw >= width:
        scaling = height / fh
    elif fh >= height and fw < width:
        scaling = width / fw
    else:
        scaling = np.maximum(height / fh, width / fw)
    scaling *= 1.1
    new_shape = (int(np.ceil(fw * scaling)), int(np.ceil(fh * scaling)))
    out = cv2.resize(frost, dsize=new_shape, interpolation=cv2.INTER_CUBIC)
    out.setflags(write=False)
    return out


@register("frost")
def frost(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """c0 * x + c1 * frost, with a random texture (randint(6)) and a random crop."""
    image_weight, frost_weight = SEVERITY_PARAMS["frost"][severity - 1]
    height, width = image.shape[:2]
    index = rng.randint(6)
    rescaled = _frost_rescaled(index, height, width)
    top = rng.randint(0, rescaled.shape[0] - height)
    left = rng.randint(0, rescaled.shape[1] - width)
    # uint8(clip(c0 * x + c1 * f, 0, 255)) depends on the two bytes only: a 256 x 256 table.
    table = _frost_table(image_weight, frost_weight)
    if _jit.HAVE_NUMBA:  # the BGR crop read in place
        out = np.empty_like(image)
        _jit.pair_lookup_bgr(image, rescaled[top:top + height, left:left + width], table, out)
        return out
    crop = rescaled[top:top + height, left:left + width][..., [2, 1, 0]]
    return table[image, crop]


@functools.lru_cache(maxsize=8)
def _frost_table(image_weight: float, frost_weight: float) -> np.ndarray:
    """``uint8(clip(c0 * x + c1 * f, 0, 255))`` for every byte pair (x, f), read-only."""
    levels = np.arange(256)
    table = to_uint8(np.clip(image_weight * levels[:, None] + frost_weight * levels[None, :], 0, 255))
    table.setflags(write=False)
    return table


# ---------------------------------------------------------------- fog


def plasma_fractal(rng: np.random.RandomState, mapsize: int = 256, wibbledecay: float = 3,
                   use_jit: bool = True, normalize: bool = True) -> np.ndarray:
    """Diamond-square height map in [0, 1], float32 mapsize x mapsize (reference draws)."""
    assert mapsize & (mapsize - 1) == 0
    maparray = np.empty((mapsize, mapsize), dtype=np.float32)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100

    def wibbledmean(array):
        # array / 4 + wibble * U, in place (IEEE + and * commute: same values)
        noise = rng.uniform(-wibble, wibble, array.shape)
        noise *= wibble
        noise += array / 4
        return noise

    if use_jit and _jit.HAVE_NUMBA:  # same draws (three uniform fields per step), fused sums
        while stepsize >= 2:
            shape = (mapsize // stepsize, mapsize // stepsize)
            noises = [_mt19937.uniform(rng, -wibble, wibble, shape) for _ in range(3)]
            _jit.plasma_step(maparray, stepsize, float(wibble), *noises)
            stepsize //= 2
            wibble /= wibbledecay
    while stepsize >= 2:
        half = stepsize // 2
        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(squareaccum)
        drgrid = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ldrsum = drgrid + np.roll(drgrid, 1, axis=0)
        lulsum = ulgrid + np.roll(ulgrid, -1, axis=1)
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(ldrsum + lulsum)
        tdrsum = drgrid + np.roll(drgrid, 1, axis=1)
        tulsum = ulgrid + np.roll(ulgrid, -1, axis=0)
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(tdrsum + tulsum)
        stepsize //= 2
        wibble /= wibbledecay
    if not normalize:
        return maparray
    maparray -= maparray.min()
    return maparray / maparray.max()


def _next_power_of_2(x: int) -> int:
    return 1 if x == 0 else 2 ** (x - 1).bit_length()


@register("fog")
def fog(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Adds a plasma fractal (strength c0, roughness decay c1), then rescales."""
    strength, decay = SEVERITY_PARAMS["fog"][severity - 1]
    height, width = image.shape[:2]
    map_size = _next_power_of_2(int(max(image.shape)))
    max_val = image.max() / 255.0  # == (image / 255.).max()
    out = np.empty(image.shape, np.uint8)
    if _jit.HAVE_NUMBA:  # normalisation, crop, strength and blend fused (same operations)
        raw = plasma_fractal(rng, mapsize=map_size, wibbledecay=decay, normalize=False)
        _jit.fog_blend_raw(image, raw, np.float32(strength), float(max_val), float(strength), out)
        return out
    plasma = strength * plasma_fractal(rng, mapsize=map_size, wibbledecay=decay)[:height, :width]
    for rows in row_bands(image):  # the reference's float64 operations, band by band
        x = image[rows] / 255.0
        x += plasma[rows][..., np.newaxis]
        x = x * max_val / (max_val + strength)
        out[rows] = to_uint8(np.clip(x, 0, 1) * 255)
    return out


# ---------------------------------------------------------------- snow


@register("snow")
def snow(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Zoomed, thresholded, motion-blurred gaussian flakes over a greyed, brightened image."""
    loc, scale, zoom, threshold, radius, sigma, blend = SEVERITY_PARAMS["snow"][severity - 1]
    x = np.array(image, dtype=np.float32) / 255.0
    height, width = x.shape[:2]
    layer = _mt19937.normal(rng, loc, scale, x.shape[:2])  # == rng.normal(...)
    layer = clipped_zoom_fast(layer[..., np.newaxis], zoom)
    layer[layer < threshold] = 0
    layer = np.clip(layer.squeeze(), 0, 1)
    angle = rng.uniform(-135, -45)
    layer = motion_blur_exact(layer, motion_kernel(radius, sigma, angle, layer.shape[:2]))
    layer = np.round(layer * 255).astype(np.uint8) / 255.0
    layer = layer[:height, :width]
    flipped = np.rot90(layer, k=2)
    out = np.empty(image.shape, np.uint8)
    if _jit.HAVE_NUMBA:  # same operations, fused (grey from OpenCV as below)
        grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
        _jit.snow_blend(x, grey, np.ascontiguousarray(layer), np.float32(blend), np.float32(1 - blend), out)
        return out
    for rows in row_bands(image):  # the reference's float32 blend and float64 sum, band by band
        xb = x[rows]
        grey = cv2.cvtColor(xb, cv2.COLOR_RGB2GRAY)[..., np.newaxis]
        blended = blend * xb + (1 - blend) * np.maximum(xb, grey * 1.5 + 0.5)
        total = blended + layer[rows][..., np.newaxis]
        total += flipped[rows][..., np.newaxis]
        out[rows] = to_uint8(np.clip(total, 0, 1) * 255)
    return out


# ---------------------------------------------------------------- spatter


@register("spatter")
def spatter(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Water drops (severity 1-3) or mud (4-5) from a thresholded smoothed gaussian field."""
    loc, scale, sigma, threshold, intensity, mode = SEVERITY_PARAMS["spatter"][severity - 1]
    x = np.array(image, dtype=np.float32) / 255.0
    liquid = _mt19937.normal(rng, loc, scale, x.shape[:2])  # == rng.normal(...)
    liquid = sk_gaussian(liquid, sigma)
    liquid[liquid < threshold] = 0
    if mode == 0:
        liquid = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.filter2D(dist, cv2.CV_8U, ker)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        # The reference builds BGRA images (m = GRAY2BGRA(liquid * dist), divides each
        # channel by its maximum, multiplies by the colour, drops alpha). Channels 0-2 of m
        # are the same grey layer, so the same float32 operations on the grey layer and the
        # three colour constants give the same values without the 4-channel copies.
        m = liquid * dist
        with np.errstate(invalid="ignore", divide="ignore"):
            m /= m.max()
        m *= intensity
        color = np.array(SPATTER_WATER_BGR, dtype=np.float32)
        out = np.empty(image.shape, np.uint8)
        for rows in row_bands(image):
            out[rows] = to_uint8(np.clip(x[rows] + m[rows, :, np.newaxis] * color, 0, 1) * 255)
        return out
    m = np.where(liquid > threshold, 1, 0)
    m = sk_gaussian(m.astype(np.float32), intensity)
    m[m < 0.8] = 0
    # reference: color = concat(c * ones_like(uint8)) (float64), color *= m; x *= 1 - m;
    # clip(x + color): the same products and sums, band by band
    mud = np.array(SPATTER_MUD_RGB, dtype=np.float64)
    out = np.empty(image.shape, np.uint8)
    for rows in row_bands(image):
        mb = m[rows, :, np.newaxis]
        xb = x[rows] * (1 - mb)
        out[rows] = to_uint8(np.clip(xb + mud * mb, 0, 1) * 255)
    return out


# ---------------------------------------------------------------- brightness


@register("brightness", deterministic=True)
def brightness(image: np.ndarray, severity: int, rng: np.random.RandomState, use_jit: bool = True) -> np.ndarray:
    """HSV value + c (clipped), per pixel with numba, else per colour (scikit-image's HSV
    formulas, same float64 operations either way)."""
    offset = SEVERITY_PARAMS["brightness"][severity - 1]
    if use_jit and _jit.HAVE_NUMBA:
        out = np.empty_like(image)
        _jit.hsv_adjust_pixels(image, 1.0, 0.0, float(offset), out)
        return out

    def brighten(rgb: np.ndarray) -> np.ndarray:
        hsv = rgb_to_hsv(rgb / 255.0)
        hsv[:, 2] = np.clip(hsv[:, 2] + offset, 0, 1)
        return to_uint8(np.clip(hsv_to_rgb(hsv), 0, 1) * 255)

    return map_unique_colors(image, brighten)
