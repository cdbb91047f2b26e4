"""Issue 24 items 6 and 11: training that reads no image is an error, skips are counted per
epoch; --resume with a checkpoint of another architecture is one line."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from robustpose.training import Trainer, load_config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny_coco.yaml"

torch.set_num_threads(1)


def _copy_train_set(data_root: Path, root: Path, unreadable: int | None) -> Path:
    """coco_train_mini's first 2 images; the first ``unreadable`` of them (None: all) broken."""
    source = data_root / "coco_train_mini"
    ann = json.loads((source / "annotations.json").read_text())
    images = sorted(ann["images"], key=lambda i: i["id"])[:2]
    ids = {i["id"] for i in images}
    ann = dict(ann, images=images, annotations=[a for a in ann["annotations"]
                                                if a["image_id"] in ids])
    (root / "images").mkdir(parents=True)
    (root / "annotations.json").write_text(json.dumps(ann))
    for n, image in enumerate(images):
        target = root / "images" / image["file_name"]
        if unreadable is None or n < unreadable:
            target.write_bytes(b"not an image")
        else:
            shutil.copy(source / "images" / image["file_name"], target)
    return root


def _config(root: Path, out: Path, *overrides: str) -> dict:
    return load_config(TINY, [f"data.root={root}", "data.train.annotations=annotations.json",
                              "data.train.images=images", f"output_dir={out}", "val.every=0",
                              "train.epochs=1", "train.batch_size=4", *overrides])


def test_training_that_reads_no_image_is_an_error(data_root, tmp_path):
    root = _copy_train_set(data_root, tmp_path / "set", unreadable=None)
    trainer = Trainer(_config(root, tmp_path / "out"), device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"epoch 1: no training image could be read "
                                         r"\(\d+ skipped; .*not an image|epoch 1: no training"):
        trainer.fit()
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


def test_skipped_training_images_are_counted_per_epoch(data_root, tmp_path):
    root = _copy_train_set(data_root, tmp_path / "set", unreadable=1)
    ann = json.loads((root / "annotations.json").read_text())
    first = min(i["id"] for i in ann["images"])
    broken_people = sum(1 for a in ann["annotations"] if a["image_id"] == first
                        and a.get("num_keypoints", 0) > 0 and not a.get("iscrowd"))
    trainer = Trainer(_config(root, tmp_path / "out"), device="cpu", progress=False)
    people = len(trainer.train_data.dataset)
    assert 0 < broken_people < people
    row = trainer.fit()[-1]
    assert row["train_skipped_images"] == broken_people
    assert "train_skipped_images" in (tmp_path / "out" / "log.csv").read_text()


def test_resume_from_another_architecture_is_one_line(data_root, tmp_path):
    trainer = Trainer(_config(data_root, tmp_path / "a", "model.name=mobilenetv2",
                              "model.extra=null", "data.train.annotations="
                              "coco_train_mini/annotations.json",
                              "data.train.images=coco_train_mini/images"),
                      device="cpu", progress=False)
    trainer.save(tmp_path / "a.pt", 1)
    other = Trainer(_config(data_root, tmp_path / "b", "data.train.annotations="
                            "coco_train_mini/annotations.json",
                            "data.train.images=coco_train_mini/images"),
                    device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"a\.pt: --resume checkpoint does not fit model "
                                         r"'sbl_resnet18' \(Error"):
        other.resume(tmp_path / "a.pt")
