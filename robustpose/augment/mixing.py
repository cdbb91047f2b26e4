"""Mixing views: AugMix-style Dirichlet weights, sequential chains, the weighted sum.

Views are stacked as ``N x V x 3 x H x W`` (V = K + 1, the clean crop first); weights are
``N x V x H x W`` per pixel or ``N x V`` per image, summing to 1 over V.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ._batch import check_crops, check_rng

Augmentation = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]


def make_views(images: torch.Tensor, augmentations: Sequence[Augmentation],
               rng: np.random.Generator) -> torch.Tensor:
    """``N x (K+1) x 3 x H x W``: the clean crops, then each augmentation of them, drawn in
    this order from ``rng`` (so the same batch and generator state give the same views)."""
    check_crops(images, "make_views")
    check_rng(rng, "make_views")
    with torch.no_grad():
        views = [images] + [aug(images, rng) for aug in augmentations]
    return torch.stack(views, 1)


def sequential(images: torch.Tensor, augmentations: Sequence[Augmentation],
               rng: np.random.Generator) -> torch.Tensor:
    """SequentialMix: the augmentations applied one after the other (a chain)."""
    check_rng(rng, "sequential")
    out = images
    with torch.no_grad():
        for aug in augmentations:
            out = aug(out, rng)
    return out


def dirichlet_weights(n: int, num_views: int, rng: np.random.Generator,
                      alpha: float = 1.0) -> torch.Tensor:
    """DirichletMix: ``n x num_views`` image-level weights ~ Dirichlet(alpha, ..., alpha)
    (AugMix's chain weights), float32."""
    check_rng(rng, "dirichlet_weights")
    if alpha <= 0:
        raise ValueError(f"dirichlet_weights: alpha must be > 0, got {alpha}")
    return torch.from_numpy(rng.dirichlet([float(alpha)] * num_views, size=n).astype(np.float32))


def mix(views: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_v weights[:, v] * views[:, v]`` -> N x 3 x H x W.

    ``weights``: N x V x H x W (per pixel) or N x V (per image). The sum is in [0, 1] pixel
    space; because the weights sum to 1, it equals mixing normalised views and
    un-normalising (the official code's order)."""
    if views.dim() != 5 or views.shape[2] != 3:
        raise ValueError(f"mix: views must be N x V x 3 x H x W, got {tuple(views.shape)}")
    if weights.dim() == 2:
        weights = weights[:, :, None, None]
    if weights.shape[:2] != views.shape[:2]:
        raise ValueError(f"mix: weights {tuple(weights.shape)} do not match views {tuple(views.shape)}")
    return (weights.unsqueeze(2).to(views.dtype) * views).sum(1)


def clean_identical_weight(views: torch.Tensor, weights: torch.Tensor, atol: float = 0.5 / 255) -> float:
    """The fraction of the mixing weight that lands on pixels equal to the clean crop.

    ``views`` N x V x 3 x H x W with the clean crop at ``v = 0``; ``weights`` N x V x H x W
    (or N x V, per image). A view's pixel is clean-identical when all three channels are
    within ``atol`` of the clean crop's (default half a uint8 grey level: the augmentations
    round-trip through uint8), e.g. GridMask's kept pixels or a pixel AutoAugment left
    unchanged; the clean view's weight always counts. Returns
    ``sum w * [view == clean] / sum w`` in [0, 1]: the part of the mix that is the clean
    crop itself, however the weights are spread over the views."""
    if views.dim() != 5 or views.shape[2] != 3:
        raise ValueError(f"clean_identical_weight: views must be N x V x 3 x H x W, got {tuple(views.shape)}")
    if weights.dim() == 2:
        weights = weights[:, :, None, None].expand(-1, -1, *views.shape[-2:])
    if weights.shape != views.shape[:2] + views.shape[-2:]:
        raise ValueError(f"clean_identical_weight: weights {tuple(weights.shape)} do not match "
                         f"views {tuple(views.shape)}")
    same = ((views - views[:, :1]).abs() <= atol).all(2)  # N x V x H x W
    weights = weights.detach().double()
    return float((weights * same).sum() / weights.sum())
