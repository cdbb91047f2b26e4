"""The ``unbiased`` codec (UnbiasedHeatmap, DARK): sub-pixel Gaussians, DARK decoding,
its flip handling and the round trip on the real coco_val_mini persons."""
from __future__ import annotations

import numpy as np

from robustpose.codecs import (GaussianHeatmap, InferenceSetting, UnbiasedHeatmap,
                               build_codec, get_max_preds, refine_dark)
from robustpose.data import TopDownDataset, fliplr_keypoints, load_coco_records

from test_codec_hrnet import _roundtrip_errors


def test_it_is_the_dark_gaussian_of_the_hrnet_codec():
    codec = build_codec("unbiased", input_size=(192, 256), heatmap_size=(48, 64))
    assert isinstance(codec, UnbiasedHeatmap) and codec.unbiased and codec.refine == "dark"
    kpts = np.array([[41.3, 50.9, 1.0], [5.0, 250.0, 2.0], [0.0, 0.0, 0.0]])
    same = GaussianHeatmap(unbiased=True).encode(kpts)
    got = codec.encode(kpts)
    assert np.array_equal(got["target"], same["target"])
    assert np.array_equal(got["target_weight"], [1, 1, 0])
    assert got["target"][0].max() < 1.0  # the peak lies between pixels


def test_dark_recovers_a_subpixel_gaussian():
    codec = UnbiasedHeatmap()
    for x, y in [(83.3, 101.9), (100.0, 120.6), (57.77, 203.1)]:
        hm = codec.encode(np.array([[x, y, 1.0]]))["target"]
        coords, _ = codec.decode(hm[None])
        assert np.allclose(coords[0, 0] * 4, [x, y], atol=0.05)
        quarter, _ = codec.decode(hm[None], refine="quarter")
        assert np.abs(quarter[0, 0] * 4 - [x, y]).max() <= 1.0 + 1e-6


def test_roundtrip_unbiased_dark_within_half_input_pixel(data_root):
    """Sub-pixel (DARK) encoding + DARK decoding: within 0.5 input px for every keypoint at
    least 3 heatmap px inside the map (DARK's Hessian needs x +- 2)."""
    errs, margins = _roundtrip_errors(data_root, UnbiasedHeatmap())
    interior = margins >= 3
    assert interior.sum() > 600
    assert errs[interior].max() < 0.5
    assert errs[interior].mean() < 0.05




def test_flip_back_with_the_shift_is_a_quarter_pixel_off(data_root):
    """Mirroring x -> W-1-x in input pixels is x/4 -> 47.75 - x/4 in heatmap pixels, while
    mirroring the map gives 47 - x/4: DARK-decoded, HRNet's 1-px shift leaves 0.25 heatmap
    px of x error on the real crops (0.75 without it), and y is untouched."""
    d = data_root / "coco_val_mini"
    records, spec = load_coco_records(d / "annotations.json", d / "images",
                                      aspect_ratio=192 / 256)
    codec = UnbiasedHeatmap()
    ds = TopDownDataset(records[:24], spec, codec=codec)
    err = {True: [], False: []}
    for i in range(len(ds)):
        item = ds[i]
        joints = item["meta"]["joints"]
        mirrored = codec.encode(fliplr_keypoints(joints, 192, spec.flip_pairs))["target"]
        hx, hy = joints[:, 0] / 4, joints[:, 1] / 4
        interior = (item["target_weight"][:, 0].numpy() > 0) & (hx > 4) & (hx < 43) & \
            (hy > 3) & (hy < 60)
        for shift in (True, False):
            setting = InferenceSetting(flip_shift=shift, refine="dark", dark_kernel=11)
            got, _ = codec.decode(codec.flip_back(mirrored[None], spec.flip_pairs, setting),
                                  setting)
            err[shift].append(np.stack([got[0, :, 0] - hx, got[0, :, 1] - hy], -1)[interior])
    shifted, plain = np.concatenate(err[True]), np.concatenate(err[False])
    assert len(shifted) > 150
    np.testing.assert_allclose(shifted[:, 0], 0.25, atol=0.05)
    np.testing.assert_allclose(plain[:, 0], -0.75, atol=0.05)
    assert np.abs(shifted[:, 1]).max() < 0.05


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
