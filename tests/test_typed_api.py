"""The typed top-level API (issue 25): ``robustpose.benchmark`` / ``attack`` / ``stability``
take a model and a data choice and return typed results built from the run's card;
``import robustpose`` stays light and lists them."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import robustpose
from robustpose.api import AttackResult, BenchmarkResult, StabilityResult

SMALL = dict(max_images=2, progress=False, plots=False)


def test_import_stays_light_and_lists_the_api():
    code = ("import sys, robustpose; names = dir(robustpose); "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "print(' '.join(n for n in robustpose.__all__ if n in names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert {"benchmark", "attack", "stability", "BenchmarkResult"} <= set(out)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'benchmarks'"):
        robustpose.benchmarks  # noqa: B018


def test_benchmark_result_is_typed_and_the_card_is_kept(tmp_path):
    result = robustpose.benchmark(dataset="synth", corruptions="fog", severities="1",
                                  workers=0, out=tmp_path / "run", **SMALL)
    assert isinstance(result, BenchmarkResult)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert result.clean == pytest.approx(summary["clean"]) and result.clean > 0
    assert result.mPC == pytest.approx(summary["mPC"])
    assert result.rPC == pytest.approx(100 * result.mPC / result.clean, abs=1e-3)
    assert result.per_corruption == {"fog": pytest.approx(summary["per_corruption"]["fog"])}
    assert result.run_dir == tmp_path / "run" and not result.incomplete
    card = result.to_dict()
    assert {k: v for k, v in card.items() if k != "run_dir"} == summary
    card["clean"] = -1.0  # a copy: the result does not change
    assert result.clean > 0
    with pytest.warns(DeprecationWarning, match=r"\['mPC'\].*result\.mPC|attribute"):
        assert result["mPC"] == result.mPC  # the dict the API returned before
    assert "per_cell" in result


def test_a_mistyped_keyword_still_names_itself(tmp_path):
    with pytest.raises(TypeError, match="'severites'"):
        robustpose.benchmark(severites="1", out=tmp_path / "r", progress=False)


def test_attack_result_gives_relative_figures_per_eps(tmp_path):
    result = robustpose.attack("igsm", dataset="synth", eps="2,8", steps="1,2",
                               out=tmp_path / "atk", **SMALL)
    assert isinstance(result, AttackResult) and result.attack == "igsm"
    card = json.loads((tmp_path / "atk" / "attack.json").read_text())
    assert len(result.points) == len(card["cells"]) == 4
    assert sorted(result.relative_pck) == [2.0, 8.0]
    for eps, value in result.relative_pck.items():  # the 2-step cell of each eps
        cell = next(c for c in card["cells"] if c["eps"] == eps and c["steps"] == 2)
        assert value == cell["relative_pck"]
    assert result.clean_pck == pytest.approx(card["clean"]["pck"])


def test_stability_result_gives_r_ruc_dn(tmp_path):
    result = robustpose.stability(dataset="synth", perturbations="fog", severities="1",
                                  workers=0, out=tmp_path / "st", **SMALL)
    assert isinstance(result, StabilityResult)
    card = json.loads((tmp_path / "st" / "stability.json").read_text())
    overall = card["overall"]
    assert result.R == overall["R_heatmap"]["sum"] and result.R_mean == overall["R_heatmap"]["mean"]
    assert list(result.RUC) == overall["RUC"] and result.RUC_area == overall["RUC_area"]
    assert result.D_n == overall["D_n"] and result.D_n is not None
    assert set(result.per_perturbation) == {"fog"}


def test_results_read_from_existing_cards():
    """An older card (no per_family, no run_dir) still gives a result."""
    result = BenchmarkResult.from_card({"model": "m", "clean": 70.0, "mPC": 35.0, "rPC": 50.0})
    assert (result.clean, result.mPC, result.rPC, result.run_dir) == (70.0, 35.0, 50.0, None)
    empty = AttackResult.from_card({"attack": "fgsm", "cells": [], "clean": {}})
    assert empty.points == () and empty.relative_pck == {}
