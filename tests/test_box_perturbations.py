"""Box perturbations (issue 27 section 3): magnitudes, seeding, the crop rule, the grammar,
the stream (pixels untouched), the stability run's image-frame comparison, the benchmark."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from robustpose.corruptions.selection import parse_corruptions, pixel_corruptions
from robustpose.data.box_perturbations import (BOX_MAGNITUDES, magnitude, perturb_box,
                                               perturb_records, perturbed_center_scale,
                                               reframe_points)
from robustpose.data.records import PersonRecord
from robustpose.geometry import box_to_center_scale

BOX = (100.0, 50.0, 80.0, 200.0)   # xywh image px


def record(box=BOX, ann=7, image_id=1, aspect=0.75, padding=1.25) -> PersonRecord:
    center, scale = box_to_center_scale(box, aspect, padding)
    return PersonRecord(image_id, Path("x.jpg"), np.asarray(box, float), 1.0,
                        np.zeros((17, 3)), box[2] * box[3], center, scale, {"ann_id": ann})


def test_magnitudes_are_exact() -> None:
    rng = np.random.default_rng(0)
    x, y, w, h = BOX
    for sev in range(1, 6):
        f = BOX_MAGNITUDES["box_shift"][sev - 1]
        nx, ny, nw, nh = perturb_box(BOX, "box_shift", sev, rng)
        dx, dy = (nx + nw / 2 - x - w / 2) / w, (ny + nh / 2 - y - h / 2) / h
        assert np.hypot(dx, dy) == pytest.approx(f) and (nw, nh) == (w, h)
        m = BOX_MAGNITUDES["box_scale"][sev - 1]
        nb = perturb_box(BOX, "box_scale", sev, rng)
        assert nb[2] / w in (pytest.approx(1 + m), pytest.approx(1 / (1 + m)))
        assert nb[2] / w == pytest.approx(nb[3] / h)                  # aspect kept
        assert nb[0] + nb[2] / 2 == pytest.approx(x + w / 2)          # centre kept
        nb = perturb_box(BOX, "box_aspect", sev, rng)
        assert nb[2] * nb[3] == pytest.approx(w * h)                  # area kept
        assert nb[2] / w in (pytest.approx(1 + m), pytest.approx(1 / (1 + m)))
    # jitter: each edge moves by N(0, sigma x side); the measured spread over many people
    edges = np.array([perturb_box(BOX, "box_jitter", 3, rng) for _ in range(4000)])
    left = edges[:, 0] - x
    assert left.std() / w == pytest.approx(0.06, rel=0.05) and abs(left.mean()) < 0.5
    with pytest.raises(ValueError, match="box_shift: severity must lie in 1..5"):
        magnitude("box_shift", 6)
    with pytest.raises(ValueError, match="unknown box perturbation"):
        magnitude("box_rotate", 1)


def test_seeded_per_person_and_only_the_crop_moves() -> None:
    people = [record(ann=1), record(ann=2), record(ann=1, image_id=2)]
    a = perturb_records(people, "box_jitter", 4, seed=0, aspect_ratio=0.75)
    b = perturb_records(people, "box_jitter", 4, seed=0, aspect_ratio=0.75)
    c = perturb_records(people, "box_jitter", 4, seed=1, aspect_ratio=0.75)
    assert all(np.array_equal(p.center, q.center) for p, q in zip(a, b))
    boxes = [p.extra["perturbed_bbox"] for p in a]
    assert len({tuple(bx) for bx in boxes}) == 3      # same box, other person: other draw
    assert not np.allclose(a[0].center, c[0].center)  # another run seed
    for old, new in zip(people, a):
        assert np.array_equal(new.bbox, old.bbox) and new.keypoints is old.keypoints
        assert new.extra["box_perturbation"] == "box_jitter/4"
    # a person's draw does not depend on who else is in the list
    alone = perturb_records(people[1:2], "box_jitter", 4, seed=0, aspect_ratio=0.75)
    assert np.array_equal(alone[0].center, a[1].center)


@pytest.mark.parametrize("padding", [1.0, 1.25, 1.6])
def test_crop_rule_carries_the_padding(padding) -> None:
    """The perturbed crop is exactly the crop rule applied to the perturbed box, whatever
    the padding the clean crop was made with."""
    rng = np.random.default_rng(3)
    person = record(padding=padding)
    for name in BOX_MAGNITUDES:
        new_box = perturb_box(BOX, name, 5, rng)
        center, scale = perturbed_center_scale(person.center, person.scale, BOX, new_box, 0.75)
        want_c, want_s = box_to_center_scale(new_box, 0.75, padding)
        np.testing.assert_allclose(center, want_c, rtol=1e-5)
        np.testing.assert_allclose(scale, want_s, rtol=1e-5)


def test_reframe_matches_the_codec_back_projection() -> None:
    from robustpose.codecs import heatmaps_to_image_coords

    rng = np.random.default_rng(5)
    pts = rng.uniform(0, 48, size=(2, 17, 2))
    c1, s1 = np.array([[150.0, 140.0], [60.0, 70.0]]), np.array([[1.2, 1.6], [0.5, 0.666]])
    c2, s2 = np.array([[170.0, 120.0], [64.0, 66.0]]), np.array([[1.5, 2.0], [0.4, 0.533]])
    moved = reframe_points(pts, c1, s1, c2, s2, (48, 64))
    np.testing.assert_allclose(heatmaps_to_image_coords(moved, c2, s2, (48, 64)),
                               heatmaps_to_image_coords(pts, c1, s1, (48, 64)), atol=1e-3)


def test_grammar_family_and_pixel_groups() -> None:
    assert parse_corruptions("box") == ["box_shift", "box_scale", "box_aspect", "box_jitter"]
    assert parse_corruptions("posebench,box_jitter")[-1] == "box_jitter"
    for group in ("all", "everything", "benchmark", "posebench"):
        assert not any(n.startswith("box_") for n in parse_corruptions(group))
    assert pixel_corruptions(parse_corruptions("fog,box")) == ["fog"]
    with pytest.raises(ValueError, match="box_shift"):   # the help names them
        parse_corruptions("box_rotate")


def test_stream_moves_the_crop_not_the_pixels(data_root) -> None:
    from robustpose.benchmarking.cells import Cell
    from robustpose.benchmarking.sources import resolve_source
    from robustpose.benchmarking.stream import CellImages, CellStream

    source = resolve_source("coco-format", data_root / "coco_val_mini", input_size=(96, 128),
                            max_images=2)
    images = CellImages(seed=0, corrupted_root="/nonexistent")  # a box cell never reads it
    cells = [Cell("clean", 0), Cell("box_shift", 5)]
    assert images.transform(cells[1]) is None
    stream = CellStream(cells, source.records, source.spec, (96, 128), images,
                        image_root=source.image_root)
    clean, moved = stream[(0, 0)], stream[(1, 0)]
    assert not np.allclose(clean["meta"]["center"], moved["meta"]["center"])
    np.testing.assert_array_equal(clean["meta"]["bbox"], moved["meta"]["bbox"])
    # the moved crop is the clean image cropped at the perturbed centre / scale
    from robustpose.data import load_image
    from robustpose.geometry import crop_image

    image = load_image(source.records[0].image_path)
    crop, _ = crop_image(image, moved["meta"]["center"], moved["meta"]["scale"], (96, 128))
    got = (torch.as_tensor(moved["image"]).permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(got - crop.astype(np.float64)).max() <= 1.0


class BlobModel:
    """An exactly equivariant 'pose model': every keypoint's heatmap is the crop's mean
    intensity pooled by 4, so its maximum sits on the image's one bright blob."""

    input_size = (96, 128)

    def __init__(self) -> None:
        from robustpose.codecs import InferenceSetting, build_codec

        self.inference = InferenceSetting(input_size=self.input_size, heatmap_size=(24, 32))
        self.codec = build_codec("hrnet")

    def outputs(self, crops: torch.Tensor):
        pooled = torch.nn.functional.avg_pool2d(crops.mean(1, keepdim=True), 4)
        return "heatmaps", pooled.repeat(1, 17, 1, 1), self.codec


