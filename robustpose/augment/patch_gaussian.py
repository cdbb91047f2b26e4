"""Patch Gaussian (Lopes et al. 2019): Gaussian noise inside one random square patch.

Per crop (batch order, every draw from one ``np.random.Generator``):

1. with probability ``1 - prob`` the crop is left as is;
2. patch side ``W ~ U{1, ..., patch_size}`` and noise scale ``sigma ~ U[0, max_sigma)``
   ("sampling up to" the maximum, the paper's recommended setting; ``randomize=False``
   uses ``W = patch_size`` and ``sigma = max_sigma``);
3. the patch centre ``(cy, cx)`` uniform over the crop's pixels; the square
   ``[c - W // 2, c - W // 2 + W)`` is clipped at the borders (so a patch near an edge
   covers less, as in the paper: a large patch at the centre covers everything);
4. inside the patch ``x <- clip(x + sigma * n, 0, 1)``, ``n ~ N(0, 1)`` per pixel and
   channel, on the [0, 1] pixel scale (the paper's sigma is on that scale); outside
   it the crop is bit-identical.

Defaults, our reading of the paper's ImageNet setting (``W`` up to the 224-pixel image side,
``sigma`` up to 1.0; see docs/stable.md): ``patch_size=None`` means the crop's longer side
(a centred patch then covers a rectangular crop whole), ``max_sigma=1.0``.
"""
from __future__ import annotations

import numpy as np
import torch

from ._batch import check_crops, check_rng


class PatchGaussian:
    """``aug(images, rng)`` on float N x 3 x H x W crops in [0, 1]; returns a new tensor.

    Args:
        patch_size: the largest patch side in pixels (``None``: the crop's longer side).
        max_sigma: the largest noise standard deviation on the [0, 1] scale (1.0).
        randomize: draw side and sigma uniformly up to the maxima (True, the paper's
            setting) or always use the maxima.
        prob: probability that a crop gets a patch at all (1).
    """

    def __init__(self, patch_size: int | None = None, max_sigma: float = 1.0,
                 randomize: bool = True, prob: float = 1.0) -> None:
        if patch_size is not None and (isinstance(patch_size, bool) or int(patch_size) < 1):
            raise ValueError(f"PatchGaussian: patch_size must be >= 1 px or None, got {patch_size!r}")
        if not float(max_sigma) >= 0:
            raise ValueError(f"PatchGaussian: max_sigma must be >= 0, got {max_sigma!r}")
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"PatchGaussian: prob must be in [0, 1], got {prob!r}")
        self.patch_size = None if patch_size is None else int(patch_size)
        self.max_sigma, self.randomize, self.prob = float(max_sigma), bool(randomize), float(prob)

    def draw(self, rng: np.random.Generator, height: int,
             width: int) -> tuple[int, int, int, int, float] | None:
        """(top, left, bottom, right, sigma) of the clipped patch, or None (no patch)."""
        if self.prob < 1.0 and rng.random() >= self.prob:
            return None
        largest = self.patch_size or max(height, width)
        side = int(rng.integers(1, largest + 1)) if self.randomize else largest
        sigma = float(rng.uniform(0.0, self.max_sigma)) if self.randomize else self.max_sigma
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        top, left = cy - side // 2, cx - side // 2
        return max(top, 0), max(left, 0), min(top + side, height), min(left + side, width), sigma

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        check_crops(images, "PatchGaussian")
        check_rng(rng, "PatchGaussian")
        n, c, h, w = images.shape
        out = images.clone()
        for i in range(n):
            draw = self.draw(rng, h, w)
            if draw is None:
                continue
            top, left, bottom, right, sigma = draw
            noise = rng.standard_normal((c, bottom - top, right - left)).astype(np.float32)
            noise = torch.from_numpy(noise).to(device=images.device, dtype=images.dtype)
            patch = out[i, :, top:bottom, left:right]
            out[i, :, top:bottom, left:right] = (patch + sigma * noise).clamp_(0.0, 1.0)
        return out
