"""Theorem 3 of the stable-heatmap paper: the printed condition is not sufficient (a
2x2 counterexample), the corrected r(1) - r(2) > sqrt(2 sum dr^2) is (random trials from a
seeded generator), and its constant sqrt(2) cannot be lowered."""
from __future__ import annotations

import numpy as np
import pytest

from robustpose.evaluation.stability_bounds import argmax_moved, margin_condition


def test_the_papers_condition_holds_yet_the_maximum_moves() -> None:
    r = np.array([[2.03, 1.0], [0.0, 0.0]])
    dr = np.array([[-0.1, 1.0], [0.0, 0.0]])
    # r(1) - r(2) = 1.03 >= sqrt(0.01 + 1 + 4 * 0.01) = sqrt(1.05) = 1.0247
    assert np.sqrt((dr ** 2).sum() + r.size * dr[0, 0] ** 2) == pytest.approx(1.0247, abs=1e-4)
    assert margin_condition(r, dr, "paper")
    assert argmax_moved(r, dr)                     # 1.93 < 2.0: the maximum moved
    assert not margin_condition(r, dr)             # 1.03 <= sqrt(2 * 1.01) = 1.421


def test_the_corrected_condition_never_fails_in_random_trials() -> None:
    rng = np.random.default_rng(20220315)
    certified = paper_broken = 0
    for h, w in ((1, 2), (2, 2), (3, 4), (8, 6)):
        r = rng.normal(size=(20000, h, w))
        # changes from far below to far above the margins, so both outcomes occur
        dr = rng.normal(size=(20000, h, w)) * rng.uniform(0.01, 1.0, size=(20000, 1, 1))
        ok, moved = margin_condition(r, dr), argmax_moved(r, dr)
        assert not (ok & moved).any()
        certified += int(ok.sum())
        paper_broken += int((margin_condition(r, dr, "paper") & moved).sum())
    assert certified > 10000            # the trials did exercise the condition
    assert paper_broken > 0             # and the printed one fails on random maps too


def test_the_constant_is_tight() -> None:
    # r = (m, 0), dr = (-m/2, m/2): sqrt(2 sum dr^2) = m exactly, and the two end tied
    m = 1.0
    r, dr = np.array([[m, 0.0]]), np.array([[-m / 2, m / 2]])
    assert np.sqrt(2 * (dr ** 2).sum()) == m and not margin_condition(r, dr)
    nudged = np.array([[-m / 2, m / 2 + 1e-9]])    # any larger change moves the maximum
    assert argmax_moved(r, nudged)


def test_bad_rule_and_shapes_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="rule"):
        margin_condition(np.zeros((2, 2)), np.zeros((2, 2)), "theorem3")
    with pytest.raises(ValueError, match="differ in shape"):
        margin_condition(np.zeros((2, 2)), np.zeros((2, 3)))
