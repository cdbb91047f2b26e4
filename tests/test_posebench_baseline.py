"""mCE against a baseline run from ``robustpose benchmark --baseline`` (issue 27 section 2):
the same numbers and mce.json as ``robustpose report RUN --baseline``, a wrong baseline
refused before the run, and a run whose clean score is 0 still gets its mCE with mRR
marked undefined."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

COMMON = dict(max_images=4, workers=0, plots=False, progress=False, severities="1")


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory) -> Path:
    from robustpose.benchmarking.api import run_benchmark

    out = tmp_path_factory.mktemp("base") / "b"
    run_benchmark(corruptions="fog,contrast", out=out, seed=1, **COMMON)
    return out


def test_benchmark_baseline_flag_matches_report(tmp_path, capsys, baseline_run) -> None:
    from robustpose.cli import main

    out = tmp_path / "a"
    assert main(["benchmark", "--corruptions", "fog,contrast", "--severities", "1",
                 "--max-images", "4", "--workers", "0", "--no-plots", "--no-progress",
                 "--out", str(out), "--baseline", str(baseline_run)]) == 0
    printed = capsys.readouterr().out
    assert "mCE " in printed and "relative mCE" in printed
    from_benchmark = json.loads((out / "mce.json").read_text())
    assert from_benchmark["corruptions"] == ["fog", "contrast"]
    assert main(["report", str(out), "--baseline", str(baseline_run)]) == 0
    again = capsys.readouterr().out.strip()
    assert again in printed   # the same lines, from the same code
    assert json.loads((out / "mce.json").read_text()) == from_benchmark


def test_benchmark_refuses_a_wrong_baseline_before_running(tmp_path, capsys) -> None:
    from robustpose.cli import main

    out = tmp_path / "a"
    code = main(["benchmark", "--corruptions", "fog", "--max-images", "4", "--out", str(out),
                 "--baseline", str(tmp_path / "nowhere"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "nowhere" in err[0], err
    assert not out.exists()   # nothing was run


def _with_clean_score(src: Path, dst: Path, value: float) -> Path:
    """A copy of run folder ``src`` whose stored clean cell scores ``value``."""
    shutil.copytree(src, dst)
    path = dst / "results.jsonl"
    lines = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["corruption"] == "clean":
            (record["metrics"] if "metrics" in record else record)["AP"] = value
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    return dst


def test_clean_score_zero_keeps_mce_and_marks_mrr_undefined(tmp_path, baseline_run) -> None:
    from robustpose.benchmarking.baseline import compare_runs, format_comparison

    ours = _with_clean_score(baseline_run, tmp_path / "zero", 0.0)
    result = compare_runs(ours, baseline_run)
    assert result["mRR"] is None and result["baseline_mRR"] is not None
    # mCE uses no clean score: a folder compared with itself up to the clean cell is 100
    assert result["mCE"] == pytest.approx(100.0)
    assert "mRR undefined (clean score 0)" in format_comparison(result)
    # and the other way round: the baseline's clean 0 leaves only the baseline's mRR undefined
    back = compare_runs(baseline_run, ours)
    assert back["baseline_mRR"] is None and back["mRR"] is not None
