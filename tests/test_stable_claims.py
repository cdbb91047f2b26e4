"""experiments/stable_claims.py: the stable miniature's verdicts follow the reproduction
report's rule — two rows that are not apart give 'not shown', never a yes or a no. Apart:
where a row has two seeds, the seed ranges do not overlap; between two one-seed rows, the
difference exceeds the column's seed noise (its largest two-seed range)."""
from __future__ import annotations

import pytest

COLUMNS = ("D_n", "RUC", "AUC", "D_n_pooled", "D_12", "D_12_mst", "D_12_softmax")
NAMES = {"baseline_ft": "Baseline", "rcc": "RCC", "mst": "MST", "rhm": "R+H+M",
         "st_a": "ST_a", "st_g": "ST_g", "mst_m": "MST (matched)", "rhm_m": "R+H+M (matched)"}
MATCHED = {"mst_m", "rhm_m"}
NOT_SHOWN = "not shown (within the seed noise)"


@pytest.fixture(scope="module")
def claims_module(load_experiment):
    return load_experiment("stable_claims")


def card(seed: int, **values: float) -> dict:
    return {"seed": seed, **{k: values.get(k) for k in COLUMNS}}


def verdict(claims_module, data: dict, claim: str) -> str:
    found = claims_module.claims(data, NAMES, COLUMNS, MATCHED)
    return next(h for c, _, h in found if c.startswith(claim))


def test_seed_noise_is_the_largest_range_of_the_two_seed_rows(claims_module):
    data = {"baseline_ft": [card(0, D_n=900.0), card(1, D_n=920.0)],
            "rcc": [card(0, D_n=800.0), card(1, D_n=830.0)], "st_a": [card(0, D_n=1.0)]}
    assert claims_module.seed_noise(data, "D_n") == pytest.approx(30.0)
    assert claims_module.seed_noise({"st_a": [card(0, D_n=1.0)]}, "D_n") is None


@pytest.mark.parametrize("rcc, expected", [
    ((895.0, 899.0), "yes"),          # apart, lower, though the difference (14) is small
    ((880.0, 905.0), NOT_SHOWN),      # mean 27.5 lower, the ranges overlap
    ((925.0, 926.0), "no"),           # apart, higher
    ((915.0, 930.0), NOT_SHOWN),      # higher, overlapping
])
def test_two_seed_rows_are_judged_by_their_seed_ranges(claims_module, rcc, expected):
    data = {"baseline_ft": [card(0, D_n=900.0), card(1, D_n=920.0)],
            "rcc": [card(0, D_n=rcc[0]), card(1, D_n=rcc[1])]}
    assert verdict(claims_module, data, "RCC lowers D_n") == expected


def test_one_seed_rows_are_judged_against_the_column_noise(claims_module):
    two = {"baseline_ft": [card(0, RUC=0.80), card(1, RUC=0.81)]}     # RUC noise 0.01
    data = {**two, "mst_m": [card(0, RUC=0.850)], "rhm_m": [card(0, RUC=0.845)]}
    assert verdict(claims_module, data, "R+H+M gives the best RUC, regularisers") == NOT_SHOWN
    data["rhm_m"] = [card(0, RUC=0.83)]
    found = claims_module.claims(data, NAMES, COLUMNS, MATCHED)
    claim = next(r for r in found if r[0].startswith("R+H+M gives the best RUC, regularisers"))
    assert claim[1] == "MST (matched) 0.850, R+H+M (matched) 0.830" and claim[2] == "no"
    data["rhm_m"] = [card(0, RUC=0.87)]
    assert verdict(claims_module, data, "R+H+M gives the best RUC, regularisers") == "yes"


def test_best_ruc_is_judged_against_the_runner_up(claims_module):
    base = [card(0, RUC=0.80, AUC=0.78), card(1, RUC=0.81, AUC=0.78)]
    rhm = [card(0, RUC=0.86, AUC=0.76), card(1, RUC=0.87, AUC=0.76)]
    data = {"baseline_ft": base, "rhm": rhm, "st_a": [card(0, RUC=0.90)], "st_g": [card(0, RUC=0.5)]}
    assert verdict(claims_module, data, "R+H+M gives the best RUC") == "no"
    data["st_a"] = [card(0, RUC=0.865)]       # inside R+H+M's seed range
    assert verdict(claims_module, data, "R+H+M gives the best RUC") == NOT_SHOWN
    data["st_a"] = [card(0, RUC=0.84)]
    assert verdict(claims_module, data, "R+H+M gives the best RUC") == "yes"


def test_mst_gain_and_auc_claims(claims_module):
    data = {"baseline_ft": [card(0, RUC=0.80, AUC=0.78), card(1, RUC=0.81, AUC=0.78)],
            "mst": [card(0, RUC=0.85), card(1, RUC=0.86)],
            "rhm": [card(0, RUC=0.82, AUC=0.70), card(1, RUC=0.83, AUC=0.70)]}
    assert verdict(claims_module, data, "MST alone helps less") == "no"
    assert verdict(claims_module, data, "clean accuracy drops a little") == "no (dropped > 0.05)"
    data["rhm"] = [card(0, RUC=0.82), card(1, RUC=0.83)]       # no AUC measured: no AUC claim
    found = claims_module.claims(data, NAMES, COLUMNS, MATCHED)
    assert not any(c.startswith("clean accuracy") for c, _, _ in found)
