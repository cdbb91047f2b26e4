"""``corrupt_batch`` (torch, N x 3 x H x W uint8) against the numpy path ``corrupt``.

Most tests go through ``corrupt_batch``. A few feed the torch building blocks
(``robustpose.corruptions._torch``) chosen inputs no public call can give: a fixed motion
angle, the numpy path's frost draws or spatter field (``corrupt_batch`` draws from a
``torch.Generator``, so its random numbers never equal numpy's), Canny thresholds other
than spatter's, and elastic shifts far past the borders.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustpose.corruptions import corrupt
from robustpose.corruptions._torch import ops
from robustpose.corruptions.params import SEVERITY_PARAMS
from robustpose.corruptions.batch import (FALLBACK_CORRUPTIONS, NATIVE_CORRUPTIONS, corrupt_batch,
                                          is_native)

DETERMINISTIC = ("defocus_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast",
                 "saturate", "pixelate")
RANDOM_NATIVE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "motion_blur",
                 "snow", "frost", "fog", "elastic_transform", "low_light", "mask")


@pytest.fixture(scope="module")
def clean(data_root: Path) -> list[np.ndarray]:
    """Two real COCO val images, downscaled (one of odd size) for speed; uint8 RGB HWC."""
    src = data_root / "coco_val_mini" / "images"
    sizes = {"000000000139.jpg": (96, 72), "000000034417.jpg": (81, 67)}
    out = []
    for name, size in sizes.items():
        with Image.open(src / name) as im:
            out.append(np.asarray(im.convert("RGB").resize(size, Image.BILINEAR)).copy())
    return out


def _batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruptions_match_the_numpy_path(clean, name):
    """Within 1 grey level and >= 99% identical (the numpy path's own contract)."""
    batch = _batch([clean[0], clean[0][::-1, ::-1].copy()])  # one batch: same size needed
    for severity in range(1, 6):
        got = _hwc(corrupt_batch(batch, name, severity, [0, 1]))
        for out, image in zip(got, _hwc(batch)):
            want = corrupt(np.ascontiguousarray(image), name, severity, seed=0)
            diff = np.abs(out.astype(int) - want.astype(int))
            assert diff.max() <= 1, (name, severity, diff.max())
            assert (diff == 0).mean() >= 0.99, (name, severity, (diff == 0).mean())


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruptions_equal_the_reference_bit_for_bit(clean, name):
    """Stronger than the 1-grey-level contract: imagecorruptions' own output, exactly."""
    reference = pytest.importorskip("imagecorruptions")
    image = clean[1]
    for severity in range(1, 6):
        got = _hwc(corrupt_batch(_batch([image]), name, severity, [0]))[0]
        np.testing.assert_array_equal(got, reference.corrupt(image, corruption_name=name,
                                                             severity=severity))


def test_motion_blur_taps_equal_the_reference_for_a_given_angle(clean):
    reference = pytest.importorskip("imagecorruptions.corruptions")
    image = clean[1]
    for angle in (-45.0, -12.3, 0.0, 31.7, -100.0):
        for radius, sigma in ((10, 3), (20, 15)):
            want = reference._motion_blur(image, radius=radius, sigma=sigma, angle=angle)
            got = ops.motion_blur(torch.from_numpy(image).permute(2, 0, 1).double(), radius,
                                  sigma, angle).permute(1, 2, 0).numpy()
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_frost_equals_the_numpy_path_for_the_same_texture_and_crop(clean):
    """Feed the torch kernel the numpy path's draws (legacy randint: texture, top, left)."""
    from robustpose.corruptions._torch import weather

    image = clean[0]
    for seed in (0, 1, 2, 3):
        def numpy_draw(gen, height, width, device, seed=seed):
            rs = np.random.RandomState(seed)
            index = rs.randint(6)
            tex = weather.frost_texture_on(index, height, width, str(device))
            return index, rs.randint(0, tex.shape[1] - height), rs.randint(0, tex.shape[2] - width)

        for severity in (1, 5):
            params = SEVERITY_PARAMS["frost"][severity - 1]
            got = weather.frost(_batch([image]), params, [None], draw=numpy_draw)
            got = _hwc(got.clamp(0, 255).to(torch.uint8))[0]
            np.testing.assert_array_equal(got, corrupt(image, "frost", severity, seed=seed))


def test_spatter_water_equals_the_numpy_path_for_the_same_field(clean):
    """Severities 1-3 rebuild OpenCV's Canny / distance transform / equalisation in torch;
    fed the numpy path's Gaussian field (its first draw), the bytes must be identical."""
    from robustpose.corruptions._torch.spatter import spatter_water

    image = clean[0]
    x = _batch([image]).float() / 255.0
    for severity in (1, 2, 3):
        params = SEVERITY_PARAMS["spatter"][severity - 1]
        for seed in (0, 1, 2):
            field = np.random.RandomState(seed).normal(size=image.shape[:2], loc=params[0],
                                                       scale=params[1])
            got = spatter_water(x, params, [torch.from_numpy(field)]).clamp(0, 255).to(torch.uint8)
            np.testing.assert_array_equal(_hwc(got)[0], corrupt(image, "spatter", severity, seed=seed))


def test_canny_and_equalize_hist_equal_opencv(clean):
    import cv2

    from robustpose.corruptions._torch import spatter as sp

    for image in clean:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        for low, high in ((50, 150), (20, 60)):
            want = cv2.Canny(gray, low, high) > 0
            got = sp.canny(torch.from_numpy(gray).long(), low, high).numpy()
            assert want.sum() > 100
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(sp.equalize_hist(torch.from_numpy(gray).long()).numpy(),
                                      cv2.equalizeHist(gray))


def test_elastic_sampling_and_smoothing_equal_scipy():
    from scipy.ndimage import gaussian_filter, map_coordinates

    rng = np.random.default_rng(3)
    h, w = 37, 45
    image = rng.random((3, h, w))
    dy, dx = rng.normal(scale=4.0, size=(2, h, w))  # reaches well past the borders
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    want = np.stack([map_coordinates(ch, [yy + dy, xx + dx], order=1, mode="reflect")
                     for ch in image])
    got = ops.bilinear_reflect(torch.from_numpy(image), torch.from_numpy(yy + dy),
                               torch.from_numpy(xx + dx)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)
    field, sigma = rng.uniform(-1, 1, (h, w)), (h * 0.1, w * 0.1)
    want = gaussian_filter(field, sigma, mode="reflect", truncate=3)
    got = ops.gaussian_filter(torch.from_numpy(field)[None, None], sigma, mode="reflect",
                              truncate=3)[0, 0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)


def _stats(out: np.ndarray, image: np.ndarray) -> np.ndarray:
    """residual mean, residual std, fraction of changed values, PSNR (dB)."""
    r = out.astype(np.float64) - image.astype(np.float64)
    mse = max((r ** 2).mean(), 1e-12)
    return np.array([r.mean(), r.std(), (r != 0).mean(), 10 * np.log10(255.0 ** 2 / mse)])


@pytest.mark.parametrize("name", RANDOM_NATIVE + ("spatter",))
def test_random_corruptions_match_the_numpy_path_in_distribution(clean, name):
    """Over 12 seeds: the mean of each statistic agrees within 4 standard errors (plus a
    small floor); a wrong severity table or a missing step moves them far more."""
    image, seeds = clean[0], list(range(12))
    severities = (2, 5) if name == "spatter" else (1, 5)  # spatter: water and mud
    for severity in severities:
        ours = np.array([_stats(o, image) for o in
                         _hwc(corrupt_batch(_batch([image] * len(seeds)), name, severity, seeds))])
        theirs = np.array([_stats(corrupt(image, name, severity, seed=s), image) for s in seeds])
        se = np.sqrt(ours.var(0) / len(seeds) + theirs.var(0) / len(seeds))
        floor = np.array([0.5, 0.5, 0.005, 0.15])
        gap = np.abs(ours.mean(0) - theirs.mean(0))
        assert np.all(gap <= 4 * se + floor), (name, severity, ours.mean(0), theirs.mean(0), se)


@pytest.mark.parametrize("name,severity", [(n, 3) for n in FALLBACK_CORRUPTIONS])
def test_fallback_corruptions_give_the_numpy_path_bytes(clean, name, severity):
    assert not is_native(name)
    image = clean[0]
    got = _hwc(corrupt_batch(_batch([image, image]), name, severity, [5, 6]))
    np.testing.assert_array_equal(got[0], corrupt(image, name, severity, seed=5))
    np.testing.assert_array_equal(got[1], corrupt(image, name, severity, seed=6))


@pytest.mark.parametrize("name", RANDOM_NATIVE)
def test_seeded_per_image_independent_of_batch(clean, name):
    a, b = clean[0], clean[0][::-1].copy()
    pair = corrupt_batch(_batch([a, b]), name, 2, [11, 12])
    alone = corrupt_batch(_batch([b]), name, 2, [12])
    again = corrupt_batch(_batch([a, b]), name, 2, [11, 12])
    assert torch.equal(pair[1], alone[0]) and torch.equal(pair, again)
    other = corrupt_batch(_batch([a]), name, 2, [99])
    assert not torch.equal(other[0], pair[0])


def test_native_path_never_leaves_the_tensor_world(clean, monkeypatch):
    """No host round trip in the hot path: Tensor.numpy is never called."""
    def boom(self, *args, **kwargs):
        raise AssertionError("native path called Tensor.numpy()")

    batch = _batch([clean[0], clean[0]])
    monkeypatch.setattr(torch.Tensor, "numpy", boom)
    for name in NATIVE_CORRUPTIONS:
        assert is_native(name)
        for severity in (2, 5):
            out = corrupt_batch(batch, name, severity, [1, 2])
            assert out.dtype == torch.uint8 and out.shape == batch.shape
            assert out.device == batch.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_stays_on_device_and_deterministic(clean):
    batch = _batch([clean[0], clean[0]]).cuda()
    for name in NATIVE_CORRUPTIONS + FALLBACK_CORRUPTIONS:
        out = corrupt_batch(batch, name, 3, [1, 2])
        assert out.is_cuda and out.dtype == torch.uint8
        assert torch.equal(out, corrupt_batch(batch, name, 3, [1, 2]))
    for name in DETERMINISTIC:
        cpu = corrupt_batch(batch.cpu(), name, 3, [1, 2])
        diff = (corrupt_batch(batch, name, 3, [1, 2]).cpu().int() - cpu.int()).abs()
        assert diff.max() <= 1 and (diff == 0).float().mean() >= 0.99


def test_bad_inputs_raise_one_line_errors(clean):
    batch = _batch([clean[0]])
    cases = [
        (batch.float(), "gaussian_noise", 1, [0], "uint8 tensor"),
        (batch[:, :1], "gaussian_noise", 1, [0], "N x 3 x H x W"),
        (batch, "gaussian_nose", 1, [0], "unknown corruption"),
        (batch, "gaussian_noise", 6, [0], "severity"),
        (batch, "gaussian_noise", 1, [0, 1], "one int per image"),
        (batch[..., :20, :20], "gaussian_noise", 1, [0], "at least 32"),
    ]
    for images, name, severity, seeds, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            corrupt_batch(images, name, severity, seeds)
        assert "\n" not in str(info.value)
