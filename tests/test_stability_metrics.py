"""Stability metrics (R, RUC, D_n, D_(1)(2)) against hand-computed values on small maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.evaluation.stability import (StabilityMetric, d12_per_map, dn_per_map,
                                             heatmap_summary,
                                             heatmap_maxima, r_summary, ruc_curve,
                                             topk_positions, undefined_maps)


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
    # 4x4 ones with 2 at (0,0), n = 4: p_(1) = (0,0), then the tied ones nearest it: (1,0)
    # and (0,1) at 1, (1,1) at 2 -> 4; the earlier rule took row 0: 1 + 4 + 9 = 14
    m = np.ones((4, 4))
    m[0, 0] = 2.0
    assert float(dn_per_map(_maps(m), n=4)[0, 0]) == 4.0
    assert float(dn_per_map(_maps(m), n=4, ties="index")[0, 0]) == 14.0
    # a flat map has no peak: undefined on every reading
    for norm in ("raw", "softmax"):
        assert torch.isnan(dn_per_map(_maps(np.ones((4, 4))), n=4, normalisation=norm)).all()


def test_topk_ties_at_the_boundary_take_the_nearest_to_the_peak() -> None:
    m = np.zeros((4, 4))
    m[3, 3] = 2.0                       # the maximum, index 15, (x=3, y=3)
    m[2, 0] = m[0, 1] = m[1, 2] = 1.0   # tied second values at indices 8, 1, 6
    # squared distances to (3,3): index 6 (2,1) -> 1 + 4 = 5, index 8 (0,2) -> 9 + 1 = 10,
    # index 1 (1,0) -> 4 + 9 = 13: the two nearest enter, D_3 = 5 + 10 = 15
    values, index = topk_positions(_maps(m), n=3)
    assert values[0, 0].tolist() == [2.0, 1.0, 1.0]
    assert index[0, 0].tolist() == [15, 6, 8]
    assert float(dn_per_map(_maps(m), n=3)[0, 0]) == 15.0
    # the earlier rule (lowest index): 1 and 6, D_3 = 13 + 5 = 18
    assert topk_positions(_maps(m), n=3, ties="index")[1][0, 0].tolist() == [15, 1, 6]
    assert float(dn_per_map(_maps(m), n=3, ties="index")[0, 0]) == 18.0


def test_all_zero_map_is_undefined_not_scored_from_the_corner() -> None:
    zero = np.zeros((32, 24))
    # the earlier rule filled the top 64 from the corner: rows 0 and 1 and 16 pixels of
    # row 2 around (0,0): 4324 + (24 + 4324) + (16 * 4 + 1240) = 9976, by construction
    _, index = topk_positions(_maps(zero), n=64, ties="index")
    x, y = index[0, 0] % 24, index[0, 0] // 24
    assert int((x ** 2 + y ** 2).sum()) == 9976
    negative = np.full((32, 24), -1.0)
    for ties in ("peak", "index"):
        dn = dn_per_map(_maps(zero, negative), n=64, ties=ties)
        assert torch.isnan(dn).all()
    assert torch.isnan(d12_per_map(_maps(zero))).all()
    sloped = -np.arange(32 * 24, dtype=np.float64).reshape(32, 24)   # all <= 0, not flat
    maps = _maps(zero, negative, np.eye(32, 24), sloped)
    assert undefined_maps(maps).tolist() == [[True, True, False, True]]
    # a softmax reading (logit maps) is positive everywhere: only flat maps are undefined,
    # so the all-zero map is undefined on both readings and the sloped logits are not
    assert undefined_maps(maps, "softmax").tolist() == [[True, True, False, False]]
    assert np.isnan(float(d12_per_map(_maps(zero), "softmax")[0, 0]))
    assert float(dn_per_map(_maps(sloped), n=3, normalisation="softmax")[0, 0]) == 1 + 4


def test_ten_positive_pixels_complete_the_top_64_around_the_peak() -> None:
    # 32x24 map: peak 1.0 at (x=12, y=16), 0.5 at (x=0..8, y=0); 758 zeros tied
    m = np.zeros((32, 24))
    m[16, 12] = 1.0
    m[0, :9] = 0.5
    # the nine 0.5s: 9 * 16^2 + sum_{x=0..8} (12 - x)^2 = 2304 + 636 = 2940
    # the 54 zeros nearest (12,16), by squared distance d2 (count on the integer lattice):
    # 1 (4), 2 (4), 4 (4), 5 (8), 8 (4), 9 (4), 10 (8), 13 (8), 16 (4) = 48 pixels summing
    # to 4 + 8 + 16 + 40 + 32 + 36 + 80 + 104 + 64 = 384, then 6 of the 8 at d2 = 17: 102
    # -> D_64 = 2940 + 384 + 102 = 3426 (all within the map: the farthest is 4.1 px away)
    assert float(dn_per_map(_maps(m), n=64)[0, 0]) == 3426.0
    _, index = topk_positions(_maps(m), n=64)
    x, y = index[0, 0] % 24, index[0, 0] // 24
    d2 = ((x - 12) ** 2 + (y - 16) ** 2)[10:]
    assert d2.tolist() == sorted(d2.tolist())            # zeros in order of distance
    # the earlier rule took the zeros from the corner (rows 0-2) instead
    assert float(dn_per_map(_maps(m), n=64, ties="index")[0, 0]) != 3426.0


def test_plateau_is_read_around_its_first_pixel() -> None:
    # a 3x3 plateau of 1.0 at x, y = 2..4 on zeros, n = 4: p_(1) = (2,2), the first maximum;
    # then (3,2) and (2,3) at 1 and (3,3) at 2 -> D_4 = 4 (earlier rule: row y = 2 first,
    # (3,2) 1 + (4,2) 4 + (2,3) 1 = 6)
    m = np.zeros((7, 7))
    m[2:5, 2:5] = 1.0
    assert heatmap_maxima(_maps(m))[0, 0].tolist() == [2.0, 2.0]
    assert float(dn_per_map(_maps(m), n=4)[0, 0]) == 4.0
    assert float(dn_per_map(_maps(m), n=4, ties="index")[0, 0]) == 6.0
    # the whole plateau (n = 9): 2 x 1 + 2 + 2 x 4 + 2 x 5 + 8 = 30 under both rules
    assert float(dn_per_map(_maps(m), n=9)[0, 0]) == 30.0
    assert float(dn_per_map(_maps(m), n=9, ties="index")[0, 0]) == 30.0



@pytest.mark.parametrize("n", [1, 3, 16, 20])
def test_topk_equals_the_canonical_order_on_maps_full_of_ties(n: int) -> None:
    # values on a coarse grid: ties inside the selection, at its boundary and below it;
    # n = 20 is every pixel of a 5x4 map (no unselected pixel to tie with)
    gen = torch.Generator().manual_seed(3)
    maps = torch.randint(0, 4, (6, 5, 5, 4), generator=gen).float()
    values, index = topk_positions(maps, n=n, ties="index")
    order = torch.sort(maps.flatten(2), dim=2, descending=True, stable=True)
    assert torch.equal(values, order.values[..., :n])
    assert torch.equal(index, order.indices[..., :n])
    # 'peak': numpy's lexsort of (index, squared distance to the first maximum, -value)
    values, index = topk_positions(maps, n=n)
    flat = maps.flatten(2).numpy()
    pix = np.arange(20)
    for a in range(6):
        for k in range(5):
            v = flat[a, k]
            p = int(np.flatnonzero(v == v.max())[0])
            d2 = (pix % 4 - p % 4) ** 2 + (pix // 4 - p // 4) ** 2
            want = np.lexsort((pix, d2, -v))[:n]
            assert index[a, k].tolist() == want.tolist()
            assert values[a, k].tolist() == v[want].tolist()

def test_d12_raw_and_softmax() -> None:
    m = np.zeros((2, 2))
    m[0, 0], m[1, 1] = 3.0, 1.0
    assert float(d12_per_map(_maps(m))[0, 0]) == pytest.approx(2.0)
    e = np.exp([3.0, 1.0, 0.0, 0.0])
    soft = (e[0] - e[1]) / e.sum()
    assert float(d12_per_map(_maps(m), "softmax")[0, 0]) == pytest.approx(soft)
    assert np.isnan(float(d12_per_map(_maps(np.ones((2, 2))))[0, 0]))  # flat map: no peak
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
    maps[2, 1] = 0.0                    # flat: undefined on both readings
    maps[2, 2] = -maps[2, 2]            # no positive value: undefined on the raw reading only
    for norm in ("raw", "softmax"):
        for ties in ("peak", "index"):
            maxima, dn, d12 = heatmap_summary(maps, n=16, normalisation=norm, ties=ties)
            assert np.array_equal(maxima, heatmap_maxima(maps))
            assert np.allclose(dn, dn_per_map(maps, 16, ties, norm).numpy(), equal_nan=True)
            assert np.allclose(d12, d12_per_map(maps, norm).numpy(), equal_nan=True)
            assert np.isnan(dn[0, 0]) and np.isnan(d12[2, 1])
            assert np.isnan(dn[2, 2]) == np.isnan(d12[2, 2]) == (norm == "raw")
            assert np.isnan(dn).sum() == (3 if norm == "raw" else 2)


def test_keypoint_count_mismatch_is_one_line() -> None:
    gt = np.zeros((1, 16, 3))
    metric = StabilityMetric(1, stride=(4, 4))
    with pytest.raises(ValueError, match="data set has 16") as info:
        metric.accumulate({"heatmaps": torch.rand(1, 17, 8, 8), "keypoints": np.zeros((1, 17, 3))},
                          {"index": np.array([0]), "keypoints": gt, "bbox": np.zeros((1, 4))})
    assert "\n" not in str(info.value)


def test_metric_counts_undefined_maps_and_leaves_them_out_of_the_means() -> None:
    # two people x two keypoints; one map all zero (undefined), one keypoint invisible
    gt = np.array([[[10, 10, 2], [20, 20, 2]], [[30, 30, 2], [40, 40, 0]]], np.float64)
    maps = torch.zeros(2, 2, 8, 8)
    maps[0, 0, 3, 3], maps[0, 0, 3, 4] = 1.0, 0.5       # D_2 = 1, D_12 0.5
    maps[1, 0, 5, 5], maps[1, 0, 7, 5] = 2.0, 1.0       # D_2 = 4, D_12 1.0
    maps[1, 1, 0, 0] = 9.0                              # invisible: left out entirely
    # maps[0, 1] stays all zero: undefined, counted
    metric = StabilityMetric(2, stride=(4, 4), n=2)
    metric.accumulate({"heatmaps": maps, "keypoints": gt},
                      _meta([0, 1], gt, [[0, 0, 50, 50]] * 2))
    stats = metric.stats()
    assert stats["num_heatmaps"] == 3 and stats["undefined"] == 1
    assert stats["undefined_fraction"] == pytest.approx(1 / 3)
    assert stats["D_n"] == pytest.approx(2.5) and stats["D_12"] == pytest.approx(0.75)
    assert stats["D_12_hd"] is None


def test_metric_hd_scale_reads_the_softmax_on_the_hd_target_scale() -> None:
    from robustpose.codecs import HDHRCodec

    codec = HDHRCodec(input_size=(32, 32), heatmap_size=(8, 8))
    logits = torch.from_numpy(codec.encode(np.array([[14.0, 18.0, 1.0]]))["target"])[None]
    logits = torch.log(logits + 1e-6)       # the weighted CE's optimum: softmax = HD / Z
    gt = np.array([[[14.0, 18.0, 2.0]]])
    metric = StabilityMetric(1, stride=(4, 4), normalisation="softmax",
                             hd_scale=codec.region_sum)
    metric.accumulate({"heatmaps": logits, "keypoints": gt}, _meta([0], gt, [[0, 0, 32, 32]]))
    stats = metric.stats()
    # at the optimum the HD map's top two are alpha^0 and alpha^1: a margin of 1 - 0.7 on
    # the HD scale, 0.3 / Z as plain softmax (Z = sum of HD within the map, here clipped)
    z_map = float(torch.from_numpy(codec.encode(np.array([[14.0, 18.0, 1.0]]))["target"]).sum())
    assert stats["D_12"] == pytest.approx(0.3 / z_map, rel=1e-4)
    assert stats["D_12_hd"] == pytest.approx(0.3 * codec.region_sum / z_map, rel=1e-4)
    with pytest.raises(ValueError, match="hd_scale"):
        StabilityMetric(1, stride=(4, 4), hd_scale=51.0)      # raw reading: no HD scale
