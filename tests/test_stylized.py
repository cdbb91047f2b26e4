"""Stylized training images (robustpose.data.stylized, ``data.train.stylized``): a stylized
copy the tests make themselves (inverted copies of ../shared/data/coco_train_mini images,
constant-colour images for the draw statistics) is read instead of the original with the
configured probability, from a seeded per-item stream; targets and augmentation untouched;
bad copies are one-line errors naming the file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from robustpose.config import ConfigError
from robustpose.data import TopDownDataset, load_coco_records
from robustpose.data.stylized import STYLIZED_KEYS, StylizedImageError, StylizedImages, parse_block
from robustpose.training import load_config
from robustpose.training.datasets import build_split

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny_coco.yaml"
SIZE = (48, 64)  # crop (w, h): small, fast

torch.set_num_threads(1)


def _mini(data_root: Path, n_images: int = 2):
    """Records of the first ``n_images`` images of coco_train_mini, and its image folder."""
    images = data_root / "coco_train_mini" / "images"
    records, spec = load_coco_records(data_root / "coco_train_mini" / "annotations.json",
                                      images, aspect_ratio=SIZE[0] / SIZE[1])
    keep = sorted({r.image_path.name for r in records})[:n_images]
    return [r for r in records if r.image_path.name in keep], spec, images


def _inverted_copy(records, out: Path) -> Path:
    """A 'stylized' copy: every image of ``records`` inverted, same name (PNG pixels kept
    exactly, in a file named like the JPEG original: cv2 decodes by content)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in {r.image_path.name for r in records}:
        image = cv2.imread(str(records[0].image_path.parent / name))
        ok, data = cv2.imencode(".png", 255 - image)
        (out / name).write_bytes(data.tobytes())
    return out


def _dataset(records, spec, stylized=None, train=False, seed=0):
    return TopDownDataset(records, spec, input_size=SIZE, heatmap_size=(12, 16), train=train,
                          seed=seed, skip_unreadable=True, stylized=stylized)


def _rerooted(records, root: Path):
    """The same records reading their images from ``root`` (the stylized copy directly)."""
    import dataclasses
    return [dataclasses.replace(r, image_path=root / r.image_path.name) for r in records]


def test_prob_0_is_bit_identical_and_prob_1_reads_the_stylized_pixels(data_root, tmp_path):
    records, spec, images = _mini(data_root)
    copy = _inverted_copy(records, tmp_path / "stylized")
    plain = _dataset(records, spec, train=True)
    never = _dataset(records, spec, StylizedImages(copy, images, 0.0), train=True)
    always = _dataset(records, spec, StylizedImages(copy, images, 1.0), train=True)
    direct = _dataset(_rerooted(records, copy), spec, train=True)  # what the copy's crops are
    for i in range(len(records)):
        a, b, c, d = plain[i], never[i], always[i], direct[i]
        assert torch.equal(a["image"], b["image"]) and not b["meta"]["stylized"]
        # same augmentation draws (flip, rotation, scale), the stylized pixels
        assert c["meta"]["stylized"] and torch.equal(c["image"], d["image"])
        assert not torch.equal(c["image"], a["image"])
        for key in ("target", "target_weight"):  # targets untouched: geometry is identical
            assert torch.equal(a[key], c[key]) and torch.equal(a[key], b[key])
        assert np.array_equal(a["meta"]["joints"], c["meta"]["joints"])
        assert a["meta"]["flipped"] == c["meta"]["flipped"]


def _constant_set(root: Path, n: int, value: int, stylized_value: int) -> tuple[list, object, Path, Path]:
    """``n`` 24x32 images of one grey ``value`` and a stylized copy of ``stylized_value``."""
    images, copy = root / "images", root / "stylized"
    images.mkdir(parents=True)
    copy.mkdir()
    from robustpose.data import get_spec
    coco = {"images": [], "annotations": [], "categories": [{
        "id": 1, "name": "person", "keypoints": list(get_spec("coco").keypoint_names),
        "skeleton": []}]}
    kps = [12, 16, 2] * 17
    for i in range(n):
        name = f"{i:03d}.png"
        cv2.imwrite(str(images / name), np.full((32, 24, 3), value, np.uint8))
        cv2.imwrite(str(copy / name), np.full((32, 24, 3), stylized_value, np.uint8))
        coco["images"].append({"id": i, "file_name": name, "width": 24, "height": 32})
        coco["annotations"].append({"id": i, "image_id": i, "category_id": 1, "bbox": [4, 4, 16, 24],
                                    "area": 384, "iscrowd": 0, "num_keypoints": 17, "keypoints": kps})
    (root / "annotations.json").write_text(json.dumps(coco))
    records, spec = load_coco_records(root / "annotations.json", images, aspect_ratio=0.75)
    return records, spec, images, copy


