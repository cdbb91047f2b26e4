"""Issue 24, items 13, 15, 16: what a benchmark store may hold and what its mPC covers.

13: a cell in which every image was skipped is not a result (not stored, not reused).
15: corruptions added on a rerun count in mPC (mPC over every cell the folder was asked for).
16: ``corrupt --overwrite`` with other settings on a subset leaves no image of the old ones.
"""
from __future__ import annotations

import json
import shutil

import pytest

import robustpose.benchmarking.api as api


def _coco(data_root, out, **kw):
    return {"dataset": "coco-format", "data_root": data_root / "coco_val_mini",
            "max_images": 2, "progress": False, "plots": False, "out": out, **kw}


def _stored(out):
    return [(r["corruption"], r["severity"]) for r in
            map(json.loads, (out / "results.jsonl").read_text().splitlines())]


def test_a_cell_with_every_image_skipped_is_not_stored(data_root, tmp_path):
    empty = tmp_path / "empty-C"
    empty.mkdir()
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"every image was skipped.*fog/1"):
        api.run_benchmark(**_coco(data_root, out, corruptions="fog", severities="1",
                                  corrupted_root=empty))
    assert _stored(out) == [("clean", 0)]  # the clean cell is a result; fog/1 is not


def test_corruptions_added_on_a_rerun_count_in_mpc(data_root, tmp_path, monkeypatch):
    values = {"clean": 0.5, "gaussian_noise": 0.3, "fog": 0.1}

    def cells(adapter, source, todo, folder, images, **kw):
        for cell in todo:
            ap = values[cell.corruption]
            folder.append({"model": adapter.name, "dataset": source.name,
                           "corruption": cell.corruption, "severity": int(cell.severity),
                           "metric": "AP", "AP": ap, "metrics": {"AP": ap}})

    monkeypatch.setattr(api, "evaluate_cells", cells)
    out = tmp_path / "run"
    first = api.run_benchmark(**_coco(data_root, out, corruptions="gaussian_noise",
                                      severities="1"))
    assert first["mPC"] == pytest.approx(30.0)
    card = api.run_benchmark(**_coco(data_root, out, corruptions="gaussian_noise,fog",
                                     severities="1"))
    assert card["mPC"] == pytest.approx(20.0)  # (30 + 10) / 2, as a fresh folder gives
    assert json.loads((out / "summary.json").read_text())["mPC"] == pytest.approx(20.0)
    # a rerun asking for fewer still reports the whole set the folder holds
    assert api.run_benchmark(**_coco(data_root, out, corruptions="fog",
                                     severities="1"))["mPC"] == pytest.approx(20.0)
    # asking for a severity not measured yet flags mPC as incomplete, never a partial mean
    monkeypatch.setattr(api, "evaluate_cells", lambda *a, **k: None)
    partial = api.run_benchmark(**_coco(data_root, out, corruptions="fog", severities="2"))
    assert partial["mPC"] is None and "fog/2" in partial["cells"]["missing"]


def test_corrupt_overwrite_with_another_seed_clears_the_other_images(data_root, tmp_path):
    from robustpose.data import WriterSettings, write_corrupted_dataset

    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((data_root / "coco_val_mini" / "images").iterdir())[:1]:
        shutil.copy(path, images / path.name)
    out = tmp_path / "C"
    write_corrupted_dataset(images, out, "gaussian_noise,contrast", "1",
                            WriterSettings(seed=0), progress=False)
    summary = write_corrupted_dataset(images, out, "gaussian_noise", "1", WriterSettings(seed=7),
                                      overwrite=True, progress=False)
    assert summary.written == 1
    again = write_corrupted_dataset(images, out, "gaussian_noise,contrast", "1",
                                    WriterSettings(seed=7), progress=False)
    # the seed-0 contrast image is gone, so the seed-7 run writes it instead of counting it
    assert (again.written, again.skipped_existing) == (1, 1)