@pytest.mark.parametrize("name", ["box_shift", "box_scale", "box_jitter"])
def test_stability_compares_box_cells_in_image_coordinates(name) -> None:
    """The blob is one image point: re-expressed on the clean crop's grid its maximum stays
    within a heatmap px of the clean one, while the raw crop positions move by several."""
    from robustpose.benchmarking.cells import Cell
    from robustpose.benchmarking.stability_run import batch_outputs, clean_crops_of
    from robustpose.data import get_spec
    from robustpose.geometry import crop_image

    yy, xx = np.mgrid[0:400, 0:400]
    blob = np.exp(-((xx - 120.0) ** 2 + (yy - 100.0) ** 2) / (2 * 6.0 ** 2))  # off the centre
    image = np.repeat((255 * blob)[..., None], 3, axis=2).astype(np.uint8)
    people = [record(ann=i, aspect=0.75) for i in range(6)]
    moved = perturb_records(people, name, 5, seed=0, aspect_ratio=0.75)
    model, spec = BlobModel(), get_spec("coco")

    def run(recs, cell):
        crops = np.stack([crop_image(image, r.center, r.scale, (96, 128))[0] for r in recs])
        crops = torch.as_tensor(crops).permute(0, 3, 1, 2).float() / 255
        meta = {"center": np.stack([r.center for r in recs]),
                "scale": np.stack([r.scale for r in recs]), "index": np.arange(len(recs))}
        return batch_outputs(model, crops, meta, spec, clean_crops_of(cell, people, meta))

    clean = run(people, Cell("clean", 0))
    from robustpose.evaluation.stability import heatmap_maxima

    ref = heatmap_maxima(clean["heatmaps"])
    out = run(moved, Cell(name, 5))
    assert np.abs(out["positions"] - ref).max() <= 1.5
    raw = heatmap_maxima(out["heatmaps"])
    assert np.abs(raw - ref).max() >= 2.0   # without re-framing the blob 'moved'


