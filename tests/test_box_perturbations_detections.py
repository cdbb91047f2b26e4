"""Box perturbations on detector boxes (issue 27 section 3) and the -C writer's refusal.

Detector boxes (``--detections``, a COCO results json) carry no annotation id, so each is
seeded by its index among its image's boxes: the same seed gives the same boxes whatever
order the images come in. A box perturbation moves the crop, not the pixels, so
``robustpose corrupt`` / :func:`write_corrupted_dataset` refuse it in one line.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robustpose.data.box_perturbations import perturb_box, perturb_records
from robustpose.utils.seeding import derive_seed


def _detector_source(data_root: Path, max_images: int | None = 3):
    from robustpose.benchmarking.sources import resolve_source

    root = data_root / "coco_mmpose"
    if not (root / "detections.json").is_file():
        pytest.skip(f"{root}/detections.json absent")
    return resolve_source("coco-format", root, detections=root / "detections.json",
                          input_size=(96, 128), max_images=max_images)


def test_detector_boxes_are_seeded_per_person(data_root) -> None:
    source = _detector_source(data_root)
    records = list(source.records)
    assert records and all((r.extra or {}).get("ann_id") is None for r in records)
    by_image: dict = {}
    for r in records:
        by_image.setdefault(r.image_id, []).append(r)
    assert max(len(v) for v in by_image.values()) >= 2   # an image with several boxes

    a = perturb_records(records, "box_jitter", 3, seed=0, aspect_ratio=96 / 128)
    b = perturb_records(records, "box_jitter", 3, seed=0, aspect_ratio=96 / 128)
    c = perturb_records(records, "box_jitter", 3, seed=1, aspect_ratio=96 / 128)
    boxes = lambda rs: np.array([r.extra["perturbed_bbox"] for r in rs])  # noqa: E731
    np.testing.assert_array_equal(boxes(a), boxes(b))            # same seed, same boxes
    assert not np.allclose(boxes(a), boxes(c))                     # another seed moves them
    assert not np.allclose(boxes(a), np.array([r.bbox for r in records]))

    # a box without an annotation id is seeded by (image id, its index in that image)
    first = {}
    for record, moved in zip(records, a):
        index = first.setdefault(record.image_id, 0)
        first[record.image_id] += 1
        rng = np.random.default_rng(derive_seed(0, "box_jitter", 3, str(record.image_id),
                                                f"det{index}"))
        np.testing.assert_allclose(moved.extra["perturbed_bbox"],
                                   perturb_box(record.bbox, "box_jitter", 3, rng))

    # images in another order: every person's box moves the same way
    reordered = [r for image in reversed(list(by_image)) for r in by_image[image]]
    moved = perturb_records(reordered, "box_jitter", 3, seed=0, aspect_ratio=96 / 128)
    key = lambda rs: {(r.image_id, tuple(r.bbox)): tuple(r.extra["perturbed_bbox"])  # noqa: E731
                      for r in rs}
    assert key(moved) == key(a)


def test_benchmark_box_cell_runs_on_detector_boxes(tmp_path, data_root) -> None:
    """A box cell of the benchmark crops at the perturbed detector boxes: its AP differs
    from the clean cell's on the same detections, and a rerun computes nothing new."""
    from robustpose.benchmarking.api import run_benchmark

    root = data_root / "coco_mmpose"
    if not (root / "detections.json").is_file():
        pytest.skip(f"{root}/detections.json absent")
    common = dict(dataset="coco-format", data_root=root, detections=root / "detections.json",
                  corruptions="box_scale", severities="5", max_images=3, workers=0,
                  out=tmp_path / "run", plots=False, progress=False)
    card = run_benchmark(**common)
    assert set(card["per_cell"]) == {"box_scale"}
    assert card["box"]["perturbations"] == ["box_scale"]
    settings = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "detections" in json.dumps(settings)
    assert card["per_cell"]["box_scale"]["5"] != pytest.approx(card["clean"], abs=1e-6)
    again = run_benchmark(**common)
    assert again["per_cell"] == card["per_cell"]


@pytest.mark.parametrize("names", ["box", "fog,box_jitter"])
def test_writer_refuses_box_perturbations(tmp_path, names) -> None:
    from robustpose.data.corrupted_writer import write_corrupted_dataset

    source = tmp_path / "in"
    source.mkdir()
    (source / "a.png").write_bytes(b"")   # never read: the refusal comes first
    with pytest.raises(ValueError, match="perturb the person box") as info:
        write_corrupted_dataset(source, tmp_path / "out", names, "1")
    assert "\n" not in str(info.value) and "box_jitter" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_corrupt_command_refuses_box_in_one_line(tmp_path, capsys) -> None:
    from robustpose.cli import main

    source = tmp_path / "in"
    source.mkdir()
    code = main(["corrupt", str(source), str(tmp_path / "out"), "--corruptions", "box_shift",
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "box_shift" in err[0], err
