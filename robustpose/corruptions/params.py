"""Severity tables and names of the 19 ImageNet-C corruptions (imagecorruptions 1.1.2) and
of the three PoseBench adds (colour quantisation, low light, mask).

Every constant of the 19 is copied from imagecorruptions 1.1.2 (identical in the
imagecorruptions-imaug 1.1.5 fork); the PoseBench three are described where they are defined
(``POSEBENCH_EXTRA``). ``SEVERITY_PARAMS[name][s - 1]`` is the parameter
(tuple) of severity ``s`` in 1..5. The numpy path (``robustpose.corruptions``) and the
torch path (``robustpose.corruptions.batch``) both read these tables.
"""
from __future__ import annotations

import numpy as np

#: The order of imagecorruptions' ``corruption_tuple``: ``corruption_number`` indexes it.
CORRUPTION_NAMES: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "spatter", "saturate",
)

#: The families of the 15 benchmark corruptions, in ``CORRUPTION_NAMES`` order.
FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": CORRUPTION_NAMES[0:3],
    "blur": CORRUPTION_NAMES[3:7],
    "weather": CORRUPTION_NAMES[7:11],
    "digital": CORRUPTION_NAMES[11:15],
}

#: The three PoseBench corruptions ImageNet-C lacks (Ma et al. 2024, arXiv 2406.14367): colour
#: quantisation and low light as 3D Common Corruptions' ``color_quant`` / ``low_light`` (Kar et
#: al. 2022, create_3dcc/create_non3d.py), and mask (occluding rectangles, our parameters; see
#: docs/corruptions.md). They are not in ``CORRUPTION_NAMES`` (imagecorruptions' 19, which
#: ``corruption_number`` indexes and ``'all'`` selects).
POSEBENCH_EXTRA: tuple[str, ...] = ("color_quant", "low_light", "mask")

#: Every corruption the engines implement: the 19, then the PoseBench three.
ALL_CORRUPTIONS: tuple[str, ...] = CORRUPTION_NAMES + POSEBENCH_EXTRA

#: PoseBench's 10 in its paper's order (#1..#10), by its four groups.
POSEBENCH_GROUPS: dict[str, tuple[str, ...]] = {
    "blur_noise": ("motion_blur", "gaussian_noise", "impulse_noise"),
    "compression": ("pixelate", "jpeg_compression", "color_quant"),
    "lighting": ("brightness", "low_light", "contrast"),
    "occlusion": ("mask",),
}
POSEBENCH: tuple[str, ...] = tuple(n for names in POSEBENCH_GROUPS.values() for n in names)

#: Subsets accepted by ``get_corruption_names``.
SUBSETS: dict[str, tuple[str, ...]] = {
    "common": CORRUPTION_NAMES[:15],
    "validation": CORRUPTION_NAMES[15:],
    "all": CORRUPTION_NAMES,
    **FAMILIES,
}

#: Family of every corruption (the 4 validation ones by their kind).
FAMILY_OF: dict[str, str] = {
    **{name: fam for fam, names in FAMILIES.items() for name in names},
    "speckle_noise": "noise", "gaussian_blur": "blur",
    "spatter": "weather", "saturate": "digital",
    # the PoseBench three by their kind (brightness is ImageNet-C's 'weather')
    "color_quant": "digital", "low_light": "weather", "mask": "occlusion",
}

_ZOOM_FACTORS = (
    (1.0, 1.11, 0.01), (1.0, 1.16, 0.01), (1.0, 1.21, 0.02), (1.0, 1.26, 0.02), (1.0, 1.31, 0.03),
)

#: name -> 5 per-severity parameters (entry i is severity i + 1), meaning per corruption:
#: gaussian_noise: noise std (image in [0, 1]); shot_noise: Poisson photons per unit;
#: impulse_noise: salt-and-pepper amount; speckle_noise: multiplicative noise std;
#: defocus_blur: (disk radius px, alias-blur sigma); glass_blur: (gaussian sigma,
#: max pixel displacement, iterations); motion_blur: (radius px, sigma px);
#: zoom_blur: tuple of zoom factors (``np.arange(start, stop, step)`` of 1.1.2);
#: gaussian_blur: sigma px; snow: (mean, std, zoom, threshold, blur radius, blur sigma,
#: blend); frost: (image weight, frost weight); fog: (strength, wibble decay);
#: brightness: V offset (HSV); contrast: factor; saturate: (S scale, S offset);
#: elastic_transform: alpha (displacement scale, px at unit field); pixelate: scale;
#: jpeg_compression: Pillow JPEG quality; spatter: (mean, std, sigma, threshold,
#: intensity, mode 0 = water / 1 = mud).
SEVERITY_PARAMS: dict[str, tuple] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
    "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": tuple(tuple(float(z) for z in np.arange(*spec)) for spec in _ZOOM_FACTORS),
    "gaussian_blur": (1, 2, 3, 4, 6),
    "snow": (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "fog": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
    "elastic_transform": (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    "jpeg_compression": (25, 18, 15, 10, 7),
    "spatter": (
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
}

#: Frost texture files of ImageNet-C, indexed by the reference's ``np.random.randint(6)``.
FROST_FILES: tuple[str, ...] = (
    "frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg",
)

#: Elastic transform: smoothing sigma and max displacement as fractions of the image size.
ELASTIC_SIGMA_FRACTION = 0.01
ELASTIC_MAX_SHIFT_FRACTION = 0.005

#: Colours (RGB / 255) used by spatter: water (pale turquoise, in BGR order as the
#: reference builds it) and mud (brown).
SPATTER_WATER_BGR = (175 / 255.0, 238 / 255.0, 238 / 255.0)
SPATTER_MUD_RGB = (63 / 255.0, 42 / 255.0, 20 / 255.0)

#: color_quant: bits kept per channel (3DCC: ``PIL.ImageOps.posterize(x, 6 - severity)``).
#: low_light: top of the output range ``d`` of 3DCC's ``imadjust(x, min, max, 0, d, gamma=2)``.
#: mask: (rectangles, smallest side, largest side), sides as fractions of the image's width
#: (for widths) and height (for heights); our choice, PoseBench's parameters are not public.
SEVERITY_PARAMS.update({
    "color_quant": (5, 4, 3, 2, 1),
    "low_light": (0.60, 0.50, 0.40, 0.30, 0.20),
    "mask": ((2, 0.10, 0.25), (4, 0.10, 0.25), (6, 0.10, 0.25), (8, 0.10, 0.25), (10, 0.10, 0.25)),
})

#: low_light's noise after the darkening: 3DCC's ``poisson_gaussian_noise(x, severity=3)`` at
#: every severity, i.e. Poisson with ``10 * 12`` photons per unit, then Gaussian with std
#: ``0.1 * 0.18`` (written as the reference computes them, so the floats are the same).
LOW_LIGHT_GAMMA = 2.0
LOW_LIGHT_PHOTONS = 10 * 12
LOW_LIGHT_READ_STD = 0.1 * 0.18

assert set(SEVERITY_PARAMS) == set(ALL_CORRUPTIONS)
assert set(POSEBENCH) <= set(ALL_CORRUPTIONS) and len(POSEBENCH) == 10
assert all(len(v) == 5 for v in SEVERITY_PARAMS.values())
