"""Torch building blocks of the batched corruptions (``batch.py``), device-agnostic.

Each helper mirrors one numpy/scipy/skimage/Pillow operation of imagecorruptions 1.1.2
closely enough that, fed the same numbers, it gives the same result up to float rounding:
tensors are N x C x H x W (or H x W for single maps) and float64 unless stated.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .._kernels import _gaussian_taps, motion_kernel
from ..blur import disk_kernel


# ----------------------------------------------------------------------------- padding

def symmetric_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Fold integer indices into ``0..size-1`` by half-sample symmetric reflection
    (scipy ``mode='reflect'``: d c b a | a b c d | d c b a)."""
    period = 2 * size
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - 1 - index, index)


def _pad_index(size: int, radius: int, mode: str, device: torch.device) -> torch.Tensor:
    idx = torch.arange(-radius, size + radius, device=device)
    if mode == "nearest":
        return idx.clamp(0, size - 1)
    if mode == "reflect":  # scipy reflect = symmetric
        return symmetric_index(idx, size)
    raise ValueError(f"unsupported padding mode {mode!r}")


def gaussian_kernel1d(sigma: float, truncate: float, dtype: torch.dtype,
                      device: torch.device) -> torch.Tensor:
    """scipy.ndimage's 1-D Gaussian: radius ``int(truncate * sigma + 0.5)``, normalised."""
    return torch.as_tensor(_gaussian_taps(float(sigma), float(truncate)), dtype=dtype, device=device)


def correlate1d_symmetric(x: torch.Tensor, weights: torch.Tensor, axis: int,
                          mode: str) -> torch.Tensor:
    """scipy.ndimage.correlate1d with a symmetric kernel along ``axis``, summed in scipy's
    order (centre tap, then ``(left + right) * w_j`` outwards) as shifted slices."""
    r = (weights.numel() - 1) // 2
    size = x.shape[axis]
    padded = x.index_select(axis, _pad_index(size, r, mode, x.device))
    out = padded.narrow(axis, r, size) * weights[r]
    pair = torch.empty_like(out)
    for j in range(1, r + 1):
        torch.add(padded.narrow(axis, r - j, size), padded.narrow(axis, r + j, size), out=pair)
        out.add_(pair.mul_(weights[r + j]))
    return out


