"""PoseBench's three corruptions (color_quant, low_light, mask) in both engines, and the
``posebench`` suite in the corruption grammar."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from robustpose.corruptions import (ALL_CORRUPTIONS, CORRUPTION_NAMES, corrupt, corrupt_batch,
                                    get_corruption_names, parse_corruptions)
from robustpose.corruptions.posebench import low_light_levels, mask_rectangles
from robustpose.utils.seeding import derive_seed


@pytest.fixture(scope="module")
def image(data_root: Path) -> np.ndarray:
    """A real COCO val image, downscaled to 160 x 120 for speed (uint8 RGB HWC)."""
    path = sorted((data_root / "coco_val_mini" / "images").iterdir())[0]
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((160, 120), Image.BILINEAR)).copy()


def _nchw(img: np.ndarray, n: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.stack([img] * n)).permute(0, 3, 1, 2).contiguous()


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


# ----------------------------------------------------------------------------- color_quant

def test_color_quant_is_3dcc_posterize_with_6_minus_severity_bits(image):
    for severity in range(1, 6):
        want = np.asarray(ImageOps.posterize(Image.fromarray(image), 6 - severity))
        np.testing.assert_array_equal(corrupt(image, "color_quant", severity), want)
    # by hand: 183 = 0b10110111 keeps 0b10110000 (5 bits) .. 0b10000000 (1 bit)
    flat = np.full((32, 32, 3), 183, np.uint8)
    kept = [int(corrupt(flat, "color_quant", s)[0, 0, 0]) for s in range(1, 6)]
    assert kept == [176, 176, 160, 128, 128]


# ----------------------------------------------------------------------------- low_light

def _low_light_from_the_published_formula(img: np.ndarray, severity: int, seed: int) -> np.ndarray:
    """3DCC's low_light (imadjust to [0, c] with gamma 2, then poisson_gaussian_noise at its
    severity 3: 10 * 12 photons, std 0.1 * 0.18), written out with a RandomState(seed)."""
    rng = np.random.RandomState(seed)
    c = [.60, .50, 0.40, 0.30, 0.20][severity - 1]
    x = np.array(img) / 255.
    x_scaled = (((x - x.min()) / (x.max() - x.min())) ** 2.) * (c - 0) + 0
    x = np.array(x_scaled * 255) / 255.
    x = np.clip(rng.poisson(x * (10 * 12)) / (10 * 12), 0, 1) * 255
    x = np.array(x) / 255.
    x = np.clip(x + rng.normal(size=x.shape, scale=0.1 * 0.18), 0, 1) * 255
    return np.uint8(x)


def test_low_light_equals_the_published_formula_bit_for_bit(image):
    for severity in range(1, 6):
        for seed in (0, 7):
            np.testing.assert_array_equal(corrupt(image, "low_light", severity, seed=seed),
                                          _low_light_from_the_published_formula(image, severity, seed))


def test_low_light_darkening_by_hand():
    img = np.full((32, 32, 3), 10, np.uint8)  # min 10
    img[0, 1] = 210  # max
    img[0, 2] = 110  # half way: (0.5 ** 2) * c
    for severity, c in zip(range(1, 6), (0.6, 0.5, 0.4, 0.3, 0.2)):
        levels = low_light_levels(img, severity)
        assert levels[0, 0, 0] == 0 and levels[0, 1, 0] == pytest.approx(c * 255)
        assert levels[0, 2, 0] == pytest.approx(0.25 * c * 255)
    # a flat image has no range: black before the noise (3DCC divides by zero)
    flat = np.full((32, 32, 3), 90, np.uint8)
    assert not low_light_levels(flat, 3).any()
    assert corrupt(flat, "low_light", 3, seed=1).mean() < 5


def test_low_light_darkens_more_with_severity(image):
    means = [corrupt(image, "low_light", s, seed=0).mean() for s in range(1, 6)]
    assert all(a > b for a, b in zip(means, means[1:])) and means[0] < image.mean()


# ----------------------------------------------------------------------------- mask

def test_mask_paints_only_its_rectangles_and_grows_with_severity(image):
    h, w = image.shape[:2]
    covered = []
    for severity in range(1, 6):
        fractions = []
        for seed in range(20):
            rects = mask_rectangles(h, w, severity, np.random.RandomState(seed))
            assert len(rects) == 2 * severity
            inside = np.zeros((h, w), bool)
            for top, left, rh, rw, _ in rects:
                assert 0 <= top and top + rh <= h and 0 <= left and left + rw <= w
                assert 0.1 * w - 1 <= rw <= 0.25 * w + 1 and 0.1 * h - 1 <= rh <= 0.25 * h + 1
                inside[top:top + rh, left:left + rw] = True
            out = corrupt(image, "mask", severity, seed=seed)
            np.testing.assert_array_equal(out[~inside], image[~inside])  # pixels only, elsewhere kept
            top, left, rh, rw, colour = rects[-1]  # the last one is on top
            assert (out[top:top + rh, left:left + rw] == colour).all()
            fractions.append(inside.mean())
        covered.append(np.mean(fractions))
    assert all(a < b for a, b in zip(covered, covered[1:])), covered
    assert 0.03 < covered[0] < 0.12 and 0.15 < covered[-1] < 0.40, covered


def test_new_corruptions_are_seeded_and_strict(image):
    seed = derive_seed(0, 139, "mask", 3)
    a, b = corrupt(image, "mask", 3, seed=seed), corrupt(image, "mask", 3, seed=seed)
    assert np.array_equal(a, b) and not np.array_equal(a, corrupt(image, "mask", 3, seed=seed + 1))
    assert not np.array_equal(corrupt(image, "low_light", 3, seed=1), corrupt(image, "low_light", 3, seed=2))
    for bad, message in ((dict(severity=6), "severity"), (dict(severity=0), "severity"),
                         (dict(seed=-1), "seed"), (dict(seed=1.5), "seed")):
        for name in ("color_quant", "low_light", "mask"):
            kwargs = {"severity": 1, **bad}
            with pytest.raises(ValueError, match=message) as info:
                corrupt(image, name, **kwargs)
            assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="mask"):  # the unknown-name error lists the new ones
        corrupt(image, "masks", 1)
    grey = corrupt(image[..., 0].copy(), "mask", 2, seed=3)  # grey in, grey out, as the others
    assert grey.shape == image.shape[:2]


# ----------------------------------------------------------------------------- torch engine

def test_corrupt_batch_gives_the_numpy_bytes_for_color_quant_and_mask(image):
    batch = _nchw(image, 3)
    seeds = [3, 4, derive_seed(1, "x", "mask", 5)]
    for severity in range(1, 6):
        for name in ("color_quant", "mask"):
            got = _hwc(corrupt_batch(batch, name, severity, seeds))
            for out, seed in zip(got, seeds):
                np.testing.assert_array_equal(out, corrupt(image, name, severity, seed=seed))


def test_corrupt_batch_low_light_matches_in_distribution(image):
    """Over 12 seeds the residual mean / std and the changed fraction agree within 4 standard
    errors plus a small floor (as the other noises in test_corruptions_batch.py)."""
    seeds = list(range(12))

    def stats(out):
        r = out.astype(np.float64) - image.astype(np.float64)
        return np.array([r.mean(), r.std(), (r != 0).mean()])

    for severity in (1, 5):
        ours = np.array([stats(o) for o in _hwc(corrupt_batch(_nchw(image, 12), "low_light",
                                                              severity, seeds))])
        theirs = np.array([stats(corrupt(image, "low_light", severity, seed=s)) for s in seeds])
        se = np.sqrt(ours.var(0) / 12 + theirs.var(0) / 12)
        gap = np.abs(ours.mean(0) - theirs.mean(0))
        assert np.all(gap <= 4 * se + np.array([0.5, 0.5, 0.005])), (severity, ours.mean(0), theirs.mean(0))
    # same seed, same bytes; per image, independent of the batch
    pair = corrupt_batch(_nchw(image, 2), "low_light", 2, [5, 6])
    assert torch.equal(pair[1], corrupt_batch(_nchw(image), "low_light", 2, [6])[0])


def test_corrupt_batch_refuses_bad_seeds_for_mask(image):
    with pytest.raises(ValueError, match="seed") as info:
        corrupt_batch(_nchw(image), "mask", 1, [2**40])
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="one int per image"):
        corrupt_batch(_nchw(image, 2), "mask", 1, [1])


# ----------------------------------------------------------------------------- the grammar

def test_posebench_suite_and_groups_in_the_grammar():
    assert parse_corruptions("posebench") == [
        "motion_blur", "gaussian_noise", "impulse_noise", "pixelate", "jpeg_compression",
        "color_quant", "brightness", "low_light", "contrast", "mask"]
    assert parse_corruptions("lighting") == ["brightness", "low_light", "contrast"]
    assert parse_corruptions("occlusion") == ["mask"]
    assert parse_corruptions("blur_noise,compression,lighting,occlusion") == parse_corruptions("posebench")
    assert parse_corruptions("posebench_extra") == ["color_quant", "low_light", "mask"]
    # what existing callers and run folders mean stays: default 15, 'all' 19
    assert parse_corruptions(None) == parse_corruptions("benchmark") == list(CORRUPTION_NAMES[:15])
    assert parse_corruptions("all") == list(CORRUPTION_NAMES) == get_corruption_names("all")
    assert parse_corruptions("everything") == list(ALL_CORRUPTIONS) and len(ALL_CORRUPTIONS) == 22
    assert parse_corruptions("benchmark,posebench")[15:] == ["color_quant", "low_light", "mask"]
    with pytest.raises(ValueError, match="posebench") as info:
        parse_corruptions("posebnch")
    assert "\n" not in str(info.value) and "low_light" in str(info.value)


def test_the_c_writer_takes_the_posebench_groups(data_root, tmp_path):
    from robustpose.data import WriterSettings, write_corrupted_dataset

    images = data_root / "coco_val_mini" / "images"
    name = sorted(p.name for p in images.iterdir())[0]
    out = tmp_path / "coco-C"
    write_corrupted_dataset(images, out, "occlusion,color_quant", "2", WriterSettings(seed=4),
                            progress=False, images=[name])
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()
                     and p.suffix != ".json")
    assert [w.split("/")[:2] for w in written] == [["color_quant", "2"], ["mask", "2"]]
