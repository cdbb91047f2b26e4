"""Spatter severities 1-3 ("water") in torch: OpenCV's Canny, 5x5 L2 chamfer distance,
box blurs, histogram equalisation and filter2D reproduced with integer-exact tensor ops.

The reference (imagecorruptions 1.1.2) builds the water mask with cv2 on uint8 images;
every step here mirrors the OpenCV 4 arithmetic (float32 chamfer distances, its Canny
non-maximum suppression with the tan(22.5) fixed-point test, 8-connected hysteresis,
saturating casts), so that, fed the same Gaussian field, the result equals the reference.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import ops
from ..params import SPATTER_WATER_BGR

_CANNY_SHIFT = 15
_TG22 = int(0.4142135623730950488016887242097 * (1 << _CANNY_SHIFT) + 0.5)


def _replicate(x: torch.Tensor, r: int) -> torch.Tensor:
    h, w = x.shape
    rows = torch.arange(-r, h + r, device=x.device).clamp(0, h - 1)
    cols = torch.arange(-r, w + r, device=x.device).clamp(0, w - 1)
    return x.index_select(0, rows).index_select(1, cols)


def _reflect101(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.pad(x[None, None].double(), (r, r, r, r), mode="reflect")[0, 0].to(x.dtype)


def canny(gray: torch.Tensor, low: int, high: int) -> torch.Tensor:
    """cv2.Canny(gray uint8 H x W, low, high) (aperture 3, L1 gradient) -> bool edges."""
    h, w = gray.shape
    p = _replicate(gray.to(torch.int64), 1)
    dx = (p[:h, 2:] - p[:h, :w]) + 2 * (p[1:h + 1, 2:] - p[1:h + 1, :w]) + (p[2:, 2:] - p[2:, :w])
    dy = (p[2:, :w] - p[:h, :w]) + 2 * (p[2:, 1:w + 1] - p[:h, 1:w + 1]) + (p[2:, 2:] - p[:h, 2:])
    mag = dx.abs() + dy.abs()
    mp = torch.zeros((h + 2, w + 2), dtype=mag.dtype, device=mag.device)
    mp[1:-1, 1:-1] = mag  # neighbours outside the image have magnitude 0, as in OpenCV
    left, right, up, down = mp[1:-1, :-2], mp[1:-1, 2:], mp[:-2, 1:-1], mp[2:, 1:-1]
    ul, ur, dl, dr = mp[:-2, :-2], mp[:-2, 2:], mp[2:, :-2], mp[2:, 2:]
    x = dx.abs()
    y = dy.abs() << _CANNY_SHIFT
    tg22x = x * _TG22
    horizontal = y < tg22x
    vertical = ~horizontal & (y > tg22x + (x << (_CANNY_SHIFT + 1)))
    diagonal = ~horizontal & ~vertical
    opposite = (dx < 0) ^ (dy < 0)  # (xs ^ ys) < 0
    diag_max = torch.where(opposite, (mag > ur) & (mag > dl), (mag > ul) & (mag > dr))
    candidate = (mag > low) & ((horizontal & (mag > left) & (mag >= right))
                               | (vertical & (mag > up) & (mag >= down))
                               | (diagonal & diag_max))
    edges = candidate & (mag > high)
    cand = candidate.float()[None, None]
    grown = edges.float()[None, None]
    while True:  # hysteresis: grow strong edges through 8-connected candidates
        before = grown
        for _ in range(8):  # growing is idempotent once done: test (a device sync) every 8
            grown = F.max_pool2d(grown, 3, 1, 1) * cand
        if torch.equal(grown, before):
            return grown[0, 0] > 0


def chamfer_distance_truncated(zero_mask: torch.Tensor, limit: float) -> torch.Tensor:
    """cv2.distanceTransform(src, DIST_L2, 5) where ``zero_mask`` marks src == 0, then
    THRESH_TRUNC at ``limit``: float32. Chamfer steps 1, 1.4, 2.1969 (float32, added to the
    neighbour's float32 distance as OpenCV's scans do), relaxed until every distance below
    ``limit`` is final (every step adds >= 1, so ``limit + 1`` rounds suffice)."""
    h, w = zero_mask.shape
    big = float(4 * limit + 8)
    dist = torch.where(zero_mask, 0.0, big).to(torch.float32)
    hv, diag, long = (torch.tensor(v, dtype=torch.float32, device=dist.device)
                      for v in (1.0, 1.4, 2.1969))
    offsets = ([(0, 1, hv), (1, 0, hv), (0, -1, hv), (-1, 0, hv)]
               + [(dy, dx, diag) for dy in (-1, 1) for dx in (-1, 1)]
               + [(dy, dx, long) for dy, dx in ((1, 2), (2, 1), (-1, 2), (-2, 1),
                                                (1, -2), (2, -1), (-1, -2), (-2, -1))])
    for _ in range(int(limit) + 1):
        padded = F.pad(dist[None, None], (2, 2, 2, 2), value=big)[0, 0]
        best = dist
        for dy, dx, weight in offsets:
            best = torch.minimum(best, padded[2 + dy:2 + dy + h, 2 + dx:2 + dx + w] + weight)
        dist = best
    return dist.clamp(max=limit)


def _box3_float(x: torch.Tensor) -> torch.Tensor:
    """cv2.blur(float32, (3, 3)): sums in double, times 1/9, to float32 (REFLECT_101)."""
    p = _reflect101(x.double(), 1)
    h, w = x.shape
    total = sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3))
    return (total * (1.0 / 9.0)).to(torch.float32)


def _box3_uint8(x: torch.Tensor) -> torch.Tensor:
    """cv2.blur(uint8, (3, 3)) -> uint8, with OpenCV's fixed-point division by 9."""
    p = _reflect101(x.to(torch.int64), 1)
    h, w = x.shape
    total = sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3))
    return ((total + 4) * 7282) >> 16


