"""Batch plumbing shared by the augmentations: float crops <-> uint8 images for Pillow.

Crops follow the project convention: ``torch.float32`` N x 3 x H x W in [0, 1], RGB, not
normalised. Pillow and the corruption functions want uint8 H x W x 3; the conversion is
``round(x * 255)`` (clamped), and back ``/ 255``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def check_crops(images: torch.Tensor, who: str) -> None:
    """One-line ValueError unless ``images`` is a float N x 3 x H x W tensor."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3 \
            or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{who}: expects float crops N x 3 x H x W in [0, 1], got {shape}")


def check_rng(rng: object, who: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{who}: rng must be a np.random.Generator (the trainer's np_rng), "
                         f"got {type(rng).__name__}")
    return rng


def crop_to_uint8(crop: torch.Tensor) -> np.ndarray:
    """3 x H x W float in [0, 1] -> H x W x 3 uint8 (numpy, CPU)."""
    array = crop.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return array.permute(1, 2, 0).cpu().numpy()


def uint8_to_crop(image: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float in [0, 1], on ``like``'s device and dtype."""
    tensor = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)
    return tensor.to(device=like.device, dtype=like.dtype) / 255.0


def map_uint8(images: torch.Tensor, rng: np.random.Generator,
              fn: Callable[[np.ndarray, np.random.Generator], np.ndarray | None]) -> torch.Tensor:
    """Apply ``fn(uint8 HxWx3, rng) -> uint8 HxWx3 | None`` to every crop in order.

    ``None`` means "left as is": that crop is returned bit-identical (no uint8 rounding).
    The crops are visited in batch order and ``fn`` draws from ``rng`` only, so the same
    batch with the same generator state gives the same output.
    """
    out = images.clone()
    for i in range(images.shape[0]):
        result = fn(crop_to_uint8(images[i]), rng)
        if result is not None:
            out[i] = uint8_to_crop(result, images)
    return out
