"""The ``hrnet`` codec (GaussianHeatmap): HRNet's generate_target / get_final_preds, its
flip handling, and the round trip image -> crop -> heatmap -> crop -> image on the real
coco_val_mini persons."""
from __future__ import annotations

import numpy as np
import pytest

from robustpose.codecs import (GaussianHeatmap, InferenceSetting, build_codec,
                               heatmaps_to_image_coords)
from robustpose.data import TopDownDataset, fliplr_keypoints, load_coco_records


def test_encode_matches_hrnet_generate_target():
    codec = GaussianHeatmap((192, 256), (48, 64), sigma=2.0)
    kpts = np.array([[41.0, 50.0, 2],     # -> peak int(10.25 + .5)=10, int(12.5 + .5)=13
                     [10.0, 10.0, 0],     # unlabelled -> weight 0, empty map
                     [-40.0, 10.0, 1],    # cut square fully left of the map -> weight 0
                     [-10.0, 100.0, 1],   # partly inside -> weight 1, clipped Gaussian
                     [191.0, 255.0, 1]])  # bottom-right corner
    out = codec.encode(kpts)
    assert sorted(out) == ["target", "target_weight"]
    hm, w = out["target"], out["target_weight"]
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
    out = codec.encode(np.array([[-30.0, 10.0, 1]]))
    hm, w = out["target"], out["target_weight"]
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


def _roundtrip_errors(data_root, codec):
    d = data_root / "coco_val_mini"
    records, spec = load_coco_records(d / "annotations.json", d / "images",
                                      aspect_ratio=192 / 256)
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




def test_setting_decides_the_refinement():
    """decode(outputs, setting): the setting's refine / boundary override the codec's own."""
    hm = _peaks(1)
    hm[0, 0, 20, 10], hm[0, 0, 20, 11], hm[0, 0, 21, 10] = 1.0, 0.5, 0.3
    codec = GaussianHeatmap()
    assert np.allclose(codec.decode(hm, InferenceSetting(refine="none"))[0][0, 0], [10, 20])
    assert np.allclose(codec.decode(hm, InferenceSetting())[0][0, 0], [10.25, 20.25])
    assert codec.frame(hm) == (48, 64)


def test_flip_back_aligns_the_targets_of_a_mirrored_crop(data_root):
    """The targets of each real crop's mirror, flipped back with HRNet's 1-px shift, peak
    within one heatmap pixel of the crop's own targets (without the shift: up to 2 px,
    since x -> W-1-x in input pixels is not w-1-x in heatmap pixels)."""
    d = data_root / "coco_val_mini"
    records, spec = load_coco_records(d / "annotations.json", d / "images",
                                      aspect_ratio=192 / 256)
    codec = GaussianHeatmap()
    ds = TopDownDataset(records[:24], spec, codec=codec)
    errors = {True: [], False: []}
    for i in range(len(ds)):
        item = ds[i]
        joints = item["meta"]["joints"]
        mirrored = codec.encode(fliplr_keypoints(joints, 192, spec.flip_pairs))["target"]
        own, _ = codec.decode(item["target"][None].numpy(), shift=False)
        labelled = item["target_weight"][:, 0].numpy() > 0
        inside = labelled & (joints[:, 0] > 8) & (joints[:, 0] < 184)
        for shift in (True, False):
            back = codec.flip_back(mirrored[None], spec.flip_pairs,
                                   InferenceSetting(flip_shift=shift))
            got, _ = codec.decode(back, shift=False)
            errors[shift].append(np.abs(got - own)[0][inside])
    with_shift, without = np.concatenate(errors[True]), np.concatenate(errors[False])
    assert len(with_shift) > 150
    assert with_shift.max() <= 1.0 and with_shift[:, 1].max() == 0  # y is never mirrored
    assert with_shift[:, 0].mean() < without[:, 0].mean()


def test_built_from_its_config_it_encodes_alike(data_root):
    codec = build_codec({"type": "hrnet", "sigma": 3.0}, input_size=(96, 128),
                        heatmap_size=(24, 32), sigma=2.0)  # the block's sigma wins
    assert codec.sigma == 3.0 and codec.heatmap_size == (24, 32)
    again = build_codec(codec.config())
    kpts = np.array([[40.3, 50.8, 1.0], [90.0, 3.0, 2.0]])
    assert np.array_equal(codec.encode(kpts)["target"], again.encode(kpts)["target"])
