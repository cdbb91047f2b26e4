"""``corrupt_batch``: the 22 corruptions on an N x 3 x H x W uint8 tensor, on its device.

For on-the-fly corruption inside a GPU evaluation loop. Same severity tables
(``robustpose.corruptions.params``) and algorithms as the numpy path; the result stays
on the input's device.

Native torch (run on the tensor's device, CUDA included):
    gaussian_noise, shot_noise, impulse_noise, speckle_noise, defocus_blur, motion_blur,
    zoom_blur, gaussian_blur, snow, frost, fog, brightness, contrast, saturate,
    elastic_transform, pixelate, spatter, and PoseBench's color_quant, low_light, mask
    (_torch/posebench.py).
    (frost: each texture is rescaled with cv2 once per image size, as the numpy path, and
    cached on the device; crop and blend run on the device. spatter 1-3: OpenCV's Canny,
    distance transform and histogram equalisation rebuilt in torch, _torch/spatter.py.)
Fallback to the numpy ``corrupt`` per image on the CPU (copied to host and back):
    glass_blur (its pixel shuffle is an inherently sequential chain of swaps),
    jpeg_compression (libjpeg's codec).

Agreement with the numpy path (tests/test_corruptions_batch.py, docs/writing-c-datasets.md):
the deterministic ones (defocus_blur, zoom_blur, gaussian_blur, brightness, contrast,
saturate, pixelate) reproduce it within 1 grey level with >= 99% identical pixels (and
imagecorruptions' output bit for bit in the tests); motion_blur, frost and spatter do too
for the same random draws (angle; texture and crop; Gaussian field). The random ones draw their numbers from a
``torch.Generator`` seeded with ``seeds[i]`` on the tensor's device, so they match the
numpy path in distribution (residual mean/std, changed fraction, PSNR), not pixel for
pixel, and a CPU run and a CUDA run with the same seeds differ (each is reproducible).
Fallback corruptions give exactly the numpy path's bytes for the same seeds.
PoseBench's three: color_quant gives the numpy path's bytes; low_light draws its noise from
the ``torch.Generator`` (agreement in distribution, as the noises); mask draws its rectangles
from ``RandomState(seeds[i])`` as the numpy path does and gives its bytes, on any device.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ._torch import ops
from ._torch import posebench as _posebench
from ._torch import weather
from ._torch.spatter import spatter_water
from .params import (ALL_CORRUPTIONS, ELASTIC_MAX_SHIFT_FRACTION, ELASTIC_SIGMA_FRACTION,
                     SEVERITY_PARAMS)

#: corruptions computed with torch ops on the input's device
NATIVE_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur",
    "motion_blur", "zoom_blur", "gaussian_blur", "snow", "frost", "fog", "brightness",
    "contrast", "saturate", "elastic_transform", "pixelate", "spatter",
    "color_quant", "low_light", "mask",
)
#: corruptions computed by the numpy ``corrupt`` per image on the CPU
FALLBACK_CORRUPTIONS: tuple[str, ...] = ("glass_blur", "jpeg_compression")

Kernel = Callable[[torch.Tensor, object, list], torch.Tensor]


def _to_uint8(x255: torch.Tensor) -> torch.Tensor:
    """The reference's final ``np.uint8(...)``: truncation of values already in [0, 255]."""
    return x255.clamp(0, 255).to(torch.uint8)