def test_the_fraction_is_near_prob_and_the_draws_repeat_per_seed(tmp_path):
    records, spec, images, copy = _constant_set(tmp_path, 50, 40, 200)
    stylized = StylizedImages(copy, images, 0.3)

    def draws(seed: int) -> list[bool]:
        ds = TopDownDataset(records, spec, input_size=(12, 16), heatmap_size=(3, 4),
                            seed=seed, stylized=stylized)
        out = []
        for epoch in range(8):
            ds.set_epoch(epoch)
            for i in range(len(ds)):
                item = ds[i]
                centre = float(item["image"][:, 8, 6].mean()) * 255  # inside the image
                assert (centre > 120) == item["meta"]["stylized"]  # the flag is the pixels
                out.append(item["meta"]["stylized"])
        return out

    first = draws(0)
    assert abs(np.mean(first) - 0.3) < 0.06, np.mean(first)  # 400 draws: 3 sd ~ 0.07
    assert draws(0) == first  # a rerun makes the same choices
    assert draws(1) != first  # another seed, other choices
    # per epoch, not once per item: an item is not stylized in every epoch
    per_item = np.array(first).reshape(8, 50).sum(0)
    assert per_item.min() < 8 and per_item.max() > 0


def test_missing_and_resized_stylized_files_are_one_line_errors(data_root, tmp_path):
    records, spec, images = _mini(data_root)
    copy = _inverted_copy(records, tmp_path / "stylized")
    names = sorted({r.image_path.name for r in records})
    (copy / names[1]).unlink()
    block = {"root": str(copy), "prob": 0.5}
    with pytest.raises(StylizedImageError) as err:  # fail fast, before training
        parse_block(block).build(images, records)
    msg = str(err.value)
    assert msg.startswith(str(copy / names[1]) + ": stylized image not found") and "\n" not in msg
    # unchecked, the read fails naming the file, never skipped as an unreadable original
    lazy = parse_block({**block, "check_files": False}).build(images, records)
    ds = _dataset(records, spec, StylizedImages(copy, images, 1.0))
    index = next(i for i, r in enumerate(records) if r.image_path.name == names[1])
    with pytest.raises(StylizedImageError, match=str(copy / names[1])):
        ds[index]
    assert lazy.prob == 0.5
    # a stylized image of another size than its original
    small = cv2.imread(str(copy / names[0]))[::2, ::2]
    cv2.imwrite(str(copy / names[0]), small)
    index = next(i for i, r in enumerate(records) if r.image_path.name == names[0])
    cv2.imwrite(str(copy / names[1]), cv2.imread(str(images / names[1])))  # back in place
    with pytest.raises(StylizedImageError, match="stylized image is .* but its original is"):
        parse_block(block).build(images, records)  # caught at start-up from the headers
    with pytest.raises(StylizedImageError) as err:
        ds[index]
    msg = str(err.value)
    h, w = small.shape[:2]
    assert msg.startswith(f"{copy / names[0]}: stylized image is {w}x{h} but its original")
    original = cv2.imread(str(images / names[0])).shape
    assert f"is {original[1]}x{original[0]}" in msg and "\n" not in msg


def test_bad_blocks_and_escaping_paths_are_refused(data_root, tmp_path):
    records, spec, images = _mini(data_root, 1)
    copy = _inverted_copy(records, tmp_path / "stylized")
    for block, needle in (({"root": str(copy), "prob": 1.5}, "prob must be a number in [0, 1]"),
                          ({"root": str(copy), "prob": True}, "prob must be a number"),
                          ({"root": str(copy)}, "prob is required"),
                          ({"prob": 0.5}, "root is required"),
                          ({"root": str(copy), "prob": 0.5, "porb": 1}, "unknown key 'porb'"),
                          ({"root": str(copy), "prob": 0.5, "suffix": "png"}, "suffix must be"),
                          ("somewhere", "must be a mapping")):
        with pytest.raises(ValueError, match="data.train.stylized") as err:
            parse_block(block)
        assert needle in str(err.value), (block, str(err.value))
    with pytest.raises(FileNotFoundError, match="data.train.stylized.root"):
        parse_block({"root": str(tmp_path / "nowhere"), "prob": 0.5})
    # a stylized file that is a symlink out of the stylized root is refused when read
    outside = tmp_path / "outside"
    outside.mkdir()
    name = records[0].image_path.name
    (outside / name).write_bytes((copy / name).read_bytes())
    (copy / name).unlink()
    os.symlink(outside / name, copy / name)
    ds = _dataset(records, spec, StylizedImages(copy, images, 1.0))
    with pytest.raises(ValueError, match="resolves outside the image root"):
        ds[0]
    # an image outside the split's image folder has no stylized path
    with pytest.raises(ValueError, match="not under the image folder"):
        StylizedImages(copy, tmp_path, 1.0).relative(records[0])
    # suffix: the copy's files may carry another extension
    png = StylizedImages(copy, images, 1.0, suffix=".png")
    assert png.relative(records[0]) == Path(name).with_suffix(".png").name