def test_benchmark_box_cells_and_card(tmp_path, data_root) -> None:
    from robustpose.benchmarking.api import run_benchmark

    card = run_benchmark(dataset="coco-format", data_root=data_root / "coco_val_mini",
                         corruptions="fog,box_shift", severities="5", max_images=4,
                         workers=0, out=tmp_path / "run", plots=False, progress=False)
    assert set(card["per_cell"]) == {"fog", "box_shift"}
    assert card["box"]["perturbations"] == ["box_shift"]
    assert card["box"]["mean"] == pytest.approx(card["per_cell"]["box_shift"]["5"])
    assert card["mPC"] == pytest.approx(card["per_cell"]["fog"]["5"], abs=1e-3)  # box not in mPC
    assert card["mRR"] == pytest.approx(card["rPC"], abs=1e-3)
    table = (tmp_path / "run" / "table.md").read_text()
    assert "| mRR |" in table and "BoxShift" in table
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["box"]["magnitudes"]


def test_report_baseline_mce(tmp_path, capsys) -> None:
    from robustpose.benchmarking.api import run_benchmark
    from robustpose.cli import main

    common = dict(max_images=4, workers=0, plots=False, progress=False, severities="1")
    run_benchmark(corruptions="fog", out=tmp_path / "a", **common)
    run_benchmark(corruptions="fog", out=tmp_path / "b", seed=1, **common)
    run_benchmark(corruptions="snow", out=tmp_path / "c", **common)
    assert main(["report", str(tmp_path / "a"), "--baseline", str(tmp_path / "a")]) == 0
    assert "mCE 100.0   relative mCE 100.0" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "a"), "--baseline", str(tmp_path / "b")]) == 0
    result = json.loads((tmp_path / "a" / "mce.json").read_text())
    records = [json.loads(l) for l in (tmp_path / "a" / "results.jsonl").read_text().splitlines()]
    base = [json.loads(l) for l in (tmp_path / "b" / "results.jsonl").read_text().splitlines()]
    ap = {r["corruption"]: r["metrics"]["AP"] if "metrics" in r else r["AP"] for r in records}
    bp = {r["corruption"]: r["metrics"]["AP"] if "metrics" in r else r["AP"] for r in base}
    assert result["mCE"] == pytest.approx(100 * (1 - ap["fog"]) / (1 - bp["fog"]), abs=1e-3)
    capsys.readouterr()
    assert main(["report", str(tmp_path / "a"), "--baseline", str(tmp_path / "c")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no cell fog/1" in err[0], err
