"""AutoAugment restricted to colour / pixel operations, as AdvMix uses it.

The sub-policies are those of AutoAugment's ImageNet policy (Cubuk et al. 2019) whose two
operations are both colour / pixel operations from {equalize, posterize, solarize, invert,
sharpness}: 12 sub-policies, the count of the official AdvMix list, one of them with
sharpness. Geometric ops (rotate, shear) would move the keypoints and are left out; the
AdvMix paper also excludes contrast, colour, brightness and sharpness because they appear
in the benchmark. ``policy='paper'`` (default) therefore drops the sharpness sub-policy
(11 left); ``policy='official'`` keeps the list as released (12).

Magnitudes (index 0..9) map as in the public AutoAugment implementations: posterize bits
``round(linspace(8, 4, 10))``, solarize threshold ``linspace(256, 0, 10)``, sharpness
factor ``1 +- linspace(0, 0.9, 10)`` (sign drawn at random); equalize / invert ignore it.
Each operation of the drawn sub-policy fires with its own probability.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

from ._batch import check_crops, check_rng, map_uint8

POSTERIZE_BITS = np.round(np.linspace(8, 4, 10)).astype(int)
SOLARIZE_THRESHOLDS = np.linspace(256, 0, 10)
SHARPNESS_MAGNITUDES = np.linspace(0.0, 0.9, 10)

#: (probability, op, magnitude index) pairs, ImageNet-policy order
OFFICIAL_POLICY: tuple[tuple[tuple[float, str, int], tuple[float, str, int]], ...] = (
    ((0.8, "equalize", 8), (0.6, "equalize", 3)),
    ((0.6, "posterize", 7), (0.6, "posterize", 6)),
    ((0.4, "equalize", 7), (0.2, "solarize", 4)),
    ((0.6, "solarize", 3), (0.6, "equalize", 7)),
    ((0.8, "posterize", 5), (1.0, "equalize", 2)),
    ((0.6, "equalize", 8), (0.4, "posterize", 6)),
    ((0.0, "equalize", 7), (0.8, "equalize", 8)),
    ((0.6, "invert", 4), (1.0, "equalize", 8)),
    ((0.4, "sharpness", 7), (0.6, "invert", 8)),
    ((0.4, "equalize", 7), (0.2, "solarize", 4)),
    ((0.6, "invert", 4), (1.0, "equalize", 8)),
    ((0.8, "equalize", 8), (0.6, "equalize", 3)),
)
POLICIES = ("paper", "official")


def policy_list(policy: str = "paper") -> tuple:
    """The sub-policies of ``policy``: 'paper' (no sharpness, 11) or 'official' (12)."""
    if policy not in POLICIES:
        raise ValueError(f"autoaugment policy must be one of {POLICIES}, got {policy!r}")
    if policy == "official":
        return OFFICIAL_POLICY
    return tuple(sp for sp in OFFICIAL_POLICY if all(op != "sharpness" for _, op, _ in sp))


def apply_op(image: np.ndarray, op: str, magnitude: int, sign: int = 1) -> np.ndarray:
    """One Pillow operation on a uint8 H x W x 3 RGB image (``sign``: sharpness only)."""
    pil = Image.fromarray(image)
    if op == "equalize":
        out = ImageOps.equalize(pil)
    elif op == "invert":
        out = ImageOps.invert(pil)
    elif op == "posterize":
        out = ImageOps.posterize(pil, int(POSTERIZE_BITS[magnitude]))
    elif op == "solarize":
        out = ImageOps.solarize(pil, float(SOLARIZE_THRESHOLDS[magnitude]))
    elif op == "sharpness":
        out = ImageEnhance.Sharpness(pil).enhance(1.0 + sign * float(SHARPNESS_MAGNITUDES[magnitude]))
    else:
        raise ValueError(f"autoaugment: unknown op {op!r}")
    return np.asarray(out, dtype=np.uint8)


@dataclass(frozen=True)
class Draw:
    """What one crop drew: the sub-policy index and the ops that fired (op, magnitude, sign)."""

    index: int
    ops: tuple[tuple[str, int, int], ...]


class AutoAugment:
    """The restricted AutoAugment policy on a batch of crops.

    ``aug(images, rng)``: ``images`` float N x 3 x H x W in [0, 1]; returns a new tensor of
    the same shape, device and dtype. Per crop (in batch order) it draws a sub-policy, then
    for each of its two ops whether it fires (and, for sharpness, the sign), all from ``rng``.
    A crop where no op fired is returned unchanged (no uint8 rounding).
    """

    def __init__(self, policy: str = "paper") -> None:
        self.policy = policy
        self.subpolicies = policy_list(policy)

    def draw(self, rng: np.random.Generator) -> Draw:
        index = int(rng.integers(len(self.subpolicies)))
        fired = []
        for prob, op, magnitude in self.subpolicies[index]:
            fire = rng.random() < prob
            sign = 1 if rng.random() < 0.5 else -1  # drawn always: the stream is op-independent
            if fire:
                fired.append((op, magnitude, sign))
        return Draw(index, tuple(fired))

    def apply(self, image: np.ndarray, draw: Draw) -> np.ndarray | None:
        if not draw.ops:
            return None
        for op, magnitude, sign in draw.ops:
            image = apply_op(image, op, magnitude, sign)
        return image

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        check_crops(images, "AutoAugment")
        check_rng(rng, "AutoAugment")
        return map_uint8(images, rng, lambda image, g: self.apply(image, self.draw(g)))
