"""Gaussian heatmap codecs: HRNet's ``generate_target`` (encode) and ``get_final_preds`` (decode).

Registered as ``hrnet`` (:class:`GaussianHeatmap`, MSRA encoding, quarter-offset decoding)
and ``unbiased`` (:class:`UnbiasedHeatmap`, DARK encoding and decoding).

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

import sys
from typing import Any, Sequence

import cv2
import numpy as np

from .base import Codec, register_codec
from .setting import BOUNDARIES, REFINES, InferenceSetting

__all__ = ["GaussianHeatmap", "UnbiasedHeatmap", "get_max_preds", "refine_quarter",
           "refine_dark", "flip_heatmaps"]


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


def flip_heatmaps(heatmaps, flip_pairs: Sequence[tuple[int, int]], shift: bool = True):
    """Align the heatmaps of a mirrored crop with the unmirrored one (HRNet ``flip_back``).

    ``heatmaps``: N x K x h x w (torch tensor or numpy), the model's output on the
    horizontally flipped crop. Mirrors the width axis, swaps each flip pair's channels and,
    with ``shift``, moves the maps 1 px right (column 0 keeps its value), as HRNet does
    before averaging. Returns the same type.
    """
    k = heatmaps.shape[1]
    perm = np.arange(k)
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    torch = sys.modules.get("torch")  # a tensor implies torch is imported already
    if torch is not None and isinstance(heatmaps, torch.Tensor):
        out = heatmaps.flip(-1)[:, torch.as_tensor(perm, device=heatmaps.device)]
        if shift:
            out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
        return out
    out = np.asarray(heatmaps)[..., ::-1][:, perm]
    if shift:
        out = np.concatenate([out[..., :1], out[..., :-1]], axis=-1)
    return np.ascontiguousarray(out)


@register_codec("hrnet")
class GaussianHeatmap(Codec):
    """Keypoints (input px) <-> K x h x w Gaussian heatmaps; sizes are (width, height).

    ``encode`` -> ``{'target': (K, h, w) float32 in [0, 1], 'target_weight': (K,)}``;
    ``decode`` -> heatmap-pixel coords (the maps' own grid) and the map maxima as scores.
    ``unbiased=True`` is DARK's sub-pixel encoding (see :class:`UnbiasedHeatmap`);
    ``refine`` / ``boundary`` / ``blur_kernel`` are the decoding defaults that an
    :class:`~robustpose.codecs.InferenceSetting` passed to :meth:`decode` overrides.
    """

    name = "hrnet"
    output_kind = "heatmaps"

    def __init__(self, input_size: Sequence[int] = (192, 256),
                 heatmap_size: Sequence[int] = (48, 64), sigma: float = 2.0,
                 unbiased: bool = False, refine: str = "quarter", boundary: str = "hrnet",
                 blur_kernel: int = 11) -> None:
        if refine not in REFINES:
            raise ValueError(f"refine must be 'quarter', 'dark' or 'none', not {refine!r}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be 'hrnet' or 'mmpose', not {boundary!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        if self.sigma <= 0:
            raise ValueError(f"sigma must be positive, not {sigma!r}")
        self.unbiased = bool(unbiased)
        self.refine = refine
        self.boundary = boundary
        self.blur_kernel = int(blur_kernel)
        self.stride = (self.input_size[0] / self.heatmap_size[0],
                       self.input_size[1] / self.heatmap_size[1])

    def encode(self, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        """``target`` (K, h, w) float32 heatmaps in [0, 1] and ``target_weight`` (K,)
        float32 (1 labelled and on the map, 0 not).

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
        return {"target": heatmaps, "target_weight": weights}

    def decode(self, heatmaps: Any, setting: InferenceSetting | None = None, *,
               shift: bool = True, refine: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps N x K x h x w -> coords (N, K, 2) float32 in heatmap px, maxvals (N, K).

        The refinement is ``refine`` if given, else ``setting.refine`` (with its
        ``dark_kernel`` and ``boundary``), else the codec's; ``shift=False`` returns the
        integer argmax.
        """
        hm = _as_numpy(heatmaps)
        if hm.ndim != 4:
            raise ValueError(f"heatmaps must be N x K x h x w, got shape {hm.shape}")
        coords, maxvals = get_max_preds(hm)
        mode = refine or (setting.refine if setting is not None else self.refine)
        kernel = setting.dark_kernel if setting is not None else self.blur_kernel
        boundary = setting.boundary if setting is not None else self.boundary
        if not shift or mode == "none":
            return coords, maxvals
        if mode == "dark":
            return refine_dark(coords, hm, kernel), maxvals
        return refine_quarter(coords, hm, boundary), maxvals

    def flip_back(self, outputs: Any, flip_pairs: Sequence[tuple[int, int]],
                  setting: InferenceSetting | None = None) -> Any:
        """:func:`flip_heatmaps` with the setting's ``flip_shift`` (default on, HRNet)."""
        return flip_heatmaps(outputs, flip_pairs,
                             shift=True if setting is None else setting.flip_shift)

    def frame(self, outputs: Any) -> tuple[int, int]:
        """The maps' own (w, h): a model whose output grid differs from ``heatmap_size``
        is still back-projected from the grid it produced."""
        return int(outputs.shape[-1]), int(outputs.shape[-2])

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "sigma": self.sigma,
                "unbiased": self.unbiased, "refine": self.refine, "boundary": self.boundary,
                "blur_kernel": self.blur_kernel}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(input_size={self.input_size}, heatmap_size={self.heatmap_size}"
                f", sigma={self.sigma}, unbiased={self.unbiased}, refine={self.refine!r}, "
                f"boundary={self.boundary!r})")


@register_codec("unbiased")
class UnbiasedHeatmap(GaussianHeatmap):
    """DARK (Zhang et al., CVPR 2020): the Gaussian peaks at the exact sub-pixel position
    (``unbiased=True``) and decoding defaults to DARK's refinement (``refine='dark'``)."""

    name = "unbiased"

    def __init__(self, input_size: Sequence[int] = (192, 256),
                 heatmap_size: Sequence[int] = (48, 64), sigma: float = 2.0,
                 refine: str = "dark", boundary: str = "hrnet", blur_kernel: int = 11) -> None:
        super().__init__(input_size, heatmap_size, sigma, unbiased=True, refine=refine,
                         boundary=boundary, blur_kernel=blur_kernel)

    def config(self) -> dict[str, Any]:
        out = super().config()
        out.pop("unbiased")
        return out
