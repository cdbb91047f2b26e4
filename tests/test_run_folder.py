"""RunFolder: claim / refuse settings, per-shard stores, the records cache, reports.

The end-to-end behaviour (resume after SIGKILL, shards, torchrun, `robustpose report`) is
tested through the benchmark in tests/test_benchmark.py; these tests pin the object's own
contract with hand-made cell records.
"""
from __future__ import annotations

import json

import pytest

from robustpose.benchmarking import Cell, RunFolder, build_cells, finalize_run
from robustpose.evaluation import ResultsStore

SETTINGS = {"model": "toy", "dataset": "toy-set", "metric": "AP", "metric_scale": 100.0,
            "conventions": {"flip_test": True, "input_size": (192, 256),
                            "metric_settings": {"score_mode": "bbox_keypoint",
                                                "nms_mode": "oks_nms",
                                                "keypoint_score_thr": 0.2, "nms_thr": 0.9}},
            "corruptions": ["snow"], "severities": [1, 2]}


def record(corruption: str, severity: int, ap: float, model: str = "toy") -> dict:
    return {"model": model, "dataset": "toy-set", "corruption": corruption,
            "severity": severity, "metric": "AP", "AP": ap, "metrics": {"AP": ap}}


def test_claim_writes_settings_once_and_refuses_other_ones(tmp_path):
    folder = RunFolder(tmp_path / "run").claim(SETTINGS)
    written = json.loads((tmp_path / "run" / "run.json").read_text())
    assert written["conventions"]["input_size"] == [192, 256]
    assert folder.settings == written
    RunFolder(tmp_path / "run").claim(SETTINGS)  # the same settings (tuples or lists): fine
    other = json.loads(json.dumps(SETTINGS))
    other["conventions"]["metric_settings"]["score_mode"] = "keypoint"
    with pytest.raises(ValueError, match=r"holds a run with other conventions \(conventions"
                                         r"\.metric_settings\.score_mode 'bbox_keypoint', "
                                         r"asked 'keypoint'\); use another --out"):
        RunFolder(tmp_path / "run").claim(other)
    with pytest.raises(ValueError, match="holds a run with other model"):
        RunFolder(tmp_path / "run").claim(dict(SETTINGS, model="other"))
    (tmp_path / "run" / "run.json").write_text("{not json")
    with pytest.raises(ValueError, match="run.json: unreadable run settings"):
        RunFolder(tmp_path / "run").claim(SETTINGS)


def test_each_shard_appends_to_its_own_store_and_records_merge_them(tmp_path):
    first = RunFolder(tmp_path).claim(SETTINGS, shard=(0, 2))
    second = RunFolder(tmp_path).claim(SETTINGS, shard=(1, 2))
    cells = build_cells(["snow"], [1, 2])
    assert first.todo(cells, (0, 2)) == [Cell("clean", 0), Cell("snow", 2)]
    assert second.todo(cells, (1, 2)) == [Cell("snow", 1)]
    first.append(record("clean", 0, 0.5))
    second.append(record("snow", 1, 0.3))
    assert [p.name for p in first.store_paths()] == ["results.shard-0-of-2.jsonl",
                                                     "results.shard-1-of-2.jsonl"]
    assert first.done_keys() == {("clean", 0), ("snow", 1)}
    assert not first.is_complete(cells)
    assert RunFolder(tmp_path).store_path(None).name == "results.jsonl"
    assert RunFolder(tmp_path).store_path((0, 1)).name == "results.jsonl"


def test_records_are_read_once_until_an_append_or_a_refresh(tmp_path):
    folder = RunFolder(tmp_path).claim(SETTINGS)
    folder.append(record("clean", 0, 0.5))
    assert len(folder.records()) == 1
    assert folder.records() is folder.records()  # cached: no second read
    # another process (another shard) writes: seen only after refresh()
    ResultsStore(folder.store_path((1, 2))).append(record("snow", 1, 0.3))
    assert len(folder.records()) == 1
    assert len(folder.refresh().records()) == 2
    folder.append(record("snow", 2, 0.2))  # an append invalidates the cache
    assert folder.done_keys() == {("clean", 0), ("snow", 1), ("snow", 2)}
    # a record of another model in a store is not this run's
    ResultsStore(folder.store_path((1, 2))).append(record("clean", 0, 0.9, model="other"))
    assert len(folder.refresh().records()) == 3


def test_finalize_writes_the_reports_and_finalize_run_rebuilds_them(tmp_path):
    folder = RunFolder(tmp_path).claim(SETTINGS)
    with pytest.raises(ValueError, match="no finished cell in the results store yet"):
        folder.finalize(plots=False)
    for cell, ap in ((("clean", 0), 0.5), (("snow", 1), 0.4), (("snow", 2), 0.2)):
        folder.append(record(*cell, ap))
    card = folder.finalize(plots=False)
    assert card["clean"] == 50.0 and card["mPC"] == pytest.approx(30.0)
    assert json.loads((tmp_path / "summary.json").read_text())["mPC"] == card["mPC"]
    assert "score_mode bbox_keypoint" in (tmp_path / "table.md").read_text()
    (tmp_path / "summary.json").unlink()
    assert finalize_run(tmp_path, plots=False)["mPC"] == card["mPC"]


def test_a_folder_without_settings_is_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a benchmark run folder"):
        finalize_run(tmp_path)
    with pytest.raises(RuntimeError, match="claim"):
        RunFolder(tmp_path).append(record("clean", 0, 0.5))
