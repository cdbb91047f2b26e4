"""TopDownDataset: eval crops, HRNet training augmentation, and skipping unreadable images."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from robustpose.data import (ImageReadError, TopDownAugment, TopDownDataset,
                             get_affine_transform, load_coco_records, split_valid_batch)
from robustpose.utils.seeding import rng_from

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def coco(data_root):
    d = data_root / "coco_val_mini"
    return load_coco_records(d / "annotations.json", d / "images", aspect_ratio=192 / 256)


def test_eval_item_layout(coco):
    records, spec = coco
    item = TopDownDataset(records, spec)[3]
    assert item["image"].shape == (3, 256, 192) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["target"].shape == (17, 64, 48) and item["target_weight"].shape == (17, 1)
    meta = item["meta"]
    assert {"index", "image_id", "center", "scale", "score", "area", "bbox"} <= meta.keys()
    assert meta["valid"] and meta["error"] == "" and meta["rotation"] == 0 and not meta["flipped"]
    assert np.isclose(meta["area"], np.prod(meta["scale"] * 200.0))  # HRNet's OKS-NMS area
    unlabeled = records[3].keypoints[:, 2] == 0
    assert np.all(item["target_weight"][unlabeled.tolist(), 0].numpy() == 0)


def test_augmentation_is_seeded_per_seed_epoch_index(coco):
    records, spec = coco
    ds = TopDownDataset(records, spec, train=True, seed=7)
    a, b = ds[5], ds[5]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])
    params = [(ds[i]["meta"]["rotation"], ds[i]["meta"]["flipped"]) for i in range(10)]
    ds.set_epoch(1)
    assert [(ds[i]["meta"]["rotation"], ds[i]["meta"]["flipped"]) for i in range(10)] != params
    other = TopDownDataset(records, spec, train=True, seed=8)
    assert not torch.equal(other[5]["image"], a["image"])


def test_augmentation_distributions_match_hrnet_defaults(coco):
    records, spec = coco
    aug = TopDownAugment()
    assert (aug.scale_factor, aug.rotation_factor, aug.half_body_prob,
            aug.half_body_min_joints) == (0.35, 45.0, 0.3, 8)
    kpts = records[0].keypoints.copy()
    kpts[:, 2] = 0  # no visible joints: half body never fires
    rots, scales, flips = [], [], []
    for i in range(4000):
        p = aug.sample(rng_from(0, "t", i), kpts, records[0].center, records[0].scale, spec, 0.75)
        rots.append(p.rotation), scales.append(p.scale[0] / records[0].scale[0])
        flips.append(p.flip)
    rots, scales = np.array(rots), np.array(scales)
    assert np.abs(rots).max() <= 90 + 1e-6 and scales.min() >= 0.65 - 1e-6
    assert scales.max() <= 1.35 + 1e-6
    assert abs((rots == 0).mean() - 0.4) < 0.03 and abs(np.mean(flips) - 0.5) < 0.03
    assert abs(np.std(rots[rots != 0]) - 45) < 4


def test_half_body_picks_upper_or_lower_joints(coco):
    records, spec = coco
    rec = max(records, key=lambda r: (r.keypoints[:, 2] > 0).sum())
    aug = TopDownAugment(half_body_prob=1.0)
    seen = set()
    for i in range(50):
        p = aug.sample(rng_from(1, i), rec.keypoints, rec.center, rec.scale, spec, 0.75)
        assert p.half_body
        upper = rec.keypoints[:11][rec.keypoints[:11, 2] > 0, :2].mean(axis=0)
        lower = rec.keypoints[11:][rec.keypoints[11:, 2] > 0, :2].mean(axis=0)
        seen.add("upper" if np.allclose(p.center, upper, atol=1e-3) else
                 "lower" if np.allclose(p.center, lower, atol=1e-3) else "?")
    assert seen == {"upper", "lower"}


def test_training_targets_map_back_to_the_keypoints(coco):
    """Decode each augmented target, undo rotation/scale/flip: back on the annotation."""
    records, spec = coco
    ds = TopDownDataset(records, spec, train=True, seed=3)
    perm = spec.flip_permutation()
    n_flipped = n_rotated = 0
    for i in range(0, len(ds), 2):
        item = ds[i]
        meta = item["meta"]
        coords, _ = ds.codec.decode(item["target"][None].numpy(), shift=False)
        inv = get_affine_transform(meta["center"], meta["scale"], meta["rotation"], (192, 256),
                                   inv=True)
        xy = (coords[0] * 4) @ inv[:, :2].T + inv[:, 2]
        gt = meta["keypoints"]
        if meta["flipped"]:
            n_flipped += 1
            width = ds.records[i].extra["image_size"][0]
            xy[:, 0] = width - 1 - xy[:, 0]
            xy = xy[perm]
            weight = item["target_weight"][perm, 0].numpy()
        else:
            weight = item["target_weight"][:, 0].numpy()
        n_rotated += meta["rotation"] != 0
        inside = (meta["joints"][:, 0] >= 0) & (meta["joints"][:, 0] < 190) & \
                 (meta["joints"][:, 1] >= 0) & (meta["joints"][:, 1] < 254)
        if meta["flipped"]:
            inside = inside[perm]
        ok = (weight > 0) & inside
        px_per_input = meta["scale"][0] * 200 / 192
        err = np.linalg.norm(xy[ok] - gt[ok, :2], axis=1) / px_per_input
        # rounding to the heatmap grid: <= half a heatmap px per axis = 2 input px per axis
        # (+0.05 for the float32 affine matrices, as in HRNet)
        assert err.max() <= 2 * np.sqrt(2) + 0.05, (i, err.max())
    assert n_flipped > 3 and n_rotated > 3


def test_skip_unreadable_records_and_collects_through_dataloader(tmp_path, coco):
    records, spec = coco
    import copy

    broken = [copy.deepcopy(r) for r in records[:6]]
    shutil.copy(broken[1].image_path, tmp_path / "cut.jpg")
    data = (tmp_path / "cut.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    broken[1].image_path = tmp_path / "cut.jpg"
    broken[4].image_path = tmp_path / "missing.jpg"

    strict = TopDownDataset(broken, spec)
    with pytest.raises(ImageReadError, match="missing.jpg: image file not found"):
        strict[4]

    for workers in (0, 2):
        ds = TopDownDataset(broken, spec, skip_unreadable=True)
        loader = DataLoader(ds, batch_size=4, num_workers=workers)
        kept, skips = 0, []
        for batch in loader:
            good, bad = split_valid_batch(batch)
            skips += bad
            if good is not None:
                kept += good["image"].shape[0]
                assert good["meta"]["valid"].all()
        assert kept == 4
        assert sorted(p for p, _ in skips) == sorted([str(tmp_path / "cut.jpg"),
                                                      str(tmp_path / "missing.jpg")])
        assert any("truncated" in e for _, e in skips) and any("not found" in e for _, e in skips)
        if workers == 0:
            assert len(ds.skipped) == 2


def test_empty_dataset_is_refused(coco):
    with pytest.raises(ValueError, match="empty dataset"):
        TopDownDataset([], coco[1])


def test_detector_records_and_mpii_items(data_root):
    d = data_root / "coco_mmpose"
    records, spec = load_coco_records(d / "annotations.json", d / "images",
                                      detections=d / "detections.json", det_score_thr=0.9,
                                      aspect_ratio=192 / 256)
    item = TopDownDataset(records, spec)[0]
    assert item["meta"]["valid"] and item["target_weight"].sum() == 0
    assert item["meta"]["score"] >= 0.9 and np.all(item["meta"]["keypoints"] == 0)

    from robustpose.data import get_spec, load_mpii_records

    m = data_root / "mpii_mini"
    mpii = load_mpii_records(m / "annotations.json", m / "images")
    ds = TopDownDataset(mpii, get_spec("mpii"), input_size=(256, 256), heatmap_size=(64, 64))
    item = ds[0]
    assert item["image"].shape == (3, 256, 256) and item["target"].shape == (16, 64, 64)
    assert item["meta"]["head_size"] == pytest.approx(mpii[0].extra["head_size"])
    # the labelled joints decode back onto the 0-based annotation (<= 2 input px per axis)
    coords, _ = ds.codec.decode(item["target"][None].numpy())
    from robustpose.codecs import heatmaps_to_image_coords

    xy = heatmaps_to_image_coords(coords, item["meta"]["center"][None],
                                  item["meta"]["scale"][None], (64, 64))[0]
    w = item["target_weight"][:, 0].numpy() > 0
    px = mpii[0].scale[0] * 200 / 256
    assert w.sum() >= 10
    assert np.abs(xy[w] - mpii[0].keypoints[w, :2]).max() <= 2.0 * px + 1e-3


def test_item_holds_every_key_the_codec_encodes(coco):
    """Any codec: the item carries each key of ``encode`` as a tensor (target_weight K x 1);
    ``encode_targets=False`` (evaluation) gives empty targets; a codec made for another
    crop size is refused."""
    from robustpose.codecs import GaussianHeatmap

    class WithVisible(GaussianHeatmap):
        def encode(self, keypoints):
            out = super().encode(keypoints)
            out["visible"] = (np.asarray(keypoints)[:, 2] > 0).astype(np.float32)
            return out

    records, spec = coco
    item = TopDownDataset(records, spec, codec=WithVisible())[3]
    plain = TopDownDataset(records, spec)[3]
    assert set(item) == {"image", "target", "target_weight", "visible", "meta"}
    assert torch.equal(item["target"], plain["target"]) and item["visible"].shape == (17,)
    assert torch.equal(item["visible"], (torch.from_numpy(item["meta"]["joints"][:, 2]) > 0).float())
    assert item["target_weight"].shape == (17, 1)
    bare = TopDownDataset(records, spec, encode_targets=False)[3]
    assert bare["target"].shape == (17, 0, 0) and torch.all(bare["target_weight"] == 1)
    assert torch.equal(bare["image"], plain["image"])
    with pytest.raises(ValueError, match="codec input_size"):
        TopDownDataset(records, spec, input_size=(96, 128), codec=GaussianHeatmap())
