"""The dataset registry (robustpose.data.registry): look-ups, one-line errors, keypoint counts
of the real shared sets, and training and the benchmark building the same dataset for the
same name through its one factory."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robustpose.data import (FROM_JSON, DatasetInfo, SplitLayout, find_dataset_files,
                             get_dataset_info, keypoint_count, list_datasets, load_dataset,
                             register_dataset)
from robustpose.data.registry import DATASETS_REGISTRY

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny_coco.yaml"

#: the keypoint count of every shared set (its json's keypoint category; MPII's 16 joints)
SHARED_COUNTS = {"coco_val_mini": 17, "coco_train_mini": 17, "coco_mmpose": 17,
                 "mpii_mini": 16, "rhd_mini": 21}


def test_every_dataset_the_code_accepted_is_registered():
    assert set(list_datasets()) >= {"synth", "coco", "mpii", "ochuman", "crowdpose",
                                    "coco-format"}
    assert list_datasets("coco*") == ["coco", "coco-format"]
    mpii, crowd = get_dataset_info("mpii"), get_dataset_info("crowdpose")
    assert (mpii.format, mpii.metric, mpii.keypoints) == ("mpii", "PCKh", "mpii")
    assert (crowd.metric, crowd.area_rule, crowd.keypoints) == ("AP", "crowdpose", "crowdpose")
    assert get_dataset_info("coco-format").keypoints == FROM_JSON
    assert get_dataset_info("coco").layout("train").annotations[0] == \
        "annotations/person_keypoints_train2017.json"
    with pytest.raises(Exception):  # frozen: an entry cannot be changed in place
        mpii.metric = "AP"


def test_unknown_names_are_one_line_naming_the_choices():
    with pytest.raises(ValueError) as err:
        get_dataset_info("cocoo")
    message = str(err.value)
    assert "\n" not in message and "'cocoo'" in message
    for name in ("coco", "coco-format", "crowdpose", "mpii", "ochuman", "synth"):
        assert name in message
    with pytest.raises(ValueError, match="no split 'train'.*val, test"):
        get_dataset_info("ochuman").layout("train")
    with pytest.raises(ValueError, match="metric must be one of AP, PCKh, PCK"):
        DatasetInfo("x", "bad", metric="mAP")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(get_dataset_info("coco").__class__("coco", "again"))


def test_a_registered_set_is_found_by_its_layout(data_root, tmp_path):
    """register_dataset: the new name resolves its files and counts from its json."""
    info = register_dataset("test-hands", description="hands in their own folders",
                            splits=(("*", SplitLayout(("labels/hands.json",), ("pics",))),))
    try:
        assert "test-hands" in list_datasets() and info.metric == "AP"
        (tmp_path / "labels").mkdir()
        (tmp_path / "pics").symlink_to(data_root / "rhd_mini" / "images")
        (tmp_path / "labels" / "hands.json").write_text(
            (data_root / "rhd_mini" / "annotations.json").read_text())
        ann, images = find_dataset_files("test-hands", tmp_path)
        assert ann == tmp_path / "labels" / "hands.json" and images == tmp_path / "pics"
        assert keypoint_count("test-hands", data_root=tmp_path) == 21
        with pytest.raises(FileNotFoundError, match="labels/hands.json"):
            find_dataset_files("test-hands", tmp_path / "elsewhere")
    finally:
        del DATASETS_REGISTRY["test-hands"]


def test_keypoint_counts_without_files():
    assert keypoint_count("mpii") == 16
    assert keypoint_count("crowdpose") == 14
    assert keypoint_count("coco") == 17 and keypoint_count("synth") == 17
    assert keypoint_count("coco-format") == 17  # no file at hand: the COCO default
    assert keypoint_count("coco-format", spec="onehand10k") == 21


@pytest.mark.parametrize("folder", sorted(SHARED_COUNTS))
def test_keypoint_count_of_every_shared_set(data_root, folder):
    """The count a run builds a registry model for, from the real files."""
    root = data_root / folder
    if not root.is_dir():
        pytest.skip(f"{root} absent")
    name = "mpii" if folder.startswith("mpii") else "coco-format"
    assert keypoint_count(name, data_root=root) == SHARED_COUNTS[folder]
    assert keypoint_count(name, root / "annotations.json") == SHARED_COUNTS[folder]
    loaded = load_dataset(name, data_root=root, aspect_ratio=0.75)
    assert loaded.spec.num_keypoints == SHARED_COUNTS[folder] and loaded.records


def test_hand_set_under_a_preset_name_counts_from_its_json(data_root):
    """The bug of the four `{"mpii": 16, "crowdpose": 14}.get(dataset, 17)` lines: a
    COCO-format hand file given to a COCO-format entry is 21 keypoints, not 17."""
    ann = data_root / "rhd_mini" / "annotations.json"
    assert keypoint_count("coco", ann) == 21
    assert keypoint_count("coco-format", ann) == 21



def test_keypoint_count_parses_a_file_once_and_an_edited_file_again(data_root, tmp_path, monkeypatch):
    """A card asks once per face; the annotation file is parsed once unless it changed."""
    import robustpose.data.records as records
    ann = tmp_path / "annotations.json"
    ann.write_text((data_root / "rhd_mini" / "annotations.json").read_text())
    reads = []
    real = records.read_json
    monkeypatch.setattr(records, "read_json", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    assert [keypoint_count("coco-format", ann) for _ in range(3)] == [21, 21, 21]
    assert len(reads) == 1
    data = json.loads(ann.read_text())
    for cat in data["categories"]:
        cat["keypoints"] = cat["keypoints"][:17]
    ann.write_text(json.dumps(data))
    assert keypoint_count("coco-format", ann) == 17 and len(reads) == 2

def _same_records(a: list, b: list) -> None:
    key = lambda r: (str(r.image_id), tuple(np.round(r.bbox, 3)))  # noqa: E731
    a, b = sorted(a, key=key), sorted(b, key=key)
    assert [str(r.image_id) for r in a] == [str(r.image_id) for r in b]
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(ra.center, rb.center)
        np.testing.assert_allclose(ra.scale, rb.scale)
        np.testing.assert_allclose(ra.keypoints, rb.keypoints)


@pytest.mark.parametrize("dataset,folder", [("coco-format", "rhd_mini"),
                                            ("coco-format", "coco_val_mini"),
                                            ("mpii", "mpii_mini")])
def test_training_and_benchmark_build_the_same_dataset(data_root, dataset, folder):
    """data.type=<name> + data.root (files by the registry layout) in training and
    --dataset <name> --data-root in a run: same records, spec, metric and its settings."""
    from robustpose.benchmarking.sources import resolve_source
    from robustpose.training import load_config
    from robustpose.training.datasets import build_metric_factory, load_records

    root = data_root / folder
    if not root.is_dir():
        pytest.skip(f"{root} absent")
    config = load_config(TINY, [f"data.type={dataset}", f"data.root={root}", "data.train=null",
                                "data.val=null", "data.input_size=[64,64]"])
    records, spec, ann = load_records(config, "val", progress=False)
    source = resolve_source(dataset, root, input_size=(64, 64))
    assert spec.name == source.spec.name and ann == source.annotation_file
    _same_records(records, source.records)
    train_metric = build_metric_factory(config, spec, ann, records)()
    run_metric = source.make_metric()
    assert type(train_metric) is type(run_metric)
    assert source.metric_name == get_dataset_info(dataset).metric
    if source.metric_name == "AP":
        assert train_metric.conventions == run_metric.conventions


def test_training_accepts_every_registry_name_and_names_them(data_root):
    from robustpose.config import ConfigError
    from robustpose.training import load_config

    root = data_root / "coco_val_mini"
    config = load_config(TINY, ["data.type=crowdpose", f"data.root={root}"])
    assert config["data"]["type"] == "crowdpose"
    with pytest.raises(ConfigError, match="data.type must be one of coco, coco-format"):
        load_config(TINY, ["data.type=cocoo"])


def test_training_metric_keeps_the_old_names(data_root):
    from robustpose.config import ConfigError
    from robustpose.evaluation import CocoKeypointMetric, build_dataset_metric
    from robustpose.training import load_config
    from robustpose.training.datasets import build_metric_factory

    ann = data_root / "coco_val_mini" / "annotations.json"
    for name in ("coco", "AP"):
        config = load_config(TINY, [f"val.metric={name}"])
        assert isinstance(build_metric_factory(config, None, ann, [])(), CocoKeypointMetric)
    with pytest.raises(ConfigError, match="val.metric must be one of AP, PCKh, PCK"):
        build_metric_factory(load_config(TINY, ["val.metric=map"]), None, ann, [])
    with pytest.raises(ValueError, match="unknown option 'nms'; choose from .*nms_mode"):
        build_dataset_metric("AP", annotation_file=ann, nms="oks")


def test_layout_files_are_found_and_missing_ones_named(data_root, tmp_path):
    ann, images = find_dataset_files("mpii", data_root / "mpii_mini")
    assert ann.name == "annotations.json" and images.name == "images"
    with pytest.raises(FileNotFoundError) as err:
        find_dataset_files("crowdpose", tmp_path)
    assert "json/crowdpose_val.json" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="needs --data-root"):
        find_dataset_files("coco")
    bad = tmp_path / "list.json"
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="list.json"):
        keypoint_count("coco-format", bad)


def test_a_run_builds_a_registry_model_for_the_hand_sets_21_keypoints(data_root, tmp_path):
    """A registry model benchmarked on a COCO-format hand set is built for the json's 21
    keypoints (the old `.get(dataset, 17)` built 17 and the run failed on the count)."""
    import torch

    from robustpose.benchmarking.api import run_benchmark

    torch.manual_seed(0)  # the registry model's random initialisation only
    card = run_benchmark("sbl_resnet18", dataset="coco-format", data_root=data_root / "rhd_mini",
                         corruptions="gaussian_noise", severities="1", input_size=(64, 64),
                         extra={"NUM_DECONV_FILTERS": [64, 64, 64]}, out=tmp_path / "run",
                         workers=0, plots=False, progress=False)
    assert card["clean"] is not None and (tmp_path / "run" / "run.json").is_file()
