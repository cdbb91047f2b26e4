"""Stability metrics (R, RUC, D_n, D_(1)(2)) against hand-computed values on small maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.evaluation.stability import (StabilityMetric, d12_per_map, dn_per_map,
                                             heatmap_summary,
                                             heatmap_maxima, r_summary, ruc_curve,
                                             topk_positions)


def _maps(*arrays) -> torch.Tensor:
    return torch.tensor(np.stack(arrays)[None], dtype=torch.float32)  # (1, K, h, w)


def test_maxima_border_and_ties() -> None:
    border = np.zeros((4, 5))
    border[3, 4] = 1.0          # bottom-right corner
    tie = np.zeros((4, 5))
    tie[2, 1] = tie[0, 3] = 1.0  # two maxima: row-major index 3 < 11
    flat = np.full((4, 5), 0.5)
    pos = heatmap_maxima(_maps(border, tie, flat))
    assert pos[0].tolist() == [[4, 3], [3, 0], [0, 0]]


def test_dn_hand_computed() -> None:
    # 3x3 map, n = 4: values 9 at (1,1), 8 at (0,0), 7 at (2,2), 6 at (2,0)
    m = np.zeros((3, 3))
    m[1, 1], m[0, 0], m[2, 2], m[0, 2] = 9, 8, 7, 6
    # distances^2 from (1,1): (0,0) 2, (2,2) 2, (x=2,y=0) 2 -> 6
    assert float(dn_per_map(_maps(m), n=4)[0, 0]) == 6.0
    # flat 4x4 map, n = 4: the first 4 pixels of row 0; from (0,0): 1 + 4 + 9
    assert float(dn_per_map(_maps(np.ones((4, 4))), n=4)[0, 0]) == 14.0


def test_topk_ties_at_the_boundary_take_lowest_index() -> None:
    m = np.zeros((4, 4))
    m[3, 3] = 2.0                       # the maximum, index 15
    m[2, 0] = m[0, 1] = m[1, 2] = 1.0   # tied second values at indices 8, 1, 6
    values, index = topk_positions(_maps(m), n=3)
    assert values[0, 0].tolist() == [2.0, 1.0, 1.0]
    assert index[0, 0].tolist() == [15, 1, 6]
    # D_3 from (3,3): (1,0) -> 4 + 9 = 13, (2,1) -> 1 + 4 = 5
    assert float(dn_per_map(_maps(m), n=3)[0, 0]) == 18.0



@pytest.mark.parametrize("n", [1, 3, 16, 20])
def test_topk_equals_a_stable_sort_on_maps_full_of_ties(n: int) -> None:
    # values on a coarse grid: ties inside the selection, at its boundary and below it;
    # n = 20 is every pixel of a 5x4 map (no unselected pixel to tie with)
    gen = torch.Generator().manual_seed(3)
    maps = torch.randint(0, 4, (6, 5, 5, 4), generator=gen).float()
    values, index = topk_positions(maps, n=n)
    order = torch.sort(maps.flatten(2), dim=2, descending=True, stable=True)
    assert torch.equal(values, order.values[..., :n])
    assert torch.equal(index, order.indices[..., :n])

def test_d12_raw_and_softmax() -> None:
    m = np.zeros((2, 2))
    m[0, 0], m[1, 1] = 3.0, 1.0
    assert float(d12_per_map(_maps(m))[0, 0]) == pytest.approx(2.0)
    e = np.exp([3.0, 1.0, 0.0, 0.0])
    soft = (e[0] - e[1]) / e.sum()
    assert float(d12_per_map(_maps(m), "softmax")[0, 0]) == pytest.approx(soft)
    assert float(d12_per_map(_maps(np.ones((2, 2))))[0, 0]) == 0.0  # flat map: no margin
    with pytest.raises(ValueError, match="normalisation"):
        d12_per_map(_maps(m), "sigmoid")


def test_nan_and_small_maps_give_one_line_errors() -> None:
    m = np.zeros((3, 3))
    m[1, 1] = np.nan
    for fn in (heatmap_maxima, lambda x: dn_per_map(x, n=4), d12_per_map,
               lambda x: heatmap_summary(x, n=4)):
        with pytest.raises(ValueError, match="NaN") as info:
            fn(_maps(m))
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="n=64"):
        dn_per_map(_maps(np.zeros((3, 3))))


def test_ruc_and_r_summary() -> None:
    d = np.array([0.0, 1.0, np.sqrt(2.0), 3.0, np.nan])
    p, curve, area = ruc_curve(d, p_max=2)
    assert p.tolist() == [0, 1, 2]
    assert curve.tolist() == [0.25, 0.5, 0.75]       # the NaN is left out
    assert area == pytest.approx(((0.25 + 0.5) / 2 + (0.5 + 0.75) / 2) / 2)
    r = r_summary(d ** 2)
    assert r == {"sum": pytest.approx(12.0), "mean": pytest.approx(3.0),
                 "median": pytest.approx(1.5), "count": 4}


def _meta(index, gt, boxes):
    return {"index": np.asarray(index), "keypoints": np.asarray(gt, np.float32),
            "bbox": np.asarray(boxes, np.float32)}


def test_metric_r_excludes_invisible_and_scales_to_crop_px() -> None:
    # two people, two keypoints; person 1's second keypoint is invisible
    gt = np.array([[[10, 10, 2], [20, 20, 2]], [[30, 30, 2], [40, 40, 0]]], np.float64)
    boxes = np.array([[0, 0, 50, 50], [0, 0, 50, 50]])
    clean_pos = np.array([[[1, 1], [2, 2]], [[3, 3], [4, 4]]], np.float64)
    clean = StabilityMetric(2, stride=(4, 4))
    clean.accumulate({"positions": clean_pos, "keypoints": gt}, _meta([0, 1], gt, boxes))
    moved = clean_pos.copy()
    moved[0, 0] += [1, 0]       # 1 heatmap px
    moved[1, 0] += [0, 2]       # 2 heatmap px
    moved[1, 1] += [5, 5]       # invisible: ignored
    metric = StabilityMetric(2, stride=(4, 4), reference=clean.positions(), p_max=2)
    metric.accumulate({"positions": moved, "keypoints": gt}, _meta([0, 1], gt, boxes))
    stats = metric.stats()
    assert stats["R_heatmap"] == {"sum": 5.0, "mean": pytest.approx(5 / 3), "median": 1.0,
                                  "count": 3}
    assert stats["R_crop"]["sum"] == 5.0 * 16
    assert stats["RUC"] == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]
    assert stats["AUC"] == pytest.approx(1.0) and stats["EPE"] == 0.0
    assert stats["D_n"] is None and stats["D_12"] is None  # no heatmaps: absent, not zero
    assert "R_heatmap" not in clean.stats()


def test_heatmap_summary_matches_the_separate_metrics() -> None:
    gen = torch.Generator().manual_seed(1)
    maps = torch.rand(3, 4, 9, 8, generator=gen)
    maps[0, 0] = 1.0                    # a flat map
    maps[1, 2, 0, 0] = maps[1, 2, 4, 4] = 2.0  # a tied maximum
    for norm in ("raw", "softmax"):
        maxima, dn, d12 = heatmap_summary(maps, n=16, normalisation=norm)
        assert np.array_equal(maxima, heatmap_maxima(maps))
        assert np.allclose(dn, dn_per_map(maps, 16).numpy())
        assert np.allclose(d12, d12_per_map(maps, norm).numpy())


def test_keypoint_count_mismatch_is_one_line() -> None:
    gt = np.zeros((1, 16, 3))
    metric = StabilityMetric(1, stride=(4, 4))
    with pytest.raises(ValueError, match="data set has 16") as info:
        metric.accumulate({"heatmaps": torch.rand(1, 17, 8, 8), "keypoints": np.zeros((1, 17, 3))},
                          {"index": np.array([0]), "keypoints": gt, "bbox": np.zeros((1, 4))})
    assert "\n" not in str(info.value)