def equalize_hist(x: torch.Tensor) -> torch.Tensor:
    """cv2.equalizeHist of uint8-valued int64 H x W (float32 scale, round half to even)."""
    hist = torch.bincount(x.reshape(-1), minlength=256)
    total = x.numel()
    first = int(torch.nonzero(hist)[0].item())
    if int(hist[first].item()) == total:
        return torch.full_like(x, first)
    scale = torch.tensor(255.0, dtype=torch.float32) / torch.tensor(float(total - int(hist[first])),
                                                                    dtype=torch.float32)
    cum = torch.cumsum(hist, 0) - torch.cumsum(hist, 0)[first]
    lut = torch.round(cum.to(torch.float32) * scale.to(x.device)).clamp(0, 255).to(torch.int64)
    lut[: first + 1] = 0
    return lut[x]


def _filter2d_emboss(x: torch.Tensor) -> torch.Tensor:
    """cv2.filter2D(uint8, CV_8U, [[-2,-1,0],[-1,1,1],[0,1,2]]) (REFLECT_101, saturating)."""
    kernel = ((-2, -1, 0), (-1, 1, 1), (0, 1, 2))
    p = _reflect101(x, 1)
    h, w = x.shape
    total = sum(kernel[i][j] * p[i:i + h, j:j + w] for i in range(3) for j in range(3) if kernel[i][j])
    return total.clamp(0, 255)


def water_mask(liquid: torch.Tensor, params) -> torch.Tensor:
    """The float32 water layer ``m`` (H x W, before the colour) from the smoothed field."""
    threshold, intensity = params[3], params[4]
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    liquid_u8 = torch.floor(liquid * 255).clamp(0, 255).to(torch.int64)
    edges = canny(liquid_u8, 50, 150)
    dist = chamfer_distance_truncated(edges, 20.0)  # 255 - Canny is 0 on edges
    dist = _box3_float(dist).to(torch.int64)  # .astype(np.uint8) truncates
    dist = equalize_hist(dist)
    dist = _filter2d_emboss(dist)
    dist = _box3_uint8(dist).to(torch.float32)
    m = liquid_u8.to(torch.float32) * dist
    m = m / m.max()
    return m * np.float32(intensity)


def spatter_water(x: torch.Tensor, params, fields: list[torch.Tensor]) -> torch.Tensor:
    """x: N x 3 x H x W float32 in [0, 1]; ``fields``: one N(mean, std) H x W float64 map per
    image. Returns float32 ``clip(x + m * colour, 0, 1) * 255`` (colour applied to channels
    0, 1, 2 = 175, 238, 238 / 255, as the reference adds its BGR colour to RGB data)."""
    sigma = params[2]
    # the reference adds its BGR water colour to RGB data: channel i gets entry i
    colour = torch.tensor(SPATTER_WATER_BGR, dtype=torch.float32, device=x.device).view(3, 1, 1)
    out = []
    for img, field in zip(x, fields):
        liquid = ops.gaussian_filter(field[None, None], (sigma, sigma))[0, 0]
        m = water_mask(liquid, params)
        out.append((img + m * colour).clamp(0, 1) * 255)
    return torch.stack(out)
