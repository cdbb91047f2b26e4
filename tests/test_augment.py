"""robustpose.augment: each op against Pillow on real crops, determinism, targets untouched."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from robustpose.augment import (OFFICIAL_POLICY, AutoAugment, CorruptionAugment, GridMask,
                                MEAN_COLOUR, apply_op, dirichlet_weights, grid_keep_mask,
                                make_views, mix, policy_list, sequential)
from robustpose.augment._batch import crop_to_uint8
from robustpose.corruptions import corrupt


@pytest.fixture(scope="module")
def real_batch(data_root):
    """Six real COCO crops (64 x 64) with their targets, from coco_val_mini."""
    from robustpose.data import TopDownDataset, load_coco_records
    root = data_root / "coco_val_mini"
    records, spec = load_coco_records(root / "annotations.json", root / "images", aspect_ratio=1.0)
    dataset = TopDownDataset(records[:6], spec, input_size=(64, 64), heatmap_size=(16, 16), sigma=1)
    items = [dataset[i] for i in range(6)]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "target", "target_weight")}


def test_policy_lists():
    assert len(OFFICIAL_POLICY) == 12
    ops = {op for sp in OFFICIAL_POLICY for _, op, _ in sp}
    assert ops == {"equalize", "posterize", "solarize", "invert", "sharpness"}
    assert sum(any(op == "sharpness" for _, op, _ in sp) for sp in OFFICIAL_POLICY) == 1
    paper = policy_list("paper")
    assert len(paper) == 11 and all(op != "sharpness" for sp in paper for _, op, _ in sp)
    with pytest.raises(ValueError, match="autoaugment policy must be one of"):
        policy_list("imagenet")


@pytest.mark.parametrize("op, magnitude, sign, reference", [
    ("equalize", 3, 1, lambda im: ImageOps.equalize(im)),
    ("invert", 0, 1, lambda im: ImageOps.invert(im)),
    ("posterize", 7, 1, lambda im: ImageOps.posterize(im, 5)),       # round(linspace(8,4,10))[7]
    ("posterize", 2, 1, lambda im: ImageOps.posterize(im, 7)),
    ("solarize", 3, 1, lambda im: ImageOps.solarize(im, 256 - 3 * 256 / 9)),
    ("solarize", 0, 1, lambda im: im),                                # threshold 256: nothing
    ("sharpness", 7, 1, lambda im: ImageEnhance.Sharpness(im).enhance(1.7)),
    ("sharpness", 7, -1, lambda im: ImageEnhance.Sharpness(im).enhance(0.3)),
])
def test_each_op_is_pillows_on_real_crops(real_batch, op, magnitude, sign, reference):
    for crop in real_batch["image"][:3]:
        image = crop_to_uint8(crop)
        expected = np.asarray(reference(Image.fromarray(image)))
        got = apply_op(image, op, magnitude, sign)
        assert got.dtype == np.uint8 and np.array_equal(got, expected)
    if not (op == "solarize" and magnitude == 0):  # threshold 256 is the identity
        assert not np.array_equal(got, image)  # the op did something on a real crop


def test_autoaugment_batch_is_the_drawn_pillow_ops(real_batch):
    images = real_batch["image"]
    aug = AutoAugment("official")
    out = aug(images, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    changed = 0
    for i in range(len(images)):
        draw = aug.draw(rng)
        image = crop_to_uint8(images[i])
        if not draw.ops:
            assert torch.equal(out[i], images[i])
            continue
        pil = Image.fromarray(image)
        for op, magnitude, sign in draw.ops:  # written out with Pillow here, not apply_op
            if op == "equalize":
                pil = ImageOps.equalize(pil)
            elif op == "invert":
                pil = ImageOps.invert(pil)
            elif op == "posterize":
                pil = ImageOps.posterize(pil, int(round(8 - 4 * magnitude / 9)))
            elif op == "solarize":
                pil = ImageOps.solarize(pil, 256 - magnitude * 256 / 9)
            else:
                pil = ImageEnhance.Sharpness(pil).enhance(1 + sign * 0.1 * magnitude)
        expected = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float() / 255
        assert torch.equal(out[i], expected)
        changed += 1
    assert changed >= 2


def test_gridmask_mask_geometry():
    keep = grid_keep_mask(40, 30, d=10, st_h=3, st_w=0, ratio=0.5, mode=1)
    assert keep.shape == (40, 30) and set(np.unique(keep)) == {0.0, 1.0}
    # mode 1 drops the (d - l) squares: a fraction ((d - l) / d)^2 = 1/4 of the area
    assert abs((1 - keep.mean()) - 0.25) < 0.06
    # every row of the mask is periodic with period d
    assert np.array_equal(keep[:, :10], keep[:, 10:20])
    assert np.array_equal(keep[:10], keep[10:20])
    inverse = grid_keep_mask(40, 30, d=10, st_h=3, st_w=0, ratio=0.5, mode=0)
    assert np.array_equal(inverse, 1 - keep)


def test_gridmask_fills_the_mean_colour_and_keeps_the_rest(real_batch):
    from robustpose.models import IMAGENET_MEAN
    assert MEAN_COLOUR == IMAGENET_MEAN
    images = real_batch["image"]
    out = GridMask(prob=1.0)(images, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    for i in range(len(images)):
        d, st_h, st_w = GridMask(prob=1.0).draw(rng, 64, 64)
        assert 2 <= d < 64 and 0 <= st_h < d and 0 <= st_w < d
        keep = torch.from_numpy(grid_keep_mask(64, 64, d, st_h, st_w)).bool()
        assert torch.equal(out[i][:, keep], images[i][:, keep])
        dropped = out[i][:, ~keep]
        assert torch.allclose(dropped, torch.tensor(MEAN_COLOUR).view(3, 1).expand_as(dropped))


def test_gridmask_probability_is_prob():
    images = torch.rand(400, 3, 8, 8)
    out = GridMask(prob=0.7)(images, np.random.default_rng(0))
    masked = (out != images).flatten(1).any(1).float().mean().item()
    assert 0.63 < masked < 0.77


def test_corruption_augment_is_corrupt_with_drawn_settings(real_batch):
    images = real_batch["image"][:4]
    aug = CorruptionAugment()
    out = aug(images, np.random.default_rng(2))
    rng = np.random.default_rng(2)
    names = set()
    for i in range(len(images)):
        name, severity, seed = aug.draw(rng)
        names.add(name)
        assert 1 <= severity <= 5
        expected = corrupt(crop_to_uint8(images[i]), name, severity=severity, seed=seed)
        assert torch.equal(out[i], torch.from_numpy(expected).permute(2, 0, 1).float() / 255)
    assert names <= {"gaussian_noise", "defocus_blur", "snow", "contrast"}
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        CorruptionAugment(names=["rain"])


@pytest.mark.parametrize("make", [lambda: AutoAugment(), lambda: GridMask(),
                                  lambda: CorruptionAugment()])
def test_same_batch_same_seed_same_views_and_inputs_untouched(real_batch, make):
    images = real_batch["image"].clone()
    target = real_batch["target"].clone()
    a = make()(images, np.random.default_rng(9))
    b = make()(images, np.random.default_rng(9))
    c = make()(images, np.random.default_rng(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(images, real_batch["image"]) and torch.equal(target, real_batch["target"])
    assert a.shape == images.shape and a.dtype == images.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_views_mix_and_chains(real_batch):
    images = real_batch["image"]
    augs = [AutoAugment(), GridMask()]
    views = make_views(images, augs, np.random.default_rng(3))
    assert views.shape == (6, 3, 3, 64, 64) and torch.equal(views[:, 0], images)
    again = make_views(images, augs, np.random.default_rng(3))
    assert torch.equal(views, again)
    w = dirichlet_weights(6, 3, np.random.default_rng(0))
    assert w.shape == (6, 3) and torch.allclose(w.sum(1), torch.ones(6)) and (w > 0).all()
    mixed = mix(views, w)
    assert torch.allclose(mixed[0], sum(w[0, v] * views[0, v] for v in range(3)))
    chain = sequential(images, augs, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    assert torch.equal(chain, augs[1](augs[0](images, rng), rng))
    with pytest.raises(ValueError, match="rng must be a np.random.Generator"):
        GridMask()(images, 0)
    with pytest.raises(ValueError, match="expects float crops N x 3 x H x W"):
        AutoAugment()(images[0], np.random.default_rng(0))
