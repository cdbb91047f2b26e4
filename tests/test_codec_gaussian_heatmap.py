"""GaussianHeatmap: HRNet's generate_target / get_final_preds, DARK, and the round trip
image -> crop -> heatmap -> crop -> image on the real coco_val_mini persons."""
from __future__ import annotations

import numpy as np
import pytest

from robustpose.codecs import GaussianHeatmap, get_max_preds, heatmaps_to_image_coords, refine_dark
from robustpose.data import TopDownDataset, load_coco_records


def test_encode_matches_hrnet_generate_target():
    codec = GaussianHeatmap((192, 256), (48, 64), sigma=2.0)
    kpts = np.array([[41.0, 50.0, 2],     # -> peak int(10.25 + .5)=10, int(12.5 + .5)=13
                     [10.0, 10.0, 0],     # unlabelled -> weight 0, empty map
                     [-40.0, 10.0, 1],    # cut square fully left of the map -> weight 0
                     [-10.0, 100.0, 1],   # partly inside -> weight 1, clipped Gaussian
                     [191.0, 255.0, 1]])  # bottom-right corner
    hm, w = codec.encode(kpts)
    assert hm.shape == (5, 64, 48) and hm.dtype == np.float32
    assert np.array_equal(w, [1, 0, 0, 1, 1])
    assert hm[0, 13, 10] == 1.0 and np.unravel_index(hm[0].argmax(), hm[0].shape) == (13, 10)
    assert hm[0, 13, 12] == pytest.approx(np.exp(-4 / 8))
    assert hm[0, 13, 17] == 0 and hm[0, 13, 16] > 0      # cut at 3 sigma = 6 px
    assert hm[1].max() == 0 and hm[2].max() == 0
    # x = -10 -> int(-2.5 + .5) = -2 (truncation toward zero, as HRNet): tail columns 0..4
    assert hm[3, 25, 0] == pytest.approx(np.exp(-4 / 8)) and hm[3, 25, 5] == 0
    # (191, 255) -> peak (48, 64), one pixel outside: the map holds its tail
    assert hm[4, 63, 47] == pytest.approx(np.exp(-2 / 8)) and w[4] == 1
    # HRNet quirk kept: x = -30 -> br = int(-7 + 7) = 0 is not < 0, so weight 1, empty map
    hm, w = codec.encode(np.array([[-30.0, 10.0, 1]]))
    assert w[0] == 1 and hm.max() == 0


def _peaks(n_maps=1, h=64, w=48):
    return np.zeros((1, n_maps, h, w), dtype=np.float32)


def test_quarter_shift_and_the_two_boundary_rules():
    hm = _peaks(3)
    hm[0, 0, 20, 10], hm[0, 0, 20, 11], hm[0, 0, 21, 10] = 1.0, 0.5, 0.3  # interior
    hm[0, 1, 1, 10], hm[0, 1, 1, 11], hm[0, 1, 2, 10] = 1.0, 0.5, 0.3     # peak on row y = 1
    hm[0, 2, 30, 1], hm[0, 2, 30, 2], hm[0, 2, 31, 1] = 1.0, 0.5, 0.3     # peak on column 1
    hrnet = GaussianHeatmap(boundary="hrnet")
    mmpose = GaussianHeatmap(boundary="mmpose")
    c_h, maxvals = hrnet.decode(hm)
    c_m, _ = mmpose.decode(hm)
    assert np.allclose(maxvals, 1.0)
    assert np.allclose(c_h[0, 0], [10.25, 20.25]) and np.allclose(c_m[0, 0], [10.25, 20.25])
    # HRNet needs 1 < x < W-1 AND 1 < y < H-1: no shift at all on row 1 or column 1
    assert np.allclose(c_h[0, 1], [10, 1]) and np.allclose(c_h[0, 2], [1, 30])
    # mmpose tests the axes separately: x refined on row 1, y refined on column 1
    assert np.allclose(c_m[0, 1], [10.25, 1]) and np.allclose(c_m[0, 2], [1, 30.25])
    raw, _ = hrnet.decode(hm, shift=False)
    assert np.allclose(raw[0, 0], [10, 20])


def test_non_positive_maps_give_origin_and_score():
    hm = _peaks(2) - 1.0
    hm[0, 1, 5, 7] = -0.5
    coords, maxvals = GaussianHeatmap().decode(hm)
    assert np.allclose(coords, 0) and np.allclose(maxvals, [[-1.0, -0.5]])


def test_dark_recovers_a_subpixel_gaussian():
    codec = GaussianHeatmap(unbiased=True, refine="dark")
    for x, y in [(83.3, 101.9), (100.0, 120.6), (57.77, 203.1)]:
        hm, _ = codec.encode(np.array([[x, y, 1.0]]))
        coords, _ = codec.decode(hm[None])
        assert np.allclose(coords[0, 0] * 4, [x, y], atol=0.05)
        quarter, _ = codec.decode(hm[None], refine="quarter")
        assert np.abs(quarter[0, 0] * 4 - [x, y]).max() <= 1.0 + 1e-6


