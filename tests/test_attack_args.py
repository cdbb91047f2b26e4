"""Issue 24 items 7 and 9 (and 12's --eps nan/inf): attack arguments are checked and cell
keys deduplicated before any work."""
from __future__ import annotations

import json

import pytest

import robustpose.benchmarking.attack_card as attack_card
import robustpose.benchmarking.attack_run as attack_run
from robustpose.benchmarking.attack_args import parse_numbers
from robustpose.cli import main


@pytest.mark.parametrize("text", ["8,8", "8,8.000001", "8.0,8"])
def test_equal_eps_keys_are_one_cell(text):
    assert parse_numbers(text, "--eps") == [8.0]
    assert parse_numbers("2,8,2", "--eps") == [2.0, 8.0]


@pytest.mark.parametrize("text", ["nan", "inf", "1,-inf", "-1"])
def test_non_finite_or_negative_eps_is_refused(text):
    with pytest.raises(ValueError, match=r"bad --eps .*finite numbers >= 0"):
        parse_numbers(text, "--eps")


@pytest.mark.parametrize("option,value", [("--max-queries", "0"), ("--max-queries", "-5"),
                                          ("--uap-fit-images", "-1"),
                                          ("--uap-fit-images", "0")])
def test_out_of_range_counts_are_refused_before_any_work(tmp_path, capsys, option, value):
    out = tmp_path / "run"
    code = main(["attack", "spsa" if "uap" not in option else "uap", "--dataset",
                 "coco-format", "--data-root", str(tmp_path / "nowhere"), option, value,
                 "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{option} {value}: need an integer >= 1" in err and "Traceback" not in err
    assert not out.exists()


def test_the_python_api_checks_the_counts_too():
    with pytest.raises(ValueError, match=r"--spsa-samples 0: need an integer >= 1"):
        attack_run.run_attack("spsa", spsa_samples=0)
    with pytest.raises(ValueError, match=r"--max-queries 2.5: need an integer >= 1"):
        attack_run.run_attack("spsa", max_queries=2.5)


def test_a_repeated_eps_runs_one_cell_and_writes_the_report(data_root, tmp_path, monkeypatch):
    def one(cell, run, *rest):
        adapter, source = run.adapter, run.source
        return {"model": adapter.name, "dataset": source.name, "corruption": cell.corruption,
                "severity": int(cell.severity), "metric": source.metric_name, "pck": 0.5}

    monkeypatch.setattr(attack_run, "run_cell", one)
    monkeypatch.setattr(attack_card, "write_attack_reports", lambda folder, plots=True: {})
    out = tmp_path / "run"
    attack_run.run_attack("igsm", dataset="coco-format", data_root=data_root / "coco_val_mini",
                          max_images=2, eps="8,8.000001", steps="1", out=out, progress=False)
    keys = [json.loads(line)["corruption"]
            for line in (out / "results.jsonl").read_text().splitlines()]
    assert keys == ["clean", "igsm-U@8"]