def _unit(images: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return images.to(dtype) / 255.0


def _per_image(gens, fn) -> torch.Tensor:
    return torch.stack([fn(g) for g in gens])


# ----------------------------------------------------------------------------- noise

def _gaussian_noise(images, c, gens):
    x = _unit(images)
    noise = _per_image(gens, lambda g: torch.randn(x.shape[1:], generator=g, device=x.device,
                                                   dtype=x.dtype))
    return _to_uint8((x + noise * c).clamp(0, 1) * 255)


def _shot_noise(images, c, gens):
    x = _unit(images)
    counts = torch.stack([torch.poisson(img * c, generator=g) for img, g in zip(x, gens)])
    return _to_uint8((counts / float(c)).clamp(0, 1) * 255)


def _impulse_noise(images, amount, gens):
    """skimage ``random_noise(mode='s&p', amount, salt_vs_pepper=0.5)`` per channel value."""
    x = _unit(images)

    def draw(g):
        flipped = torch.rand(x.shape[1:], generator=g, device=x.device, dtype=x.dtype) < amount
        salted = torch.rand(x.shape[1:], generator=g, device=x.device, dtype=x.dtype) < 0.5
        return torch.stack((flipped, salted))

    masks = _per_image(gens, draw)
    flipped, salted = masks[:, 0], masks[:, 1]
    x = torch.where(flipped & salted, torch.ones_like(x), x)
    x = torch.where(flipped & ~salted, torch.zeros_like(x), x)
    return _to_uint8(x * 255)


def _speckle_noise(images, c, gens):
    x = _unit(images)
    noise = _per_image(gens, lambda g: torch.randn(x.shape[1:], generator=g, device=x.device,
                                                   dtype=x.dtype))
    return _to_uint8((x + x * noise * c).clamp(0, 1) * 255)


# ----------------------------------------------------------------------------- blur

def _defocus_blur(images, c, gens):
    radius, alias = c
    return _to_uint8(ops.defocus(_unit(images), radius, alias).clamp(0, 1) * 255)


def _gaussian_blur(images, sigma, gens):
    x = ops.gaussian_filter(_unit(images), (sigma, sigma), mode="nearest", truncate=4.0)
    return _to_uint8(x.clamp(0, 1) * 255)


def _motion_blur(images, c, gens):
    radius, sigma = c
    x = images.to(torch.float64)
    out = []
    for img, g in zip(x, gens):
        angle = float((torch.rand((1,), generator=g, device=x.device, dtype=torch.float64)
                       * 90.0 - 45.0).item())
        out.append(ops.motion_blur(img, radius, sigma, angle))
    return _to_uint8(torch.stack(out))


def _zoom_blur(images, factors, gens):
    x = _unit(images, torch.float32)  # float32 throughout, as the reference
    acc = torch.zeros_like(x)
    xd = x.double()
    for z in factors:
        acc = acc + ops.clipped_zoom(xd, z).float()
    x = (x + acc) / (len(factors) + 1)
    return _to_uint8(x.clamp(0, 1) * 255)


# ----------------------------------------------------------------------------- weather

def _snow(images, c, gens):
    return _to_uint8(weather.snow(_unit(images, torch.float32), c, gens).clamp(0, 1) * 255)


def _fog(images, c, gens):
    return _to_uint8(weather.fog(_unit(images), c, gens).clamp(0, 1) * 255)


def _brightness(images, c, gens):
    hsv = ops.rgb_to_hsv(_unit(images))
    hsv = torch.stack((hsv[:, 0], hsv[:, 1], (hsv[:, 2] + c).clamp(0, 1)), dim=1)
    return _to_uint8(ops.hsv_to_rgb(hsv).clamp(0, 1) * 255)


def _frost(images, c, gens):
    return _to_uint8(weather.frost(images, c, gens).clamp(0, 255))


def _spatter(images, c, gens):
    x = _unit(images, torch.float32)
    if c[5] == 1:  # mud
        return _to_uint8(weather.spatter_mud(x, c, gens).clamp(0, 1) * 255)
    h, w = x.shape[-2:]
    fields = [torch.randn((h, w), generator=g, device=x.device, dtype=torch.float64) * c[1] + c[0]
              for g in gens]
    return _to_uint8(spatter_water(x, c, fields))


# ----------------------------------------------------------------------------- digital

def _contrast(images, c, gens):
    x = _unit(images)
    means = x.mean(dim=(2, 3), keepdim=True)
    return _to_uint8(((x - means) * c + means).clamp(0, 1) * 255)


def _saturate(images, c, gens):
    scale, offset = c
    hsv = ops.rgb_to_hsv(_unit(images))
    hsv = torch.stack((hsv[:, 0], (hsv[:, 1] * scale + offset).clamp(0, 1), hsv[:, 2]), dim=1)
    return _to_uint8(ops.hsv_to_rgb(hsv).clamp(0, 1) * 255)


def _elastic_transform(images, alpha, gens):
    x = weather.elastic(_unit(images, torch.float32), alpha, gens, ELASTIC_SIGMA_FRACTION,
                        ELASTIC_MAX_SHIFT_FRACTION)
    return _to_uint8(x.clamp(0, 1) * 255)


def _pixelate(images, c, gens):
    h, w = images.shape[-2:]
    x = images.to(torch.float64)
    small = ops.pillow_box_resize(x, int(w * c), int(h * c))
    return ops.pillow_nearest_resize(small, w, h).to(torch.uint8)


_KERNELS: dict[str, Kernel] = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise, "speckle_noise": _speckle_noise,
    "defocus_blur": _defocus_blur, "motion_blur": _motion_blur, "zoom_blur": _zoom_blur,
    "gaussian_blur": _gaussian_blur, "snow": _snow, "frost": _frost, "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast, "saturate": _saturate, "elastic_transform": _elastic_transform,
    "pixelate": _pixelate, "spatter": _spatter,
    "color_quant": _posebench.color_quant, "low_light": _posebench.low_light,
}
#: kernels that need the seeds themselves (they draw on the host with the numpy path's draws)
_SEEDED_KERNELS = {"mask": _posebench.mask}
assert set(_KERNELS) | set(_SEEDED_KERNELS) == set(NATIVE_CORRUPTIONS)
assert set(NATIVE_CORRUPTIONS) | set(FALLBACK_CORRUPTIONS) == set(ALL_CORRUPTIONS)


