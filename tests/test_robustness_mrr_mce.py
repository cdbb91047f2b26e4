"""mRR (PoseBench) and mCE / relative mCE (ImageNet-C) on per-cell score grids, against
values computed by hand."""
from __future__ import annotations

import pytest

from robustpose.evaluation.robustness import (compare_to_baseline, corruption_errors,
                                              mean_corruption_error, mean_resilience_rate,
                                              resilience_rates, summarize_robustness)

# two corruptions x two severities, AP in 0..1
MODEL = {"clean": {0: 0.80}, "fog": {1: 0.60, 2: 0.40}, "mask": {1: 0.70, 2: 0.50}}
BASE = {"clean": {0: 0.70}, "fog": {1: 0.50, 2: 0.30}, "mask": {1: 0.60, 2: 0.60}}
SEV = (1, 2)


def test_resilience_rates_and_mrr_by_hand():
    rates = resilience_rates(MODEL, severities=SEV)
    # fog: (0.6 + 0.4) / (2 * 0.8) = 0.625; mask: (0.7 + 0.5) / 1.6 = 0.75
    assert rates == pytest.approx({"fog": 0.625, "mask": 0.75})
    assert mean_resilience_rate(MODEL, severities=SEV) == pytest.approx(0.6875)
    assert mean_resilience_rate(MODEL, ["mask"], SEV) == pytest.approx(0.75)


def test_mrr_equals_rpc_with_one_clean_score():
    records = [{"model": "m", "dataset": "d", "corruption": c, "severity": s, "metrics": {"AP": v}}
               for c, cells in MODEL.items() for s, v in cells.items()]
    summary = summarize_robustness(records, corruptions=["fog", "mask"], severities=SEV)
    assert mean_resilience_rate(MODEL, ["fog", "mask"], SEV) == pytest.approx(summary["rPC"])


def test_corruption_errors_and_mce_by_hand():
    ce = corruption_errors(MODEL, BASE, severities=SEV)
    # fog: (0.4 + 0.6) / (0.5 + 0.7) = 1/1.2; mask: (0.3 + 0.5) / (0.4 + 0.4) = 1
    assert ce == pytest.approx({"fog": 1 / 1.2, "mask": 1.0})
    assert mean_corruption_error(MODEL, BASE, severities=SEV) == pytest.approx((1 / 1.2 + 1) / 2)
    # relative: model clean error 0.2, baseline's 0.3
    # fog: (0.2 + 0.4) / (0.2 + 0.4) = 1; mask: (0.1 + 0.3) / (0.1 + 0.1) = 2
    rel = corruption_errors(MODEL, BASE, severities=SEV, relative=True)
    assert rel == pytest.approx({"fog": 1.0, "mask": 2.0})
    assert mean_corruption_error(MODEL, BASE, severities=SEV, relative=True) == pytest.approx(1.5)
    # the baseline against itself scores 1 everywhere
    assert mean_corruption_error(BASE, BASE, severities=SEV) == pytest.approx(1.0)
    # scores in percent
    pct = {c: {s: 100 * v for s, v in cells.items()} for c, cells in MODEL.items()}
    pct_base = {c: {s: 100 * v for s, v in cells.items()} for c, cells in BASE.items()}
    assert mean_corruption_error(pct, pct_base, severities=SEV, max_score=100) == \
        pytest.approx((1 / 1.2 + 1) / 2)


def test_refusals_name_the_missing_cell_in_one_line():
    lacking = {c: dict(cells) for c, cells in BASE.items()}
    del lacking["mask"][2]
    with pytest.raises(ValueError, match="baseline has no cell mask/2") as info:
        mean_corruption_error(MODEL, lacking, severities=SEV)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="model has no cell clean/0"):
        resilience_rates({"fog": {1: 0.5}}, severities=(1,))
    with pytest.raises(ValueError, match="model has no cell fog/3"):
        mean_resilience_rate(MODEL)  # severities 1..5 by default
    with pytest.raises(ValueError, match="max_score=100"):
        mean_corruption_error({"fog": {1: 55.0}}, {"fog": {1: 50.0}}, severities=(1,))
    with pytest.raises(ValueError, match="sums to 0"):
        mean_corruption_error({"fog": {1: 0.5}}, {"fog": {1: 1.0}}, severities=(1,))


def test_compare_to_baseline_reads_records():
    def records(grid, model):
        return [{"model": model, "dataset": "d", "corruption": c, "severity": s,
                 "metrics": {"AP": v}} for c, cells in grid.items() for s, v in cells.items()]

    out = compare_to_baseline(records(MODEL, "a"), records(BASE, "b"), severities=SEV)
    assert out["mCE"] == pytest.approx((1 / 1.2 + 1) / 2) and out["relative_mCE"] == pytest.approx(1.5)
    assert out["mRR"] == pytest.approx(0.6875) and out["corruptions"] == ["fog", "mask"]
    with pytest.raises(ValueError, match="baseline has no cell fog/1"):
        compare_to_baseline(records(MODEL, "a"), records({"clean": {0: 0.7}}, "b"), severities=SEV)
