"""Torch versions of the random-field corruptions (fog, snow, elastic, spatter-mud).

Every function takes float tensors and one ``torch.Generator`` (on the tensor's device)
per image; the random numbers come from torch, so they differ from numpy's while the
distribution, the algorithm and the constants are those of imagecorruptions 1.1.2.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from . import ops
from ..params import SPATTER_MUD_RGB


def _uniform(shape, low: float, high: float, gen: torch.Generator, device, dtype=torch.float64):
    return torch.rand(shape, generator=gen, device=device, dtype=dtype) * (high - low) + low


def plasma_fractal(mapsize: int, wibbledecay: float, gen: torch.Generator,
                   device: torch.device) -> torch.Tensor:
    """Diamond-square height map (mapsize x mapsize, float32 in [0, 1]) as the reference:
    a float32 map filled with float64 means + uniform wibble, same step order."""
    grid = torch.empty((mapsize, mapsize), dtype=torch.float32, device=device)
    grid[0, 0] = 0
    stepsize, wibble = mapsize, 100.0

    def wibbled_mean(array: torch.Tensor) -> torch.Tensor:
        return array.double() / 4 + wibble * _uniform(array.shape, -wibble, wibble, gen, device)

    while stepsize >= 2:
        half = stepsize // 2
        corner = grid[0::stepsize, 0::stepsize]
        square = corner + torch.roll(corner, shifts=-1, dims=0)
        square = square + torch.roll(square, shifts=-1, dims=1)
        grid[half::stepsize, half::stepsize] = wibbled_mean(square).float()
        dr = grid[half::stepsize, half::stepsize]
        ul = grid[0::stepsize, 0::stepsize]
        lt = (dr + torch.roll(dr, 1, dims=0)) + (ul + torch.roll(ul, -1, dims=1))
        grid[0::stepsize, half::stepsize] = wibbled_mean(lt).float()
        tt = (dr + torch.roll(dr, 1, dims=1)) + (ul + torch.roll(ul, -1, dims=0))
        grid[half::stepsize, 0::stepsize] = wibbled_mean(tt).float()
        stepsize //= 2
        wibble /= wibbledecay
    grid = grid - grid.min()
    return grid / grid.max()


def fog(x: torch.Tensor, params, gens) -> torch.Tensor:
    """x: N x 3 x H x W float64 in [0, 1] -> [0, 1] before clipping, per image plasma."""
    strength, decay = params
    h, w = x.shape[-2:]
    mapsize = 1 << (max(h, w, 3) - 1).bit_length()
    out = []
    for img, gen in zip(x, gens):
        max_val = img.max()
        plasma = plasma_fractal(mapsize, decay, gen, x.device)[:h, :w]
        img = img + strength * plasma.double()
        out.append(img * max_val / (max_val + strength))
    return torch.stack(out)


def snow(x: torch.Tensor, params, gens) -> torch.Tensor:
    """x: N x 3 x H x W float32 in [0, 1]; returns the un-clipped snowy image (float64)."""
    mean, std, zoom, threshold, radius, sigma, blend = params
    n, _, h, w = x.shape
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)  # cv2 RGB2GRAY
    base = blend * x + (1 - blend) * torch.maximum(x, gray * 1.5 + 0.5)
    out = []
    for img, gen in zip(base, gens):
        layer = torch.randn((h, w), generator=gen, device=x.device, dtype=torch.float64) * std + mean
        layer = ops.clipped_zoom(layer, zoom, crop_to_input=False)
        layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
        angle = float(_uniform((1,), -135.0, -45.0, gen, x.device).item())
        layer = ops.motion_blur(layer, radius, sigma, angle)
        layer = torch.round(layer * 255).to(torch.uint8).double() / 255.0
        layer = layer[:h, :w]
        out.append(img.double() + layer + torch.rot90(layer, 2, dims=(0, 1)))
    return torch.stack(out)


def elastic(x: torch.Tensor, alpha: float, gens, sigma_fraction: float,
            shift_fraction: float) -> torch.Tensor:
    """x: N x 3 x H x W float32 in [0, 1]; smoothed uniform displacement fields, bilinear
    resampling with symmetric borders (float32 result, as the reference)."""
    n, c, h, w = x.shape
    sigma = (h * sigma_fraction, w * sigma_fraction)
    max_shift = h * shift_fraction  # the reference uses the height for both axes
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=torch.float64),
                            torch.arange(w, device=x.device, dtype=torch.float64), indexing="ij")
    out = []
    for img, gen in zip(x, gens):
        fields = torch.stack([_uniform((h, w), -max_shift, max_shift, gen, x.device)
                              for _ in range(2)])[None]
        dx, dy = (ops.gaussian_filter(fields, sigma, mode="reflect", truncate=3) * alpha).float()[0]
        warped = ops.bilinear_reflect(img.double(), ys + dy.double(), xs + dx.double())
        out.append(warped.float())
    return torch.stack(out)


def spatter_mud(x: torch.Tensor, params, gens) -> torch.Tensor:
    """Severities 4-5 of spatter (mud): x N x 3 x H x W float32 in [0, 1] -> float64."""
    mean, std, sigma, threshold, mask_sigma, _mode = params
    n, _, h, w = x.shape
    colour = torch.tensor(SPATTER_MUD_RGB, dtype=torch.float64, device=x.device).view(3, 1, 1)
    out = []
    for img, gen in zip(x, gens):
        liquid = torch.randn((h, w), generator=gen, device=x.device, dtype=torch.float64) * std + mean
        liquid = ops.gaussian_filter(liquid[None, None], (sigma, sigma))[0, 0]
        liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
        mask = (liquid > threshold).float()
        mask = ops.gaussian_filter(mask[None, None], (mask_sigma, mask_sigma))[0, 0]
        mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask)
        out.append((img * (1 - mask)).double() + colour * mask.double())
    return torch.stack(out)


@lru_cache(maxsize=24)
def frost_texture_on(index: int, height: int, width: int, device: str) -> torch.Tensor:
    """Frost texture ``index`` rescaled for an H x W image exactly as the numpy path does
    (cv2 bicubic, once per size), as an RGB uint8 3 x h x w tensor cached on ``device``."""
    from ..weather import _frost_rescaled

    bgr = _frost_rescaled(index, height, width)
    return torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1).contiguous().to(device)


def frost_draw(gen: torch.Generator, height: int, width: int, device) -> tuple[int, int, int]:
    """(texture index, crop top, crop left), uniform as the reference's randint calls."""
    index = int(torch.randint(6, (1,), generator=gen, device=device).item())
    tex = frost_texture_on(index, height, width, str(device))
    top = int(torch.randint(tex.shape[1] - height, (1,), generator=gen, device=device).item())
    left = int(torch.randint(tex.shape[2] - width, (1,), generator=gen, device=device).item())
    return index, top, left


def frost(images: torch.Tensor, params, gens, draw=frost_draw) -> torch.Tensor:
    """``c0 * x + c1 * crop`` in float64 (x uint8-valued), un-clipped."""
    image_weight, frost_weight = params
    _, _, h, w = images.shape
    out = []
    for img, gen in zip(images, gens):
        index, top, left = draw(gen, h, w, images.device)
        tex = frost_texture_on(index, h, w, str(images.device))
        crop = tex[:, top:top + h, left:left + w].to(torch.float64)
        out.append(image_weight * img.to(torch.float64) + frost_weight * crop)
    return torch.stack(out)