def is_native(corruption_name: str) -> bool:
    """Whether ``corrupt_batch`` computes this corruption with torch ops (at every severity)."""
    return corruption_name in NATIVE_CORRUPTIONS


def _numpy_fallback(images: torch.Tensor, name: str, severity: int,
                    seeds: Sequence[int]) -> torch.Tensor:
    from .api import corrupt

    host = images.permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([corrupt(np.ascontiguousarray(img), corruption_name=name, severity=severity,
                            seed=int(seed)) for img, seed in zip(host, seeds)])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(images.device)


def _check(images: torch.Tensor, name: str, severity: int, seeds) -> list[int]:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4 \
            or images.shape[1] != 3:
        got = (f"{type(images).__name__} {getattr(images, 'dtype', '')} "
               f"{tuple(getattr(images, 'shape', ()))}")
        raise ValueError(f"corrupt_batch expects a uint8 tensor N x 3 x H x W (RGB), got {got}")
    if images.shape[-1] < 32 or images.shape[-2] < 32:
        raise ValueError(f"corrupt_batch needs images of at least 32 x 32 px, got "
                         f"{images.shape[-2]} x {images.shape[-1]}")
    if name not in ALL_CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose from {', '.join(ALL_CORRUPTIONS)}")
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    if isinstance(seeds, torch.Tensor):
        seeds = seeds.tolist()
    if isinstance(seeds, (int, np.integer)) or len(seeds) != images.shape[0]:
        raise ValueError(f"seeds must hold one int per image ({images.shape[0]}), got {seeds!r}")
    return [int(s) for s in seeds]


def corrupt_batch(images: torch.Tensor, corruption_name: str, severity: int = 1,
                  seeds: Sequence[int] | torch.Tensor = ()) -> torch.Tensor:
    """Corrupt a batch: ``images`` uint8 N x 3 x H x W (RGB, H, W >= 32) on any device.

    ``seeds``: one int per image; image ``i`` uses ``torch.Generator(device).manual_seed(
    seeds[i])`` (native) or ``corrupt(..., seed=seeds[i])`` (fallback), so a result does not
    depend on the batch it came in. Returns uint8 N x 3 x H x W on the input's device.
    See the module docstring for which corruptions are native and which fall back.
    """
    seed_list = _check(images, corruption_name, severity, seeds)
    if images.shape[0] == 0:
        return images.clone()
    if not is_native(corruption_name):
        return _numpy_fallback(images, corruption_name, severity, seed_list)
    if corruption_name in _SEEDED_KERNELS:
        with torch.no_grad():
            return _SEEDED_KERNELS[corruption_name](images, severity, seed_list).contiguous()
    params = SEVERITY_PARAMS[corruption_name][severity - 1]
    gens = [torch.Generator(device=images.device).manual_seed(s % (2**64)) for s in seed_list]
    with torch.no_grad():
        return _KERNELS[corruption_name](images, params, gens).contiguous()
