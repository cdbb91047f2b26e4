"""The optional numba kernels of robustpose.corruptions return the same bytes as the numpy
paths they replace (which tests/test_corruptions.py checks against the reference)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustpose.corruptions import _jit, _kernels, blur, corrupt, digital, weather
from robustpose.corruptions.params import SEVERITY_PARAMS

pytestmark = pytest.mark.skipif(not _jit.HAVE_NUMBA, reason="numba not installed")


@pytest.fixture(scope="module")
def images(data_root: Path) -> list[np.ndarray]:
    """A 120 x 160 downscale of a real COCO image, a real odd-sized crop, and random noise."""
    path = sorted((data_root / "coco_val_mini" / "images").iterdir())[0]
    img = Image.open(path).convert("RGB")
    small = np.asarray(img.resize((160, 120), Image.BOX))
    crop = np.ascontiguousarray(np.asarray(img)[50:147, 30:163])
    noise = np.random.RandomState(3).randint(0, 256, (64, 90, 3)).astype(np.uint8)
    return [small, crop, noise]


@pytest.mark.parametrize("severity", range(1, 6))
def test_glass_loop_kernel_equals_pointer_chasing(images, severity):
    _, max_delta, iterations = SEVERITY_PARAMS["glass_blur"][severity - 1]
    for img in images:
        ours = blur.glass_shuffle(img.copy(), max_delta, iterations, np.random.RandomState(severity))
        numpy_path = blur.glass_shuffle(img.copy(), max_delta, iterations, np.random.RandomState(severity),
                                        use_jit=False)
        assert np.array_equal(ours, numpy_path)


def test_hsv_kernel_equals_numpy_on_every_colour():
    """brightness and saturate on all 2**24 RGB colours (a 4096 x 4096 image, in parts),
    two severities each."""
    codes = np.arange(1 << 24, dtype=np.int64)
    cube = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)
    cube = cube.reshape(4096, 4096, 3)
    for severity in (1, 5):
        for part in np.split(cube, 16):  # 256-row parts keep the numpy path's memory small
            assert np.array_equal(weather.brightness(part, severity, None),
                                  weather.brightness(part, severity, None, use_jit=False))
            assert np.array_equal(digital.saturate(part, severity, None),
                                  digital.saturate(part, severity, None, use_jit=False))


def test_elastic_warp_kernel_equals_numpy_including_far_reflections(images):
    """The fused warp against bilinear_reflect + finish, with shifts of up to 2.5 image
    sides (several reflections at the borders)."""
    rng = np.random.RandomState(0)
    for img in images:
        h, w = img.shape[:2]
        dx = rng.uniform(-2.5 * w, 2.5 * w, (h, w)).astype(np.float32)
        dy = rng.uniform(-2.5 * h, 2.5 * h, (h, w)).astype(np.float32)
        ours = np.empty_like(img)
        _jit.elastic_warp_u8(img, _kernels.UNIT_FLOAT32, dx, dy, ours)
        rows = np.arange(h, dtype=np.float64)[:, None] + dy
        cols = np.arange(w, dtype=np.float64)[None, :] + dx
        warped = digital.bilinear_reflect(np.array(img, dtype=np.float32) / 255.0, rows, cols)
        assert np.array_equal(ours, (np.clip(warped, 0, 1) * 255).astype(np.uint8))


@pytest.mark.parametrize("name", ["zoom_blur", "brightness", "elastic_transform", "glass_blur", "snow", "fog", "motion_blur", "saturate", "defocus_blur", "gaussian_blur", "contrast", "frost"])
def test_corrupt_same_bytes_with_and_without_numba(images, name, monkeypatch):
    for img in images[:2]:
        with_jit = [corrupt(img, name, s, seed=s) for s in range(1, 6)]
        monkeypatch.setattr(_jit, "HAVE_NUMBA", False)
        without = [corrupt(img, name, s, seed=s) for s in range(1, 6)]
        monkeypatch.setattr(_jit, "HAVE_NUMBA", True)
        for a, b in zip(with_jit, without):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("mapsize", [32, 256, 1024])
def test_plasma_step_kernel_equals_numpy(mapsize):
    for decay in (1.5, 2.0, 3.0):
        ours = weather.plasma_fractal(np.random.RandomState(mapsize), mapsize, decay)
        numpy_path = weather.plasma_fractal(np.random.RandomState(mapsize), mapsize, decay, use_jit=False)
        assert np.array_equal(ours, numpy_path)


@pytest.mark.parametrize("angle", [-135.0, -90.0, -44.5, 0.0, 30.0])
def test_shift_sum_kernel_equals_numpy(images, angle):
    from robustpose.corruptions._kernels import motion_blur_exact, motion_kernel

    for img in images:
        layer = img[..., 0] / 255.0  # 2-D float64, as snow's flake layer
        for x in (img, layer):
            taps = motion_kernel(15, 8, angle, x.shape[:2])
            assert np.array_equal(motion_blur_exact(x, taps), motion_blur_exact(x, taps, use_jit=False))
