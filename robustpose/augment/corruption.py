"""Test-time corruptions used as a training augmentation (the AdvMix "Transfer" row).

Per crop (batch order): a corruption name and a severity in 1..5 drawn from the generator,
then a 32-bit seed for the corruption itself, all from one ``np.random.Generator``; the
crop goes through :func:`robustpose.corruptions.corrupt` as uint8. Crops must be at least
32 px a side (the corruption API's lower bound).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from robustpose.corruptions import corrupt, get_corruption_names

from ._batch import check_crops, check_rng, map_uint8

#: the Transfer row's corruptions: one per family
TRANSFER_CORRUPTIONS = ("gaussian_noise", "defocus_blur", "snow", "contrast")


class CorruptionAugment:
    """``aug(images, rng)``: each crop corrupted by one of ``names`` at a random severity.

    Args:
        names: corruption names (``robustpose.corruptions.get_corruption_names('all')``).
        severities: the severities to draw from (uniformly).
        prob: probability that a crop is corrupted at all (1 = always).
    """

    def __init__(self, names: Sequence[str] = TRANSFER_CORRUPTIONS,
                 severities: Sequence[int] = (1, 2, 3, 4, 5), prob: float = 1.0) -> None:
        known = set(get_corruption_names("all"))
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise ValueError(f"CorruptionAugment: unknown corruption {unknown[0] if unknown else None!r}; "
                             f"choose from {', '.join(get_corruption_names('all'))}")
        bad = [s for s in severities if int(s) not in (1, 2, 3, 4, 5)]
        if bad or not severities:
            raise ValueError(f"CorruptionAugment: severities must be in 1..5, got {list(severities)}")
        self.names = tuple(names)
        self.severities = tuple(int(s) for s in severities)
        self.prob = float(prob)

    def draw(self, rng: np.random.Generator) -> tuple[str, int, int] | None:
        """(name, severity, seed), or None when the crop is left as is."""
        if self.prob < 1.0 and rng.random() >= self.prob:
            return None
        name = self.names[int(rng.integers(len(self.names)))]
        severity = self.severities[int(rng.integers(len(self.severities)))]
        return name, severity, int(rng.integers(2**32))

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        check_crops(images, "CorruptionAugment")
        check_rng(rng, "CorruptionAugment")

        def one(image: np.ndarray, g: np.random.Generator) -> np.ndarray | None:
            draw = self.draw(g)
            if draw is None:
                return None
            name, severity, seed = draw
            return corrupt(image, name, severity=severity, seed=seed)
        return map_uint8(images, rng, one)
