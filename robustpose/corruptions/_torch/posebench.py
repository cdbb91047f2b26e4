"""Torch versions of PoseBench's three corruptions (``corruptions/posebench.py``), on the
tensor's device. ``images``: uint8 N x 3 x H x W; each returns uint8 of the same shape.

- color_quant: the same bit mask as the numpy path: equal bytes.
- low_light: the same float64 operations; the Poisson and Gaussian draws come from each
  image's ``torch.Generator``, so it matches the numpy path in distribution (as the other
  noises), not pixel for pixel.
- mask: the rectangles are drawn by the numpy path's own ``mask_rectangles`` from a
  ``RandomState(seed)`` (a few numbers per image, on the host) and painted on the device, so
  it gives the numpy path's bytes for the same seed, on any device.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..params import LOW_LIGHT_GAMMA, LOW_LIGHT_PHOTONS, LOW_LIGHT_READ_STD


def color_quant(images: torch.Tensor, bits: int, gens: Sequence[torch.Generator] = ()) -> torch.Tensor:
    """Keep the top ``bits`` bits of every value (``SEVERITY_PARAMS['color_quant']``)."""
    return torch.bitwise_and(images, (0xFF << (8 - bits)) & 0xFF)


def low_light(images: torch.Tensor, top: float, gens: Sequence[torch.Generator]) -> torch.Tensor:
    """Gamma-2 stretch of each image's [min, max] onto [0, top] (``SEVERITY_PARAMS['low_light']``),
    then Poisson (120 photons per unit) and Gaussian (std 0.018) noise; a flat image goes to
    black before the noise."""
    out = []
    for img, g in zip(images, gens):
        x = img.to(torch.float64) / 255.0
        low, high = x.min(), x.max()
        if bool(high == low):
            y = torch.zeros_like(x)
        else:
            y = (((x - low) / (high - low)) ** LOW_LIGHT_GAMMA) * (top - 0) + 0
            y = y * 255
        x = y / 255.0
        counts = torch.poisson(x * LOW_LIGHT_PHOTONS, generator=g)
        x = (counts / LOW_LIGHT_PHOTONS).clamp(0, 1) * 255
        x = x / 255.0
        noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype) * LOW_LIGHT_READ_STD
        out.append(((x + noise).clamp(0, 1) * 255).to(torch.uint8))
    return torch.stack(out)


def mask(images: torch.Tensor, severity: int, seeds: Sequence[int]) -> torch.Tensor:
    """The numpy path's rectangles for each seed, painted on the device."""
    from ..api import resolve_rng
    from ..posebench import mask_rectangles

    out = images.clone()
    h, w = images.shape[-2:]
    for i, seed in enumerate(seeds):
        for top, left, rh, rw, colour in mask_rectangles(h, w, severity, resolve_rng(int(seed))):
            fill = torch.tensor(colour, dtype=torch.uint8, device=images.device)
            out[i, :, top:top + rh, left:left + rw] = fill[:, None, None]
    return out