def test_the_config_block_reaches_the_training_split(data_root, tmp_path):
    """``data.train.stylized`` through load_config / build_split: root relative to
    data.root, '..' refused, the val split refuses it, a wrong root fails before loading."""
    records, _, _ = _mini(data_root, 28)
    _inverted_copy(records, tmp_path / "coco_train_mini_stylized")
    (tmp_path / "coco_train_mini").symlink_to(data_root / "coco_train_mini")
    base = [f"data.root={tmp_path}"]
    config = load_config(TINY, base + ["data.train.stylized={root: coco_train_mini_stylized, prob: 1}"])
    train = build_split(config, "train", train=True, progress=False)
    item = train.dataset[0]
    assert item["meta"]["stylized"] and train.dataset.stylized.root == tmp_path / "coco_train_mini_stylized"
    with pytest.raises(ConfigError, match="escapes data.root"):
        build_split(load_config(TINY, base + ["data.train.stylized={root: ../x, prob: 1}"]),
                    "train", train=True, progress=False)
    with pytest.raises(ConfigError, match="data.val.stylized: a stylized copy is a training option"):
        build_split(load_config(TINY, base + ["data.val.stylized={root: x, prob: 1}"]),
                    "val", train=False, progress=False)


def test_the_shipped_stylized_configs_name_a_valid_block(tmp_path):
    """configs/advmix/*stylized*.yaml: a block of known keys with prob in [0, 1] and a
    placeholder root; building the split names that root in one line."""
    from robustpose.training.methods import build_method
    configs = sorted((REPO / "configs" / "advmix").glob("*stylized*.yaml"))
    names = {p.name for p in configs}
    assert {"synthpose_stylized.yaml", "synthpose_stylized_advmix.yaml",
            "coco_sbl_resnet50_256x192_stylized.yaml",
            "coco_sbl_resnet50_256x192_stylized_advmix.yaml"} <= names
    for path in configs:
        config = load_config(path, [f"data.root={tmp_path}"])
        block = config["data"]["train"]["stylized"]
        assert set(block) <= set(STYLIZED_KEYS) and 0 < block["prob"] <= 1, path
        assert build_method(config).name == config["train"]["method"]
        assert ("advmix" in path.stem) == (config["train"]["method"] == "advmix"), path
        with pytest.raises(FileNotFoundError) as err:
            build_split(config, "train", train=True, progress=False)
        assert "data.train.stylized.root" in str(err.value) and "\n" not in str(err.value)


def test_paper_row_configs_are_their_standard_config_plus_the_method():
    """Every COCO / MPII row in configs/advmix/ (MPII R101 and the Stylized rows included)
    is its standard config with only the method, its schedule, the start weights and the
    stylized copy changed."""
    changed = {("train", "method"), ("train", "method_args"), ("train", "epochs"),
               ("train", "lr_steps"), ("model", "init_from"), ("name",)}

    def flat(node, prefix=()):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from flat(value, prefix + (key,))
        else:
            yield prefix, node

    rows = sorted(p for p in (REPO / "configs" / "advmix").glob("*.yaml")
                  if p.name.startswith(("coco_", "mpii_")))
    assert (REPO / "configs" / "advmix" / "mpii_sbl_resnet101_256x256_advmix.yaml") in rows
    for path in rows:
        dataset, rest = path.stem.split("_", 1)
        base = rest.replace("_stylized", "").replace("_advmix", "")
        standard = load_config(REPO / "configs" / dataset / f"{base}.yaml")
        config = load_config(path)
        diff = {k for k, v in flat(config) if dict(flat(standard)).get(k, "<none>") != v
                and not k[0].startswith("_")}
        stylized = {k for k in diff if k[:3] == ("data", "train", "stylized")}
        assert bool(stylized) == ("stylized" in path.stem), path
        other = {k for k in diff - stylized if not any(k[:len(c)] == c for c in changed)}
        assert not other, (path, sorted(other))
        assert (config["train"]["method"] == "advmix") == ("advmix" in path.stem), path
