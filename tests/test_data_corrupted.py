"""Corrupted views: on-the-fly (seeded per image) and pre-generated -C folders."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from robustpose.data import (CorruptedFolder, CorruptedImages, ImageReadError, TopDownDataset,
                             corrupted_image_path, load_coco_records)
from robustpose.data.corrupted import find_corrupted_image
from robustpose.utils.seeding import derive_seed

torch.set_num_threads(1)


def seeded_noise(image, corruption_name, severity, seed):
    """Stand-in with the corrupt() signature: Gaussian noise from the given seed only."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 8 * severity, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _engine():
    """The real corruption engine, robustpose.corruptions.corrupt."""
    from robustpose.corruptions import corrupt

    return corrupt


@pytest.fixture(scope="module")
def coco(data_root):
    d = data_root / "coco_val_mini"
    records, spec = load_coco_records(d / "annotations.json", d / "images", aspect_ratio=192 / 256)
    return records[:12], spec


def _digest(ds, workers):
    loader = DataLoader(ds, batch_size=4, num_workers=workers)
    h = hashlib.sha256()
    for batch in loader:
        h.update(batch["image"].numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("use_engine", [False, True])
def test_corrupted_view_is_identical_across_runs_and_worker_counts(coco, use_engine):
    records, spec = coco
    fn = _engine() if use_engine else seeded_noise
    name = "gaussian_noise"

    def make():
        return TopDownDataset(records, spec, image_transform=CorruptedImages(name, 3, seed=11,
                                                                             corrupt_fn=fn))
    first = _digest(make(), 0)
    assert _digest(make(), 0) == first
    assert _digest(make(), 2) == first
    clean = _digest(TopDownDataset(records, spec), 0)
    assert clean != first
    other_seed = TopDownDataset(records, spec, image_transform=CorruptedImages(
        name, 3, seed=12, corrupt_fn=fn))
    assert _digest(other_seed, 0) != first


def test_seed_is_per_image_not_per_person(coco):
    records, _ = coco
    view = CorruptedImages("gaussian_noise", 2, seed=5, corrupt_fn=seeded_noise)
    counts = {}
    for r in records:
        counts[r.image_id] = counts.get(r.image_id, 0) + 1
    crowded = max(counts, key=counts.get)
    same_image = [r for r in records if r.image_id == crowded]
    assert len(same_image) >= 2
    image = np.full((20, 30, 3), 128, np.uint8)
    outs = [view(image, r) for r in same_image]
    assert all(np.array_equal(outs[0], o) for o in outs)
    assert view.image_seed(crowded) == derive_seed(5, crowded, "gaussian_noise", 2)
    other = next(r for r in records if r.image_id != crowded)
    assert not np.array_equal(view(image, other), outs[0])
    assert CorruptedImages("clean", 0)(image, other) is image
    with pytest.raises(ValueError, match="severity must be 0..5"):
        CorruptedImages("snow", 6)


def test_corrupted_image_path_layouts(tmp_path):
    assert corrupted_image_path(tmp_path, "snow", 1, "a/b.jpg") == tmp_path / "snow/1/a/b.jpg"
    # AdvMix: severities 1..5 stored in folders 0..4, file name only
    assert corrupted_image_path(tmp_path, "snow", 1, "a/b.jpg", layout="advmix") == \
        tmp_path / "snow/0/b.jpg"
    assert corrupted_image_path(tmp_path, "fog", 5, "b.jpg", layout="advmix") == \
        tmp_path / "fog/4/b.jpg"
    # the writer's names: the suffix of its --format replaces the clean file's
    assert corrupted_image_path(tmp_path, "snow", 1, "a/b.jpg", suffix=".png") == \
        tmp_path / "snow/1/a/b.png"
    assert corrupted_image_path(tmp_path, "fog", 2, "a/b.png", layout="advmix", suffix=".jpg") == \
        tmp_path / "fog/1/b.jpg"
    # the reader's: the exact name first, then the same name with another image suffix
    assert find_corrupted_image(tmp_path, "snow", 1, "a/b.jpg") == tmp_path / "snow/1/a/b.jpg"
    (tmp_path / "snow/1/a").mkdir(parents=True)
    (tmp_path / "snow/1/a/b.png").write_bytes(b"")
    assert find_corrupted_image(tmp_path, "snow", 1, "a/b.jpg") == tmp_path / "snow/1/a/b.png"
    (tmp_path / "snow/1/a/b.jpg").write_bytes(b"")
    assert find_corrupted_image(tmp_path, "snow", 1, "a/b.jpg") == tmp_path / "snow/1/a/b.jpg"
    with pytest.raises(ValueError, match="severity must be 1..5"):
        corrupted_image_path(tmp_path, "snow", 0, "b.jpg")
    with pytest.raises(ValueError, match="escapes"):
        corrupted_image_path(tmp_path, "snow", 2, "../b.jpg")
    with pytest.raises(ValueError, match="layout must be"):
        corrupted_image_path(tmp_path, "snow", 2, "b.jpg", layout="imagenet")


@pytest.mark.parametrize("layout", ["robustpose", "advmix"])
def test_reading_a_pregenerated_c_folder(tmp_path, coco, layout):
    records, spec = coco
    records = records[:3]
    image_root = records[0].image_path.parent
    folder = "2" if layout == "robustpose" else "1"
    written = {}
    for r in records:
        img = np.asarray(Image.open(r.image_path).convert("RGB"))
        noisy = seeded_noise(img, "x", 2, 0)
        out = tmp_path / "coco-C" / "gaussian_noise" / folder / r.image_path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        if layout == "robustpose":  # `robustpose corrupt` writes PNG: .jpg -> .png
            Image.fromarray(noisy).save(out.with_suffix(".png"))
        else:  # AdvMix keeps the name; lossless bytes under the .jpg name for the comparison
            Image.fromarray(noisy).save(out.with_suffix(".png"))
            out.with_suffix(".png").rename(out)
        written[r.image_path.name] = noisy
    view = CorruptedFolder(tmp_path / "coco-C", image_root, "gaussian_noise", 2, layout=layout)
    ds = TopDownDataset(records, spec, image_transform=view)
    for i, r in enumerate(records):
        expected = r.image_path.name if layout == "advmix" else r.image_path.stem + ".png"
        assert view.path_for(r).name == expected
        crop = ds[i]["image"]
        ref = TopDownDataset(records, spec, image_transform=lambda im, rec: written[
            rec.image_path.name])[i]["image"]
        assert torch.equal(crop, ref)
    # a missing corrupted file is an ImageReadError naming it (skippable in long runs)
    view_missing = CorruptedFolder(tmp_path / "coco-C", image_root, "gaussian_noise", 3,
                                   layout=layout)
    with pytest.raises(ImageReadError, match="image file not found"):
        TopDownDataset(records, spec, image_transform=view_missing)[0]
    skipping = TopDownDataset(records, spec, image_transform=view_missing, skip_unreadable=True)
    assert not skipping[0]["meta"]["valid"] and len(skipping.skipped) == 1
    with pytest.raises(FileNotFoundError, match="corrupted-image folder not found"):
        CorruptedFolder(tmp_path / "nope", image_root, "snow", 1)


def test_c_folder_checks_the_clean_size_from_the_header_only(tmp_path, coco, monkeypatch):
    """The dataset never decodes the clean image of a -C folder, yet still refuses a
    corrupted copy of the wrong size and names a missing clean file."""
    import robustpose.data.dataset as dataset_module

    records, spec = coco
    records = records[:1]
    image_root = records[0].image_path.parent
    folder = tmp_path / "coco-C" / "snow" / "1"
    folder.mkdir(parents=True)
    clean = np.asarray(Image.open(records[0].image_path).convert("RGB"))
    target = folder / (records[0].image_path.stem + ".png")
    Image.fromarray(clean[::-1].copy()).save(target)
    decoded = []
    real_load = dataset_module.load_image
    monkeypatch.setattr(dataset_module, "load_image",
                        lambda path: decoded.append(path) or real_load(path))
    view = CorruptedFolder(tmp_path / "coco-C", image_root, "snow", 1)
    item = TopDownDataset(records, spec, image_transform=view)[0]
    assert item["meta"]["valid"] and decoded == []  # clean pixels not read
    Image.fromarray(clean[:-2]).save(target)  # two rows short
    with pytest.raises(ImageReadError, match=r"differs from the clean image's"):
        TopDownDataset(records, spec, image_transform=view)[0]
    Image.fromarray(clean).save(target)
    gone = records[0].__class__(**{**records[0].__dict__,
                                   "image_path": tmp_path / "missing" / target.name})
    with pytest.raises(ImageReadError, match="missing.*image file not found"):
        view.load(gone)


@pytest.mark.parametrize("layout,fmt", [("robustpose", "png"), ("advmix", "jpg")])
def test_reads_what_robustpose_corrupt_writes(tmp_path, data_root, layout, fmt):
    """End to end with the -C writer (robustpose.data.write_corrupted_dataset)."""
    from robustpose.data import WriterSettings, write_corrupted_dataset

    d = data_root / "coco_mmpose"
    records, spec = load_coco_records(d / "annotations.json", d / "images", aspect_ratio=192 / 256)
    names = sorted({r.image_path.name for r in records})[:2]
    records = [r for r in records if r.image_path.name in names]
    out = tmp_path / "coco-C"
    write_corrupted_dataset(d / "images", out, ["gaussian_noise"], [2],
                            WriterSettings(layout=layout, image_format=fmt), progress=False,
                            images=names)
    view = CorruptedFolder(out, d / "images", "gaussian_noise", 2, layout=layout)
    ds = TopDownDataset(records, spec, image_transform=view)
    clean = TopDownDataset(records, spec)
    for i in range(len(ds)):
        item = ds[i]
        assert item["meta"]["valid"] and view.path_for(records[i]).exists()
        assert not torch.equal(item["image"], clean[i]["image"])
