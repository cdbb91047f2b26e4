"""experiments/stable_claims.py: the stable miniature's verdicts follow the reproduction
report's rule — a difference no larger than the seed noise (the largest seed range of that
column among the two-seed rows) is 'not shown', never a yes or a no."""
from __future__ import annotations

import pytest

COLUMNS = ("D_n", "RUC", "AUC", "D_n_pooled", "D_12", "D_12_mst", "D_12_softmax")
NAMES = {"baseline_ft": "Baseline", "rcc": "RCC", "mst": "MST", "rhm": "R+H+M",
         "st_a": "ST_a", "mst_m": "MST (matched)", "rhm_m": "R+H+M (matched)"}


@pytest.fixture(scope="module")
def claims_module(load_experiment):
    return load_experiment("stable_claims")


def card(seed: int, **values: float) -> dict:
    return {"seed": seed, **{k: values.get(k) for k in COLUMNS}}


def verdict(claims_module, data: dict, claim: str) -> str:
    found = claims_module.claims(data, NAMES, COLUMNS, {"mst_m", "rhm_m"})
    return next(h for c, _, h in found if c == claim)


def test_seed_noise_is_the_largest_range_of_the_two_seed_rows(claims_module):
    data = {"baseline_ft": [card(0, D_n=900.0), card(1, D_n=920.0)],
            "rcc": [card(0, D_n=800.0), card(1, D_n=830.0)], "st_a": [card(0, D_n=1.0)]}
    assert claims_module.seed_noise(data, "D_n") == pytest.approx(30.0)
    assert claims_module.seed_noise({"st_a": [card(0, D_n=1.0)]}, "D_n") is None


@pytest.mark.parametrize("rcc, expected", [
    ((885.0, 889.0), "not shown (within the seed noise)"),   # mean 23 below, noise 30
    ((860.0, 864.0), "yes"),                                 # 48 below
    ((950.0, 954.0), "no"),                                  # 42 above
    ((920.0, 924.0), "not shown (within the seed noise)"),   # above, within the noise
])
def test_rcc_lowers_dn_needs_a_difference_beyond_the_noise(claims_module, rcc, expected):
    data = {"baseline_ft": [card(0, D_n=900.0), card(1, D_n=920.0)],
            "rcc": [card(0, D_n=rcc[0]), card(1, D_n=rcc[1])],
            "mst": [card(0, D_n=600.0), card(1, D_n=630.0)]}   # the widest range: noise 30
    assert verdict(claims_module, data, "RCC lowers D_n") == expected


def test_best_ruc_is_judged_against_the_runner_up(claims_module):
    base = [card(0, RUC=0.80, AUC=0.78), card(1, RUC=0.81, AUC=0.78)]
    rhm = [card(0, RUC=0.86, AUC=0.76), card(1, RUC=0.87, AUC=0.76)]
    data = {"baseline_ft": base, "rhm": rhm, "st_a": [card(0, RUC=0.90)]}
    assert verdict(claims_module, data, "R+H+M gives the best RUC") == "no"
    data["st_a"] = [card(0, RUC=0.870)]       # ahead of R+H+M by 0.005, noise 0.01
    assert verdict(claims_module, data, "R+H+M gives the best RUC") == \
        "not shown (within the seed noise)"
    data["st_a"] = [card(0, RUC=0.84)]
    assert verdict(claims_module, data, "R+H+M gives the best RUC") == "yes"


def test_matched_rows_are_ranked_among_themselves(claims_module):
    data = {"baseline_ft": [card(0, RUC=0.80), card(1, RUC=0.81)],
            "rhm": [card(0, RUC=0.95)], "mst_m": [card(0, RUC=0.85)], "rhm_m": [card(0, RUC=0.83)]}
    found = claims_module.claims(data, NAMES, COLUMNS, {"mst_m", "rhm_m"})
    claim = next(r for r in found if r[0].startswith("R+H+M gives the best RUC, regularisers"))
    assert claim[1] == "MST (matched) 0.850, R+H+M (matched) 0.830" and claim[2] == "no"