def _roundtrip_errors(data_root, codec):
    d = data_root / "coco_val_mini"
    records, spec = load_coco_records(d / "annotations.json", d / "images")
    ds = TopDownDataset(records, spec, codec=codec)
    errs, margins = [], []
    for i in range(len(ds)):
        item = ds[i]
        meta = item["meta"]
        coords, _ = codec.decode(item["target"][None].numpy())
        xy = heatmaps_to_image_coords(coords, meta["center"][None], meta["scale"][None],
                                      codec.heatmap_size)[0]
        to_input = codec.input_size[0] / (meta["scale"][0] * 200)  # image px -> input px
        joints = meta["joints"]
        for k in np.nonzero(item["target_weight"][:, 0].numpy())[0]:
            hx, hy = joints[k, 0] / 4, joints[k, 1] / 4
            margins.append(min(hx, 47 - hx, hy, 63 - hy))
            errs.append(np.abs(xy[k] - meta["keypoints"][k, :2]) * to_input)
    return np.array(errs), np.array(margins)


def test_roundtrip_hrnet_codec_is_within_quantisation(data_root):
    """HRNet encoding puts peaks on integer heatmap pixels: the error per axis is at most
    half a heatmap pixel = 2 input px (stride 4) for keypoints inside the crop."""
    errs, margins = _roundtrip_errors(data_root, GaussianHeatmap())
    inside = margins >= 0
    assert inside.sum() > 600
    assert errs[inside].max() <= 2.0 + 1e-3
    assert 0.5 < errs[inside].mean() < 1.5  # uniform rounding error: mean ~1 px


def test_roundtrip_unbiased_dark_within_half_input_pixel(data_root):
    """Sub-pixel (DARK) encoding + DARK decoding: within 0.5 input px for every keypoint at
    least 3 heatmap px inside the map (DARK's Hessian needs x +- 2)."""
    errs, margins = _roundtrip_errors(data_root, GaussianHeatmap(unbiased=True, refine="dark"))
    interior = margins >= 3
    assert interior.sum() > 600
    assert errs[interior].max() < 0.5
    assert errs[interior].mean() < 0.05


def _dark_one_by_one(coords, heatmaps, kernel):
    """DARK as written in its paper's code: each map blurred on its own (zero padding),
    rescaled to its old maximum, then one Newton step per peak (np.linalg.solve)."""
    import cv2
    border = (kernel - 1) // 2
    out = np.array(coords, dtype=np.float64, copy=True)
    n, k, h, w = heatmaps.shape
    for i in range(n):
        for j in range(k):
            padded = np.zeros((h + 2 * border, w + 2 * border), np.float32)
            padded[border:border + h, border:border + w] = heatmaps[i, j]
            m = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:border + h, border:border + w]
            m = m * (heatmaps[i, j].max() / m.max())
            m = np.log(np.maximum(m, 1e-10)).astype(np.float64)
            x, y = int(out[i, j, 0]), int(out[i, j, 1])
            if not (1 < x < w - 2 and 1 < y < h - 2):
                continue
            grad = [0.5 * (m[y, x + 1] - m[y, x - 1]), 0.5 * (m[y + 1, x] - m[y - 1, x])]
            dxx = 0.25 * (m[y, x + 2] - 2 * m[y, x] + m[y, x - 2])
            dxy = 0.25 * (m[y + 1, x + 1] - m[y - 1, x + 1] - m[y + 1, x - 1] + m[y - 1, x - 1])
            dyy = 0.25 * (m[y + 2, x] - 2 * m[y, x] + m[y - 2, x])
            if dxx * dyy - dxy ** 2 != 0:
                out[i, j] -= np.linalg.solve([[dxx, dxy], [dxy, dyy]], grad)
    return out


def test_vectorised_dark_equals_the_per_peak_loop():
    """Peaks anywhere, also on and near the border (left unchanged there)."""
    rng = np.random.default_rng(3)
    heatmaps = (rng.random((6, 17, 32, 24)) ** 8).astype(np.float32)
    ys, xs = np.mgrid[0:32, 0:24]
    for i in range(6):
        for j in range(17):
            cx, cy = rng.uniform(-2, 26), rng.uniform(-2, 34)
            heatmaps[i, j] += np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8).astype(np.float32)
    coords, _ = get_max_preds(heatmaps)
    for kernel in (5, 11):
        got = refine_dark(coords, heatmaps, kernel)
        want = _dark_one_by_one(coords, heatmaps, kernel)
        np.testing.assert_allclose(got, want, atol=1e-4)
        assert np.any(np.abs(got - coords) > 0.05)  # it did refine
