"""The metric protocol and registry, and the one box-normalised PCK (evaluation/pck.py)
that the attack run and pck_auc_epe share, empty input included."""
from __future__ import annotations

import numpy as np
import pytest

from robustpose.evaluation.metrics import METRICS, Metric, build_metric
from robustpose.evaluation.pck import BoxPCK, pck_auc_epe


def test_every_registered_metric_has_the_protocol():
    assert {"coco_ap", "pckh", "pck", "box_pck", "stability"} <= set(METRICS)
    for name in METRICS:
        cls = METRICS[name]
        assert all(callable(getattr(cls, m, None)) for m in ("reset", "accumulate", "stats")), name
    assert isinstance(build_metric("box_pck", 3), Metric)
    with pytest.raises(ValueError, match="unknown metric 'box_pk'.*nearest: 'box_pck'"):
        build_metric("box_pk", 3)


def _people(seed: int, n: int = 12, k: int = 5):
    rng = np.random.default_rng(seed)
    gt = np.concatenate([rng.uniform(0, 100, (n, k, 2)), rng.integers(0, 2, (n, k, 1))], axis=2)
    pred = gt[..., :2] + rng.normal(0, 6, (n, k, 2))
    boxes = np.concatenate([np.zeros((n, 2)), rng.uniform(20, 120, (n, 2))], axis=1)
    return pred, gt, boxes


def test_streaming_box_pck_equals_pck_auc_epe_over_the_whole_set():
    pred, gt, boxes = _people(0)
    boxes[3, 2:] = 0.0  # a box without size: its keypoints count nowhere, in both
    metric = BoxPCK(5, thr=0.1)
    for part in (slice(0, 5), slice(5, 12)):
        metric.accumulate(pred[part], gt[part], boxes[part])
    whole = pck_auc_epe(pred, gt, boxes, thr=0.1)
    assert metric.stats()["PCK"] == pytest.approx(whole["PCK"])
    assert metric.stats()["PCK_per_joint"] == pytest.approx(whole["PCK_per_joint"])
    assert 0.0 < whole["PCK"] < 1.0  # the test can tell hits from misses


def test_empty_input_and_nothing_visible_give_absent_pck():
    metric = BoxPCK(5)
    metric.accumulate(np.zeros((0, 5, 2)), np.zeros((0, 5, 3)), np.zeros((0, 4)))
    assert metric.stats() == {"PCK": None, "PCK_per_joint": [None] * 5}
    pred, gt, boxes = _people(1)
    gt[..., 2] = 0
    metric.accumulate(pred, gt, boxes)
    assert metric.stats()["PCK"] is None and pck_auc_epe(pred, gt, boxes)["PCK"] is None
    metric.reset()
    pred, gt, boxes = _people(2)
    metric.accumulate(pred, gt, boxes)
    assert metric.stats()["PCK"] is not None
