"""``corrupt`` and ``get_corruption_names``: imagecorruptions' API, with explicit seeds.

Input rules (see docs/corruptions.md):

- uint8 H x W x 3 RGB is the contract; the output has the input's shape and dtype.
- Grayscale uint8 H x W or H x W x 1 is replicated to RGB, corrupted, and returned in the
  input's shape as the luma of the result (ITU-R BT.601, OpenCV ``RGB2GRAY``).
  (imagecorruptions returns H x W x 3 for such input.)
- Height and width must be in [32, 8192] (imagecorruptions' lower bound; the upper bound
  keeps fog's plasma fractal and the float64 intermediates within a few GB).
  Other sizes raise :class:`ImageSizeError` (a ValueError carrying the size), which the
  datasets turn into a skip of that one image, named (robustpose.data.CorruptedImages).
- Anything else (RGBA, uint16, float, bool, other ranks, non-arrays) raises ValueError
  naming what was given and what is accepted.
"""
from __future__ import annotations

import numbers

import cv2
import numpy as np

from . import blur, digital, noise, posebench, weather  # noqa: F401  (fill the registry)
from .params import ALL_CORRUPTIONS, CORRUPTION_NAMES, SUBSETS
from .registry import CORRUPTIONS, DETERMINISTIC

MIN_SIDE = 32
MAX_SIDE = 8192


class ImageSizeError(ValueError):
    """An image too small or too large to corrupt: ``height`` x ``width`` px outside
    [:data:`MIN_SIDE`, :data:`MAX_SIDE`] per side."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = int(height), int(width)
        self.problem = (f"image is {self.width}x{self.height} px (width x height); height and "
                        f"width must be in [{MIN_SIDE}, {MAX_SIDE}] to be corrupted")
        super().__init__(f"{self.problem} (resize or tile it)")


def get_corruption_names(subset: str = "common") -> list[str]:
    """Names of a subset: 'common' (15), 'validation' (4), 'all' (19), or a family
    ('noise', 'blur', 'weather', 'digital'), in imagecorruptions' order."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {sorted(SUBSETS)}, got {subset!r}")
    return list(SUBSETS[subset])


def resolve_rng(seed: object = None) -> np.random.RandomState:
    """The legacy ``RandomState`` the corruption draws from.

    - int k in [0, 2**32): ``RandomState(k)``, i.e. the stream imagecorruptions draws after
      ``np.random.seed(k)``;
    - ``RandomState``: used (and advanced) as is;
    - ``Generator``: a ``RandomState`` sharing its bit generator (advances the generator);
    - None: fresh OS entropy (not reproducible).
    The global numpy random state is never read or written.
    """
    _check_seed(seed)
    if seed is None:
        return np.random.RandomState()
    if isinstance(seed, np.random.RandomState):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.RandomState(seed.bit_generator)
    return np.random.RandomState(int(seed))


def _check_seed(seed: object) -> None:
    """Raise ValueError unless ``seed`` is None, a RandomState, a Generator or an int in
    [0, 2**32)."""
    if seed is None or isinstance(seed, (np.random.RandomState, np.random.Generator)):
        return
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if not 0 <= int(seed) < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {seed}")
        return
    raise ValueError(
        f"seed must be an int, np.random.RandomState, np.random.Generator or None, "
        f"got {type(seed).__name__}"
    )


def validate_image(image: object) -> tuple[np.ndarray, tuple[int, ...]]:
    """Check ``image`` and return (C-contiguous uint8 H x W x 3 array, original shape).

    Raises :class:`ImageSizeError` for a side outside [MIN_SIDE, MAX_SIDE], ValueError
    for any other unsupported input."""
    accepted = "accepted: uint8 numpy array H x W x 3 (RGB), H x W or H x W x 1 (grey)"
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}; {accepted}")
    if image.dtype != np.uint8:
        hint = ""
        if np.issubdtype(image.dtype, np.floating):
            hint = "; for floats in [0, 1] use (np.clip(x, 0, 1) * 255).round().astype(np.uint8)"
        elif image.dtype == np.uint16:
            hint = "; for 16-bit images use (x >> 8).astype(np.uint8)"
        raise ValueError(f"image dtype must be uint8, got {image.dtype}{hint}; {accepted}")
    shape = image.shape
    if image.ndim == 2:
        rgb = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and shape[2] == 1:
        rgb = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and shape[2] == 3:
        rgb = np.ascontiguousarray(image)
    else:
        extra = " (RGBA? drop alpha with image[..., :3])" if image.ndim == 3 and shape[2] == 4 else ""
        raise ValueError(f"image shape {shape} not supported{extra}; {accepted}")
    height, width = shape[:2]
    if min(height, width) < MIN_SIDE or max(height, width) > MAX_SIDE:
        raise ImageSizeError(height, width)
    return rgb, shape


def _resolve_name(corruption_name: str | None, corruption_number: int) -> str:
    if corruption_name is not None:
        if not isinstance(corruption_name, str):
            raise ValueError(
                f"corruption_name must be a str, got {corruption_name!r}; note the argument order "
                f"corrupt(image, corruption_name, severity) (imagecorruptions: image, severity, name)"
            )
        if corruption_name not in CORRUPTIONS:
            raise ValueError(
                f"unknown corruption {corruption_name!r}; known: {', '.join(ALL_CORRUPTIONS)}"
            )
        return corruption_name
    if corruption_number == -1:
        raise ValueError("either corruption_name or corruption_number must be passed")
    if not isinstance(corruption_number, numbers.Integral) or not 0 <= corruption_number < 19:
        raise ValueError(f"corruption_number must be an int in [0, 18], got {corruption_number!r}")
    return CORRUPTION_NAMES[int(corruption_number)]


def corrupt(
    image: np.ndarray,
    corruption_name: str | None = None,
    severity: int = 1,
    corruption_number: int = -1,
    seed: object = None,
) -> np.ndarray:
    """Corrupt one image as imagecorruptions 1.1.2 does, reproducibly.

    Args:
        image: uint8 H x W x 3 RGB (or grey H x W / H x W x 1), 32..8192 px per side.
        corruption_name: one of :func:`get_corruption_names` ('all') or of PoseBench's
            three (``color_quant``, ``low_light``, ``mask``: ``params.POSEBENCH_EXTRA``); or
            give ``corruption_number`` (0..18, imagecorruptions' order; the 19 only).
        severity: 1..5.
        seed: int k (draws as imagecorruptions after ``np.random.seed(k)``), a
            ``RandomState`` / ``Generator`` (advanced), or None (fresh entropy).

    Returns:
        uint8 array of the input's shape.
    """
    name = _resolve_name(corruption_name, corruption_number)
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an int in [1, 5], got {severity!r}")
    rgb, shape = validate_image(image)
    if name in DETERMINISTIC:  # no draws: only check the seed's type (RandomState costs ~0.2 ms)
        _check_seed(seed)
        rng = None
    else:
        rng = resolve_rng(seed)
    out = CORRUPTIONS[name](rgb, int(severity), rng)
    if len(shape) == 3 and shape[2] == 3:
        return out
    grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    return grey.reshape(shape)
