"""experiments/advmix_miniature.py --quick end to end (the CI-sized version of the AdvMix
miniature): two standard seeds and one AdvMix run train 2 steps each, are benchmarked on 8
SynthPose validation images x 2 corruptions x 2 severities, and the table is built from
the run folders; a rerun skips what is done."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def driver(load_experiment):
    return load_experiment("advmix_miniature")


@pytest.fixture(scope="module")
def quick_out(driver, tmp_path_factory):
    out = tmp_path_factory.mktemp("advmix_mini")
    if not (Path(sys.executable).parent / "robustpose").is_file():
        pytest.skip("the robustpose console script is not installed beside this python")
    assert driver.main(["--quick", "--out", str(out), "--runs", "standard:0,standard:1,advmix:0"]) == 0
    return out


def test_quick_run_trains_benchmarks_and_tabulates(driver, quick_out):
    for run in ("standard_s0", "standard_s1", "advmix_s0"):
        card = json.loads((quick_out / run / "bench" / "summary.json").read_text())
        assert card["corruptions"] == ["gaussian_noise", "defocus_blur"] and card["severities"] == [1, 3]
        assert card["clean"] > 30 and card["mPC"] >= 0  # 2 steps from the bundled model
        cpu = json.loads((quick_out / run / "cpu.json").read_text())
        assert cpu["train_s"] > 0 and cpu["bench_s"] > 0
    data = json.loads((quick_out / "advmix_miniature.json").read_text())
    assert [c["seed"] for c in data["runs"]["standard"]] == [0, 1]
    s0, s1 = data["runs"]["standard"]
    assert data["noise"]["mPC"] == pytest.approx(abs(s0["mPC"] - s1["mPC"]))
    table = (quick_out / "advmix_miniature.md").read_text()
    advmix = data["runs"]["advmix"][0]
    delta = advmix["mPC"] - (s0["mPC"] + s1["mPC"]) / 2
    row = next(line for line in table.splitlines() if line.startswith("| AdvMix |"))
    assert f"{delta:+.1f}" in row
    assert ("yes" if abs(delta) > data["noise"]["mPC"] else "no") in row.split("|")[7]


def test_rerun_skips_finished_runs(driver, quick_out, capsys):
    before = (quick_out / "standard_s0" / "best.pt").stat().st_mtime_ns
    assert driver.main(["--quick", "--out", str(quick_out), "--runs", "standard:0"]) == 0
    assert (quick_out / "standard_s0" / "best.pt").stat().st_mtime_ns == before
    assert "$ " not in capsys.readouterr().out  # no command was run again


def test_unknown_run_is_refused(driver, tmp_path):
    with pytest.raises(SystemExit, match="unknown run 'advmx'"):
        driver.main(["--out", str(tmp_path), "--runs", "advmx:0", "--table-only"])


def test_previous_cards_fill_missing_runs_and_folders_win(driver, quick_out, tmp_path):
    """A run measured in an earlier session (its folder gone) comes from --previous, marked
    with *; a (method, seed) that has a folder is read from the folder, never the old card."""
    here = json.loads((quick_out / "advmix_miniature.json").read_text())["runs"]
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps({"runs": {
        "equalmix": [{"seed": 0, "AP": 60.0, "mPC": 40.0, "rPC": 66.7, "train_cpu_min": 6.0}],
        "standard": [{"seed": 0, "AP": 1.0, "mPC": 1.0, "rPC": 1.0, "train_cpu_min": 1.0}]}}))
    text = driver.build_table(quick_out, previous=previous)
    data = json.loads((quick_out / "advmix_miniature.json").read_text())["runs"]
    assert data["standard"] == here["standard"]  # the folder's card, not the stored one
    assert data["equalmix"][0]["mPC"] == 40.0 and data["equalmix"][0]["source"] == "previous"
    row = next(line for line in text.splitlines() if line.startswith("| EqualMix |"))
    assert row.split("|")[2].strip() == "0*"
    assert "- AdvMix vs EqualMix: mPC" in text
    driver.build_table(quick_out)  # leave the module's folder as the other tests expect


def test_runs_stored_in_previous_are_not_trained_again(driver, tmp_path, monkeypatch):
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps({"runs": {
        "standard": [{"seed": 0, "AP": 1.0, "mPC": 1.0, "rPC": 1.0, "train_cpu_min": 1.0}]}}))
    ran = []
    monkeypatch.setattr(driver, "prepare_validation", lambda *a: (tmp_path, tmp_path))
    monkeypatch.setattr(driver, "run_one", lambda method, seed, *a: ran.append((method, seed)))
    driver.main(["--out", str(tmp_path / "out"), "--previous", str(previous)])
    assert ("standard", 0) not in ran and ("standard", 1) in ran and ("advmix_official", 1) in ran
    ran.clear()  # --runs names what to run, stored or not
    driver.main(["--out", str(tmp_path / "out"), "--previous", str(previous), "--runs", "standard:0"])
    assert ran == [("standard", 0)]
