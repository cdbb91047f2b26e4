"""AugMix chains (Hendrycks et al., ICLR 2020) on batches of crops, pixel operations only.

Per crop (batch order, every draw from one ``np.random.Generator``): chain weights
``w ~ Dirichlet(alpha, ..., alpha)`` over ``width`` chains and a skip weight
``m ~ Beta(alpha, alpha)``; chain i applies ``depth`` operations (``depth = -1``: 1..3 drawn
per chain), each drawn uniformly from ``ops`` with a magnitude drawn per operation as in
the official ``augmentations.py`` (``level ~ U(0.1, severity)``); the output is
``(1 - m) * x + m * sum_i w_i * chain_i(x)`` in [0, 1] pixel space (the official code mixes
normalised images; the weights sum to 1, so the two agree, as for AdvMix's mix).

Deviation from AugMix, for pose: its default operation list also has rotate, shear_x/y and
translate_x/y. Those move the keypoints, and this package's augmentations leave the targets
untouched (and the Jensen-Shannon consistency of the ``augmix`` training method compares
heatmaps pixel by pixel, which a geometric change would make wrong), so they are left out:
``ops='default'`` is AugMix's default list without its geometric operations
(autocontrast, equalize, posterize, solarize); ``ops='all'`` adds the four that AugMix's
``all_ops`` adds (color, contrast, brightness, sharpness -- AugMix leaves them out by
default because they overlap the corruption benchmark: here brightness and contrast are
among the test corruptions too); or a list of names.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

from ._batch import check_crops, check_rng, crop_to_uint8

DEFAULT_OPS = ("autocontrast", "equalize", "posterize", "solarize")
COLOUR_OPS = ("color", "contrast", "brightness", "sharpness")
ALL_OPS = DEFAULT_OPS + COLOUR_OPS


def _int_level(level: float, maxval: int) -> int:
    return int(level * maxval / 10)


def _float_level(level: float, maxval: float) -> float:
    return float(level) * maxval / 10.0


def augmix_op(image: np.ndarray, op: str, level: float) -> np.ndarray:
    """One AugMix operation on a uint8 H x W x 3 RGB image; ``level`` in (0.1, severity)
    on the official 0..10 scale (autocontrast / equalize ignore it)."""
    pil = Image.fromarray(image)
    if op == "autocontrast":
        out = ImageOps.autocontrast(pil)
    elif op == "equalize":
        out = ImageOps.equalize(pil)
    elif op == "posterize":
        out = ImageOps.posterize(pil, 4 - _int_level(level, 4))
    elif op == "solarize":
        out = ImageOps.solarize(pil, 256 - _int_level(level, 256))
    elif op in COLOUR_OPS:
        enhancer = {"color": ImageEnhance.Color, "contrast": ImageEnhance.Contrast,
                    "brightness": ImageEnhance.Brightness, "sharpness": ImageEnhance.Sharpness}[op]
        out = enhancer(pil).enhance(_float_level(level, 1.8) + 0.1)
    else:
        raise ValueError(f"augmix: unknown op {op!r}; choose from {', '.join(ALL_OPS)}")
    return np.asarray(out, dtype=np.uint8)


def _ops(ops: str | Sequence[str]) -> tuple[str, ...]:
    if ops == "default":
        return DEFAULT_OPS
    if ops == "all":
        return ALL_OPS
    names = (ops,) if isinstance(ops, str) else tuple(ops)
    unknown = [o for o in names if o not in ALL_OPS]
    if unknown or not names:
        raise ValueError(f"AugMix: unknown op {unknown[0] if unknown else None!r}; use 'default', "
                         f"'all' or names from {', '.join(ALL_OPS)}")
    return names


class AugMix:
    """``aug(images, rng)``: one AugMix image per crop (see the module docstring).

    Args:
        width: number of chains k (3, AugMix's default).
        depth: operations per chain; -1 (default) draws 1..3 per chain.
        severity: magnitude bound on the official 0..10 scale (3, the official default).
        alpha: Dirichlet and Beta concentration (1).
        ops: 'default' (pixel ops of AugMix's default list), 'all', or a list of names.
    """

    def __init__(self, width: int = 3, depth: int = -1, severity: float = 3.0,
                 alpha: float = 1.0, ops: str | Sequence[str] = "default") -> None:
        if int(width) < 1:
            raise ValueError(f"AugMix: width must be >= 1, got {width!r}")
        if int(depth) == 0 or int(depth) < -1:
            raise ValueError(f"AugMix: depth must be -1 (1..3 at random) or >= 1, got {depth!r}")
        if not 0.1 <= float(severity) <= 10.0:
            raise ValueError(f"AugMix: severity must be in [0.1, 10], got {severity!r}")
        if not float(alpha) > 0:
            raise ValueError(f"AugMix: alpha must be > 0, got {alpha!r}")
        self.width, self.depth = int(width), int(depth)
        self.severity, self.alpha = float(severity), float(alpha)
        self.ops = _ops(ops)

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, float, list[list[tuple[str, float]]]]:
        """(chain weights (width,), skip weight m, per chain [(op, level), ...])."""
        weights = rng.dirichlet([self.alpha] * self.width)
        m = float(rng.beta(self.alpha, self.alpha))
        chains = []
        for _ in range(self.width):
            depth = self.depth if self.depth > 0 else int(rng.integers(1, 4))
            chains.append([(self.ops[int(rng.integers(len(self.ops)))],
                            float(rng.uniform(0.1, self.severity))) for _ in range(depth)])
        return weights, m, chains

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        check_crops(images, "AugMix")
        check_rng(rng, "AugMix")
        out = images.clone()
        with torch.no_grad():
            for i in range(images.shape[0]):
                weights, m, chains = self.draw(rng)
                base = crop_to_uint8(images[i])
                mixed = np.zeros(base.shape, np.float64)
                for w, chain in zip(weights, chains):
                    image = base
                    for op, level in chain:
                        image = augmix_op(image, op, level)
                    mixed += w * image.astype(np.float64) / 255.0
                chained = torch.from_numpy(mixed.astype(np.float32)).permute(2, 0, 1)
                chained = chained.to(device=images.device, dtype=images.dtype)
                out[i] = ((1.0 - m) * images[i] + m * chained).clamp_(0.0, 1.0)
        return out
