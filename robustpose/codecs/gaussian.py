"""Gaussian heatmaps: HRNet's ``generate_target`` (encode) and ``get_final_preds`` (decode).

Encode (HRNet default): the peak sits on the integer heatmap pixel
``int(x / stride + 0.5)``; the Gaussian (sigma 2, value 1 at the peak) is cut at
``3 sigma``; a keypoint whose cut square lies fully outside the heatmap, or is not
labelled, gets weight 0 and an empty map. ``unbiased=True`` is DARK's encoding: the peak
at the exact sub-pixel position, evaluated over the whole map.

Decode: argmax per map (maps whose maximum is <= 0 give (0, 0) and score <= 0), then

- ``refine='quarter'`` (default): +-0.25 px towards the higher neighbour on each axis.
  ``boundary='hrnet'`` (default) refines only when the peak satisfies
  ``1 < x < W-1 and 1 < y < H-1`` (both axes together, on ``floor(x + 0.5)``);
  ``boundary='mmpose'`` refines x when ``1 < x < W-1 and 0 < y < H`` and y when
  ``1 < y < H-1 and 0 < x < W``, independently (mmpose 1.x ``refine_keypoints``).
- ``refine='dark'``: DARK: blur the map with a ``blur_kernel`` Gaussian (max kept), take
  the log, one Newton step from the argmax with central differences (x +- 1 for the
  gradient, x +- 2 for the Hessian), only when ``1 < x < W-2 and 1 < y < H-2``.
- ``refine='none'`` (or ``shift=False``): the integer argmax.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["GaussianHeatmap", "get_max_preds", "refine_quarter", "refine_dark"]


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer argmax of N x K x h x w maps: coords (N, K, 2) float32 (x, y), maxvals (N, K).

    Like HRNet, a map whose maximum is <= 0 gives coordinates (0, 0).
    """
    hm = _as_numpy(heatmaps)
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    coords *= (maxvals > 0)[..., None]
    return coords, maxvals


def refine_quarter(coords: np.ndarray, heatmaps: np.ndarray, boundary: str = "hrnet") -> np.ndarray:
    """Move each integer peak 0.25 px towards the higher neighbour (see module docstring)."""
    hm = _as_numpy(heatmaps)
    n, k, h, w = hm.shape
    out = np.array(coords, dtype=np.float32, copy=True)
    if boundary == "hrnet":
        px = np.floor(out[..., 0] + 0.5).astype(np.int64)
        py = np.floor(out[..., 1] + 0.5).astype(np.int64)
        ok = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
        ok_x = ok_y = ok
    elif boundary == "mmpose":
        px = out[..., 0].astype(np.int64)
        py = out[..., 1].astype(np.int64)
        ok_x = (px > 1) & (px < w - 1) & (py > 0) & (py < h)
        ok_y = (py > 1) & (py < h - 1) & (px > 0) & (px < w)
    else:
        raise ValueError(f"boundary must be 'hrnet' or 'mmpose', not {boundary!r}")
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    cx, cy = np.clip(px, 0, w - 1), np.clip(py, 0, h - 1)
    dx = hm[ni, ki, cy, np.clip(cx + 1, 0, w - 1)] - hm[ni, ki, cy, np.clip(cx - 1, 0, w - 1)]
    dy = hm[ni, ki, np.clip(cy + 1, 0, h - 1), cx] - hm[ni, ki, np.clip(cy - 1, 0, h - 1), cx]
    out[..., 0] += np.where(ok_x, np.sign(dx), 0) * 0.25
    out[..., 1] += np.where(ok_y, np.sign(dy), 0) * 0.25
    return out


def _blur(maps: np.ndarray, kernel: int) -> np.ndarray:
    """DARK's modulation: zero-padded Gaussian blur of each map, rescaled to its old max.
    The zero-padded maps are stacked into one tall image and blurred in one OpenCV call:
    the kernel reaches no further than each map's own padding, so every map gets exactly
    the values of a blur on its own."""
    border = (kernel - 1) // 2
    n, k, h, w = maps.shape
    flat = maps.reshape(n * k, h, w).astype(np.float32, copy=False)
    tall = np.zeros((n * k, h + 2 * border, w + 2 * border), dtype=np.float32)
    tall[:, border:border + h, border:border + w] = flat
    blurred = cv2.GaussianBlur(tall.reshape(-1, w + 2 * border), (kernel, kernel), 0)
    out = blurred.reshape(tall.shape)[:, border:border + h, border:border + w].copy()
    origin_max = flat.max(axis=(1, 2))
    peak = out.max(axis=(1, 2))
    scale = np.divide(origin_max, peak, out=np.ones_like(peak), where=peak > 0)
    out *= scale[:, None, None]
    return out.reshape(n, k, h, w)


