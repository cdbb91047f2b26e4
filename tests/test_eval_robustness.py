"""mPC / rPC arithmetic on the AdvMix paper's HRNet-W32 row, and the results store."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from robustpose.evaluation import (BENCHMARK_CORRUPTIONS, FAMILIES, ResultsStore, severity_table,
                                   summarize_robustness)

# REFERENCE.md: HRNet-W32 256x192 COCO-C per-corruption APs (benchmark order), AP* 74.4
HRNET_W32 = [51.3, 54.2, 52.6, 46.9, 46.3, 43.5, 19.2, 55.9, 59.1, 65.2, 70.3, 54.1, 60.5, 59.4, 56.9]
SEVERITY_OFFSETS = [3.0, 1.5, 0.0, -1.5, -3.0]  # sums to 0: the mean over severities is the AP


def cells(model="hrnet_w32", dataset="coco", per_corruption=HRNET_W32, clean=74.4):
    recs = [{"model": model, "dataset": dataset, "corruption": "clean", "severity": 0,
             "metrics": {"AP": clean}}]
    for name, ap in zip(BENCHMARK_CORRUPTIONS, per_corruption):
        for sev, off in zip(range(1, 6), SEVERITY_OFFSETS):
            recs.append({"model": model, "dataset": dataset, "corruption": name,
                         "severity": sev, "metrics": {"AP": ap + off}})
    return recs


def test_paper_hrnet_w32_row_gives_mpc_53_0_and_rpc_71_3():
    s = summarize_robustness(cells(), metric="AP")
    assert round(s["mPC"], 1) == 53.0
    assert round(100 * s["rPC"], 1) == 71.3
    assert s["clean"] == 74.4
    assert s["worst"] == {"corruption": "zoom_blur", "value": pytest.approx(19.2)}
    assert s["per_corruption"]["fog"] == pytest.approx(65.2)
    assert s["per_family"]["noise"] == pytest.approx((51.3 + 54.2 + 52.6) / 3)
    assert s["per_family"]["blur"] == pytest.approx((46.9 + 46.3 + 43.5 + 19.2) / 4)
    assert s["per_severity"][1] == pytest.approx(s["mPC"] + 3.0)
    assert s["per_severity"][5] == pytest.approx(s["mPC"] - 3.0)
    assert set(FAMILIES) == {"noise", "blur", "weather", "digital"}


def test_missing_cells_are_named():
    recs = [r for r in cells() if not (r["corruption"] == "fog" and r["severity"] == 3)]
    with pytest.raises(ValueError, match=r"missing 1 cell\(s\) for AP: fog/3"):
        summarize_robustness(recs)
    no_clean = [r for r in cells() if r["corruption"] != "clean"]
    with pytest.raises(ValueError, match="clean/0"):
        summarize_robustness(no_clean)
    assert summarize_robustness(no_clean, require_clean=False)["rPC"] is None
    with pytest.raises(ValueError, match="no metric 'PCKh'"):
        summarize_robustness(cells(), metric="PCKh")
    with pytest.raises(ValueError, match="mix 2"):
        summarize_robustness(cells() + cells(model="other"))


def test_subset_of_corruptions_and_severity_table():
    s = summarize_robustness(cells(), corruptions=["snow", "frost"])
    assert s["mPC"] == pytest.approx((55.9 + 59.1) / 2)
    rows = severity_table(cells())
    assert rows[0]["corruption"] == "gaussian_noise" and rows[0]["s1"] == pytest.approx(54.3)
    assert rows[0]["mean"] == pytest.approx(51.3) and rows[0]["family"] == "noise"


# --- results store ----------------------------------------------------------------------

def record(corruption="snow", severity=1, ap=0.5, **extra):
    return {"model": "sbl_r50", "dataset": "coco_val_mini", "corruption": corruption,
            "severity": severity, "metrics": {"AP": ap, "APm": float("nan")},
            "conventions": {"boxes": "gt", "flip": True, "shift": True, "seed": 0}, **extra}


def test_store_append_read_and_resume(tmp_path):
    store = ResultsStore(tmp_path / "cells.jsonl")
    assert store.records() == [] and store.done_keys() == set()
    store.append(record("clean", 0, 0.7))
    store.append(record("snow", 1, 0.4))
    again = ResultsStore(tmp_path / "cells.jsonl")   # a rerun opens the same file
    assert again.done_keys() == {("sbl_r50", "coco_val_mini", "clean", 0),
                                 ("sbl_r50", "coco_val_mini", "snow", 1)}
    assert again.is_done(("sbl_r50", "coco_val_mini", "snow", 1))
    assert not again.is_done(("sbl_r50", "coco_val_mini", "snow", 2))
    with pytest.raises(ValueError, match="already stored"):
        again.append(record("snow", 1, 0.4))
    recs = again.records()
    assert recs[1]["metrics"] == {"AP": 0.4, "APm": None}   # NaN stored as null (strict JSON)
    assert recs[1]["conventions"]["boxes"] == "gt"
    lines = (tmp_path / "cells.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    with pytest.raises(ValueError, match="clean cell"):
        again.append(record("clean", 3))


def test_store_ignores_and_repairs_a_torn_last_line(tmp_path):
    path = tmp_path / "cells.jsonl"
    store = ResultsStore(path)
    store.append(record("snow", 1))
    with open(path, "ab") as fh:   # what a SIGKILL in the middle of a write leaves
        fh.write(json.dumps(record("snow", 2)).encode()[:40])
    fresh = ResultsStore(path)
    assert len(fresh.records()) == 1 and fresh.torn_tail
    assert not fresh.is_done(("sbl_r50", "coco_val_mini", "snow", 2))
    fresh.append(record("snow", 2))           # the torn bytes are cut first
    assert [r["severity"] for r in ResultsStore(path).records()] == [1, 2]
    assert path.read_bytes().endswith(b"\n")
    # damage in the middle is not a torn tail: a one-line error naming file and line
    path.write_text(path.read_text().replace('"snow"', '"snow', 1))
    with pytest.raises(ValueError, match=r"cells\.jsonl: line 1: corrupt record"):
        ResultsStore(path).records()


WRITER = """
import sys
from robustpose.evaluation import ResultsStore
store = ResultsStore(sys.argv[1])
pad = "x" * 4000
for i in range(1, 100000):
    store.append({"model": "m", "dataset": "d", "corruption": "c%d" % i, "severity": 1,
                  "metrics": {"AP": i / 1e5}, "pad": pad})