def gaussian_filter(x: torch.Tensor, sigma: tuple[float, float], mode: str = "nearest",
                    truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter over the last two axes of ``x`` (N x C x H x W), as
    ``skimage.filters.gaussian(..., channel_axis=-1)``: rows first, then columns."""
    out = x
    for axis, s in ((2, sigma[0]), (3, sigma[1])):
        if s > 0:
            out = correlate1d_symmetric(out, gaussian_kernel1d(s, truncate, x.dtype, x.device),
                                        axis, mode)
    return out


# ----------------------------------------------------------------------------- blur kernels

def defocus(x: torch.Tensor, radius: float, alias_blur: float) -> torch.Tensor:
    """cv2.filter2D of every channel with the disk kernel, border REFLECT_101.

    Computed as an FFT product of the reflect-padded image (the disk is up to 21 x 21, where
    a direct float64 convolution is slow; OpenCV also switches to a DFT for such kernels)."""
    kernel = torch.tensor(disk_kernel(radius, alias_blur), device=x.device).to(x.dtype)
    r = kernel.shape[0] // 2
    n, c, h, w = x.shape
    padded = F.pad(x.reshape(n * c, 1, h, w), (r, r, r, r), mode="reflect")[:, 0]
    ph, pw = padded.shape[-2:]
    # correlation = convolution with the flipped kernel; place its centre at the origin
    k = torch.zeros((ph, pw), dtype=x.dtype, device=x.device)
    k[: 2 * r + 1, : 2 * r + 1] = torch.flip(kernel, dims=(0, 1))
    k = torch.roll(k, shifts=(-r, -r), dims=(0, 1))
    out = torch.fft.irfft2(torch.fft.rfft2(padded) * torch.fft.rfft2(k), s=(ph, pw))
    return out[:, r:r + h, r:r + w].reshape(n, c, h, w)


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angle: float) -> torch.Tensor:
    """Weighted sum of edge-replicated shifts along ``angle`` (degrees); ``x`` ... x H x W.
    The shifts are slices of one replicate-padded copy (no per-tap gather)."""
    h, w = x.shape[-2:]
    # the numpy path's taps; they stop where motion would leave the image, as the reference
    taps = [(float(weight), dx, dy) for weight, dy, dx in motion_kernel(radius, sigma, angle, (h, w))]
    px = max(abs(dx) for _, dx, _ in taps)
    py = max(abs(dy) for _, _, dy in taps)
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, h, w) if x.dim() != 3 else x.unsqueeze(0)
    padded = F.pad(flat, (px, px, py, py), mode="replicate").reshape(*lead, h + 2 * py, w + 2 * px)
    out = torch.zeros_like(x)
    for weight, dx, dy in taps:  # out[y, x] = in[clamp(y - dy), clamp(x - dx)]
        out = out + weight * padded[..., py - dy:py - dy + h, px - dx:px - dx + w]
    return out


# ----------------------------------------------------------------------------- zoom

def _linear_taps(in_size: int, out_size: int, keep: int, device: torch.device):
    """scipy.ndimage.zoom(order=1, grid_mode=False) along one axis: output o samples input
    ``o * (in - 1) / (out - 1)``; returns (low index, high index, low weight, high weight)
    for o < keep. A coordinate that rounding puts beyond ``in - 1`` reads scipy's
    ``mode='constant'`` fill (0), as scipy does."""
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 1.0
    coord = np.arange(keep, dtype=np.float64) * scale
    low = np.floor(coord)
    weight = coord - low
    low = low.astype(np.int64)
    high = np.minimum(low + 1, in_size - 1)
    outside = coord > in_size - 1
    w_low = np.where(outside, 0.0, 1 - weight)
    w_high = np.where(outside, 0.0, weight)
    low = np.minimum(low, in_size - 1)
    return (torch.as_tensor(low, device=device), torch.as_tensor(high, device=device),
            torch.as_tensor(w_low, device=device), torch.as_tensor(w_high, device=device))


def clipped_zoom(x: torch.Tensor, zoom_factor: float, crop_to_input: bool = True) -> torch.Tensor:
    """imagecorruptions' ``clipped_zoom`` over the last two axes: zoom the centre crop of
    ``ceil(size / z)`` by ``z`` (bilinear, scipy's grid). ``crop_to_input``: keep the
    top-left H x W (zoom blur); False returns the whole ``round(ceil(size / z) * z)``
    result, which snow motion-blurs before cropping."""
    h, w = x.shape[-2:]
    out = x
    for axis, size in ((-2, h), (-1, w)):
        crop = int(np.ceil(size / float(zoom_factor)))
        top = (size - crop) // 2
        zoomed = int(round(crop * zoom_factor))
        out = out.narrow(axis, top, crop)
        keep = min(size, zoomed) if crop_to_input else zoomed
        low, high, w_low, w_high = _linear_taps(crop, zoomed, keep, x.device)
        shape = [1] * out.dim()
        shape[axis] = -1
        w_low, w_high = w_low.to(out.dtype).view(shape), w_high.to(out.dtype).view(shape)
        out = out.index_select(axis, low) * w_low + out.index_select(axis, high) * w_high
    return out


# ----------------------------------------------------------------------------- colour

def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """skimage.color.rgb2hsv on N x 3 x H x W in [0, 1] (same tie rules: blue > green > red)."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    v = rgb.amax(dim=1)
    delta = v - rgb.amin(dim=1)
    zero = delta == 0
    safe = torch.where(zero, torch.ones_like(delta), delta)
    s = torch.where(zero, torch.zeros_like(delta), delta / torch.where(v == 0, torch.ones_like(v), v))
    h = (g - b) / safe
    h = torch.where(g == v, 2.0 + (b - r) / safe, h)
    h = torch.where(b == v, 4.0 + (r - g) / safe, h)
    h = torch.remainder(h / 6.0, 1.0)
    h = torch.where(zero, torch.zeros_like(h), h)
    return torch.stack((h, s, v), dim=1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """skimage.color.hsv2rgb on N x 3 x H x W."""
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    hi = torch.floor(h * 6)
    f = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    hi = torch.remainder(hi.to(torch.int64), 6)
    table = torch.stack([torch.stack(c, dim=0) for c in
                         ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    index = hi[None, None].expand(1, 3, *hi.shape)
    return table.gather(0, index)[0].permute(1, 0, 2, 3)


# ----------------------------------------------------------------------------- Pillow resize

@lru_cache(maxsize=64)
def _pillow_box_matrix(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's BOX resampling along one axis, 8-bit fixed point: an out x in matrix of
    integer coefficients (sum ~ 2**22), as ``precompute_coeffs`` + ``normalize_coeffs_8bpc``."""
    precision = 22
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        ws = []
        for x in range(xmax):
            arg = (x + xmin - center + 0.5) / filterscale
            ws.append(1.0 if -0.5 < arg <= 0.5 else 0.0)
        total = sum(ws)
        for x, wgt in enumerate(ws):
            k = wgt / total if total != 0.0 else wgt
            matrix[xx, xmin + x] = int(0.5 + k * (1 << precision)) if k >= 0 else int(-0.5 + k * (1 << precision))
    return matrix


def pillow_box_resize(x: torch.Tensor, out_w: int, out_h: int) -> torch.Tensor:
    """``Image.resize((out_w, out_h), Image.BOX)`` of uint8-valued N x C x H x W (float64):
    horizontal pass, uint8 rounding, vertical pass, as Pillow (exact in float64)."""
    h, w = x.shape[-2:]
    shift = float(1 << 22)

    def _round8(acc: torch.Tensor) -> torch.Tensor:
        return torch.floor((acc + shift / 2) / shift).clamp(0, 255)

    if out_w != w:
        mx = torch.as_tensor(_pillow_box_matrix(w, out_w), dtype=x.dtype, device=x.device)
        x = _round8(x @ mx.T)
    if out_h != h:
        my = torch.as_tensor(_pillow_box_matrix(h, out_h), dtype=x.dtype, device=x.device)
        x = _round8(my @ x)
    return x


@lru_cache(maxsize=64)
def _pillow_nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's NEAREST resize source index per output pixel (ImagingScaleAffine: the
    coordinate starts at scale / 2 and accumulates ``+= scale`` in double)."""
    scale = in_size / out_size
    coord = scale * 0.5
    index = np.empty(out_size, dtype=np.int64)
    for o in range(out_size):
        index[o] = -1 if coord < 0.0 else int(coord)
        coord += scale
    return np.clip(index, 0, in_size - 1)


def pillow_nearest_resize(x: torch.Tensor, out_w: int, out_h: int) -> torch.Tensor:
    """``Image.resize((out_w, out_h), Image.NEAREST)`` on N x C x H x W."""
    h, w = x.shape[-2:]
    cols = torch.as_tensor(_pillow_nearest_index(w, out_w), device=x.device)
    rows = torch.as_tensor(_pillow_nearest_index(h, out_h), device=x.device)
    return x.index_select(-1, cols).index_select(-2, rows)


# ----------------------------------------------------------------------------- sampling

def bilinear_reflect(image: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """scipy.ndimage.map_coordinates(order=1, mode='reflect') of C x H x W at float
    coordinates ``ys``, ``xs`` (H x W each, in pixels); neighbours fold symmetrically."""
    c, h, w = image.shape
    y0f, x0f = torch.floor(ys), torch.floor(xs)
    ty, tx = (ys - y0f).to(image.dtype), (xs - x0f).to(image.dtype)
    y0, x0 = y0f.to(torch.int64), x0f.to(torch.int64)
    y1, x1 = symmetric_index(y0 + 1, h), symmetric_index(x0 + 1, w)
    y0, x0 = symmetric_index(y0, h), symmetric_index(x0, w)
    flat = image.reshape(c, h * w)

    def _at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return flat[:, (yy * w + xx).reshape(-1)].reshape(c, *yy.shape)

    top = _at(y0, x0) * (1 - tx) + _at(y0, x1) * tx
    bottom = _at(y1, x0) * (1 - tx) + _at(y1, x1) * tx
    return top * (1 - ty) + bottom * ty
