"""GridMask (Chen et al. 2020) as AdvMix configures it: ratio 0.5, mode 1, prob 0.7, no rotation.

Per crop (batch order, all draws from one generator): with probability ``1 - prob`` the
crop is left as is; else ``d ~ U[2, min(h, w))`` (integers), ``l = int(d * ratio + 0.5)``,
offsets ``st_h, st_w ~ U[0, d)``. As the GridMask reference builds it, the mask is drawn on
a square whose side is the crop's diagonal (room for rotation, unused here) and centre-
cropped: rows ``[st_h + i d, st_h + i d + l)`` and the same columns are the grid lines;
mode 1 inverts the mask, so the (d - l)-sided squares between the lines are dropped.

Dropped pixels take the normalisation mean colour: the official code zeroes them *after*
normalising, and zero in normalised space is the mean colour in [0, 1] pixel space.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ._batch import check_crops, check_rng

#: ImageNet mean in [0, 1] RGB (equals robustpose.models.IMAGENET_MEAN; models sit above
#: this package, so the value is repeated here and the equality is tested)
MEAN_COLOUR = (0.485, 0.456, 0.406)


def grid_keep_mask(height: int, width: int, d: int, st_h: int, st_w: int, ratio: float = 0.5,
                   mode: int = 1) -> np.ndarray:
    """The H x W float32 mask (1 = keep, 0 = drop) for one crop and one draw."""
    side = int(math.ceil(math.sqrt(height * height + width * width)))
    length = int(d * ratio + 0.5)
    lines = np.zeros(side, bool)
    for i in range(side // d):
        start = d * i + st_h
        lines[start:min(start + length, side)] = True
    cols = np.zeros(side, bool)
    for i in range(side // d):
        start = d * i + st_w
        cols[start:min(start + length, side)] = True
    keep = ~(lines[:, None] | cols[None, :])  # 1 off the lines (the reference's mask)
    if mode == 1:
        keep = ~keep
    top, left = (side - height) // 2, (side - width) // 2
    return keep[top:top + height, left:left + width].astype(np.float32)


class GridMask:
    """``aug(images, rng)`` on float N x 3 x H x W crops in [0, 1]; returns a new tensor.

    Args:
        ratio: line width / period, ``l = int(d * ratio + 0.5)``.
        mode: 1 (AdvMix, drops the squares) or 0 (drops the lines).
        prob: probability that a crop is masked at all.
        fill: the colour of dropped pixels in [0, 1] RGB (default the normalisation mean).
    """

    def __init__(self, ratio: float = 0.5, mode: int = 1, prob: float = 0.7,
                 fill: Sequence[float] = MEAN_COLOUR) -> None:
        if mode not in (0, 1):
            raise ValueError(f"GridMask: mode must be 0 or 1, got {mode!r}")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"GridMask: prob must be in [0, 1], got {prob!r}")
        self.ratio, self.mode, self.prob = float(ratio), int(mode), float(prob)
        self.fill = tuple(float(c) for c in fill)

    def draw(self, rng: np.random.Generator, height: int, width: int) -> tuple[int, int, int] | None:
        """(d, st_h, st_w), or None when the crop is left as is."""
        if rng.random() > self.prob:
            return None
        if min(height, width) <= 2:
            raise ValueError(f"GridMask: crop {width}x{height} px is too small (sides must be > 2)")
        d = int(rng.integers(2, min(height, width)))
        return d, int(rng.integers(d)), int(rng.integers(d))

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        check_crops(images, "GridMask")
        check_rng(rng, "GridMask")
        n, _, h, w = images.shape
        out = images.clone()
        fill = torch.tensor(self.fill, dtype=images.dtype, device=images.device).view(3, 1, 1)
        for i in range(n):
            draw = self.draw(rng, h, w)
            if draw is None:
                continue
            keep = torch.from_numpy(grid_keep_mask(h, w, *draw, ratio=self.ratio, mode=self.mode))
            keep = keep.to(device=images.device, dtype=images.dtype)
            out[i] = images[i] * keep + fill * (1 - keep)
        return out