"""


def test_store_survives_sigkill(tmp_path):
    path = tmp_path / "cells.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    deadline = time.time() + 120
    while time.time() < deadline and (not path.exists() or path.stat().st_size < 50_000):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert path.stat().st_size >= 50_000, "the writer did not start within 120 s"
    recs = ResultsStore(path).records()      # never raises, whatever the cut point
    assert len(recs) >= 10                   # ~4 kB per record
    assert [r["corruption"] for r in recs] == [f"c{i}" for i in range(1, len(recs) + 1)]


def test_merge_shards(tmp_path):
    a, b = ResultsStore(tmp_path / "a.jsonl"), ResultsStore(tmp_path / "b.jsonl")
    a.append(record("clean", 0, 0.7))
    a.append(record("snow", 1, 0.4))
    b.append(record("snow", 1, 0.4, recorded_at="later"))   # identical cell: deduplicated
    b.append(record("fog", 2, 0.3))
    merged = ResultsStore.merge([a.path, b.path], out_path=tmp_path / "all.jsonl")
    assert [(r["corruption"], r["severity"]) for r in merged] == [("clean", 0), ("fog", 2), ("snow", 1)]
    assert len(ResultsStore(tmp_path / "all.jsonl").records()) == 3
    c = ResultsStore(tmp_path / "c.jsonl")
    c.append(record("fog", 2, 0.31))
    with pytest.raises(ValueError, match=r"conflicting results for cell sbl_r50/coco_val_mini/fog/2"):
        ResultsStore.merge([b.path, c.path])


def test_tables_from_a_stored_benchmark(tmp_path):
    store = ResultsStore(tmp_path / "bench.jsonl")
    for rec in cells():
        store.append(rec)
    s = summarize_robustness(ResultsStore(store.path).records())
    assert round(s["mPC"], 1) == 53.0 and round(100 * s["rPC"], 1) == 71.3