def refine_dark(coords: np.ndarray, heatmaps: np.ndarray, blur_kernel: int = 11) -> np.ndarray:
    """DARK sub-pixel refinement (Zhang et al., CVPR 2020) of integer peaks ``coords``:
    one Newton step on the log of the blurred heatmap, for every peak at least two pixels
    inside the map (the others are returned unchanged). Vectorised over all peaks."""
    hm = _blur(_as_numpy(heatmaps), blur_kernel)  # float32; _blur leaves its input alone
    np.maximum(hm, 1e-10, out=hm)
    hm = np.log(hm).astype(np.float64)
    n, k, h, w = hm.shape
    out = np.array(coords, dtype=np.float64, copy=True)
    x = out[..., 0].astype(np.int64)
    y = out[..., 1].astype(np.int64)
    inside = (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2)
    xs, ys = np.where(inside, x, 2), np.where(inside, y, 2)
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")

    def at(dy: int, dx: int) -> np.ndarray:
        return hm[ni, ki, ys + dy, xs + dx]

    centre = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * centre + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = 0.25 * (at(2, 0) - 2 * centre + at(-2, 0))
    det = dxx * dyy - dxy ** 2
    use = inside & (det != 0)
    safe = np.where(use, det, 1.0)
    out[..., 0] -= np.where(use, (dyy * dx - dxy * dy) / safe, 0.0)
    out[..., 1] -= np.where(use, (dxx * dy - dxy * dx) / safe, 0.0)
    return out.astype(np.float32)


class GaussianHeatmap:
    """Keypoints (input px) <-> K x h x w Gaussian heatmaps; sizes are (width, height)."""

    def __init__(self, input_size: Sequence[int] = (192, 256),
                 heatmap_size: Sequence[int] = (48, 64), sigma: float = 2.0,
                 unbiased: bool = False, refine: str = "quarter", boundary: str = "hrnet",
                 blur_kernel: int = 11) -> None:
        if refine not in ("quarter", "dark", "none"):
            raise ValueError(f"refine must be 'quarter', 'dark' or 'none', not {refine!r}")
        if boundary not in ("hrnet", "mmpose"):
            raise ValueError(f"boundary must be 'hrnet' or 'mmpose', not {boundary!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        self.unbiased = unbiased
        self.refine = refine
        self.boundary = boundary
        self.blur_kernel = int(blur_kernel)
        self.stride = (self.input_size[0] / self.heatmap_size[0],
                       self.input_size[1] / self.heatmap_size[1])

    def encode(self, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps (K, h, w) float32 in [0, 1] and weights (K,) float32 (1 labelled, 0 not).

        ``keypoints``: (K, 3) x, y in input-crop pixels, visibility (> 0 = labelled).
        """
        kpts = np.asarray(keypoints, dtype=np.float64)
        k = kpts.shape[0]
        w, h = self.heatmap_size
        heatmaps = np.zeros((k, h, w), dtype=np.float32)
        weights = (kpts[:, 2] > 0).astype(np.float32)
        tmp_size = self.sigma * 3
        xs = np.arange(w, dtype=np.float32)
        ys = np.arange(h, dtype=np.float32)[:, None]
        size = int(2 * tmp_size + 1)
        g_axis = np.arange(size, dtype=np.float32)
        x0 = size // 2
        g = np.exp(-((g_axis - x0) ** 2 + (g_axis[:, None] - x0) ** 2) / (2 * self.sigma ** 2))
        for j in range(k):
            if self.unbiased:
                mu_x, mu_y = kpts[j, 0] / self.stride[0], kpts[j, 1] / self.stride[1]
                ul = (int(mu_x - tmp_size), int(mu_y - tmp_size))
                br = (int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1))
            else:  # int() truncates toward zero, exactly as HRNet
                mu_x = int(kpts[j, 0] / self.stride[0] + 0.5)
                mu_y = int(kpts[j, 1] / self.stride[1] + 0.5)
                ul = (int(mu_x - tmp_size), int(mu_y - tmp_size))
                br = (int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1))
            if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
                weights[j] = 0
                continue
            if weights[j] <= 0.5:
                continue
            if self.unbiased:
                heatmaps[j] = np.exp(-((xs - mu_x) ** 2 + (ys - mu_y) ** 2)
                                     / (2 * self.sigma ** 2))
                continue
            gx = max(0, -ul[0]), min(br[0], w) - ul[0]
            gy = max(0, -ul[1]), min(br[1], h) - ul[1]
            ix = max(0, ul[0]), min(br[0], w)
            iy = max(0, ul[1]), min(br[1], h)
            heatmaps[j, iy[0]:iy[1], ix[0]:ix[1]] = g[gy[0]:gy[1], gx[0]:gx[1]]
        return heatmaps, weights

    def decode(self, heatmaps, shift: bool = True,
               refine: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps N x K x h x w -> coords (N, K, 2) in heatmap px, maxvals (N, K).

        ``shift``: apply the sub-pixel refinement (``refine``, default the codec's:
        quarter-pixel shift); ``shift=False`` returns the integer argmax.
        """
        hm = _as_numpy(heatmaps)
        if hm.ndim != 4:
            raise ValueError(f"heatmaps must be N x K x h x w, got shape {hm.shape}")
        coords, maxvals = get_max_preds(hm)
        mode = refine or self.refine
        if not shift or mode == "none":
            return coords, maxvals
        if mode == "dark":
            return refine_dark(coords, hm, self.blur_kernel), maxvals
        return refine_quarter(coords, hm, self.boundary), maxvals

    def __repr__(self) -> str:
        return (f"GaussianHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}"
                f", sigma={self.sigma}, unbiased={self.unbiased}, refine={self.refine!r}, "
                f"boundary={self.boundary!r})")
