"""The hdhr codec (highly differentiated heatmaps, stable heatmap regression Sec. 3.2):
values at chosen positions, borders, invisible joints, the three distances, decoding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.codecs import (GaussianHeatmap, HDHRCodec, InferenceSetting, build_codec,
                               decode_outputs)

A = 0.7


def codec(**kw) -> HDHRCodec:
    return HDHRCodec(input_size=(96, 128), heatmap_size=(24, 32), **kw)  # stride 4


def at(x: float, y: float, v: float = 1.0) -> np.ndarray:
    """One keypoint in input px."""
    return np.array([[x, y, v]])


def test_values_at_chosen_positions_chessboard():
    out = codec().encode(at(40.0, 50.0))  # heatmap (10, 12.5) -> peak pixel (10, 13)
    hd, labels = out["target"][0], out["target_labels"][0]
    assert hd.shape == (32, 24) and hd.dtype == np.float32
    assert hd[13, 10] == 1.0 and hd.max() == 1.0
    for dx, dy, d in [(1, 0, 1), (1, 1, 1), (-3, 2, 3), (3, -2, 3), (0, 8, 8), (-8, -8, 8)]:
        assert hd[13 + dy, 10 + dx] == pytest.approx(A ** d, rel=1e-6), (dx, dy)
    assert hd[13, 10 + 9] == 0 and hd[13 - 9, 10] == 0 and hd[13 + 9, 10 + 9] == 0
    assert np.array_equal(labels, (hd > 0).astype(np.float32))
    assert labels.sum() == 17 * 17 and out["target_weight"].tolist() == [1.0]


def test_euclidean_and_cityblock_distances():
    e = codec(distance="euclidean").encode(at(40.0, 52.0))["target"][0]   # peak (10, 13)
    assert e[13 + 4, 10 + 3] == pytest.approx(A ** 5, rel=1e-6)           # sqrt(9 + 16) = 5
    assert e[13 + 1, 10 + 1] == pytest.approx(A ** np.sqrt(2), rel=1e-6)
    assert e[13, 10 + 8] == pytest.approx(A ** 8, rel=1e-6)
    assert e[13 + 6, 10 + 6] == 0                                          # 8.49 > 8
    c = codec(distance="cityblock").encode(at(40.0, 52.0))["target"][0]
    assert c[13 + 4, 10 + 3] == pytest.approx(A ** 7, rel=1e-6)
    assert c[13 + 4, 10 + 4] == pytest.approx(A ** 8, rel=1e-6)
    assert c[13 + 4, 10 + 5] == 0                                          # 9 > 8
    assert (c > 0).sum() == 2 * 8 * 9 + 1  # the diamond |dx| + |dy| <= 8: 145 pixels
    assert codec(distance="euclidean", t_hd=2, alpha=0.5).encode(at(40.0, 52.0))["target"][0].sum() \
        == pytest.approx(1 + 4 * 0.5 + 4 * 0.5 ** np.sqrt(2) + 4 * 0.25, rel=1e-6)


def test_alpha_and_t_hd_are_configurable():
    hd = codec(alpha=0.5, t_hd=2).encode(at(40.0, 52.0))["target"][0]
    assert hd[13, 12] == pytest.approx(0.25) and hd[13, 13] == 0
    assert (hd > 0).sum() == 25
    assert codec().region_sum == pytest.approx(sum(8 * d * A ** d for d in range(1, 9)) + 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_peak_is_rounded_like_the_gaussian_codec(seed):
    """Sub-pixel keypoints whose rounded pixel lies on the map (off it, chessboard ties
    decide the argmax)."""
    rng = np.random.default_rng(seed)
    kpts = np.concatenate([rng.uniform(0, [93.9, 125.9], size=(20, 2)), np.ones((20, 1))], axis=1)
    hd = codec().encode(kpts)["target"]
    gauss = GaussianHeatmap((96, 128), (24, 32), sigma=2.0).encode(kpts)["target"]
    assert np.array_equal(hd.reshape(20, -1).argmax(1), gauss.reshape(20, -1).argmax(1))


def test_near_and_beyond_the_borders():
    c = codec()
    corner = c.encode(at(0.0, 0.0))
    assert corner["target"][0, 0, 0] == 1.0 and corner["target_weight"][0] == 1
    assert corner["target_labels"][0].sum() == 9 * 9  # the region clipped to the map
    # x = -20 input px: -5 + 0.5 truncates toward zero to column -4 (HRNet's rounding, as
    # GaussianHeatmap): the region still reaches columns 0..4
    left = c.encode(at(-20.0, 52.0))
    assert left["target_weight"][0] == 1 and left["target"][0, 13, 0] == pytest.approx(A ** 4, rel=1e-6)
    assert left["target"][0, :, 4].max() > 0 and left["target"][0, :, 5:].max() == 0
    # bottom-right: peak on the last pixel, values towards the inside
    br = c.encode(at(23 * 4.0, 31 * 4.0))["target"][0]
    assert br[31, 23] == 1 and br[31, 15] == pytest.approx(A ** 8, rel=1e-6) and br[31, 14] == 0
    # farther than T_hd: no pixel of the region on the map -> weight 0, empty maps
    for x, y in [(-40.0, 52.0), (40.0, 128 + 40.0), (96 + 40.0, -40.0)]:
        out = c.encode(at(x, y))
        assert out["target_weight"][0] == 0 and not out["target"].any() and not out["target_labels"].any()


def test_invisible_joints_are_empty_and_unweighted():
    out = codec().encode(np.array([[40.0, 50.0, 0.0], [40.0, 50.0, 2.0], [10.0, 10.0, 0.0]]))
    assert out["target_weight"].tolist() == [0.0, 1.0, 0.0]
    assert not out["target"][0].any() and not out["target"][2].any() and out["target"][1].max() == 1
    assert not out["target_labels"][0].any() and sorted(out) == ["target", "target_labels", "target_weight"]


def test_decode_is_the_argmax_of_the_softmax():
    c = codec()
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 3, 32, 24)).astype(np.float32) - 5.0  # all negative
    coords, scores = c.decode(logits, refine="none")
    soft = torch.softmax(torch.from_numpy(logits).flatten(2), 2).numpy()
    idx = soft.argmax(2)
    assert np.array_equal(coords, np.stack([idx % 24, idx // 24], -1).astype(np.float32))
    # invariant under adding a constant (a softmax property), unlike the Gaussian codec
    # a negative maximum still gives a position (HRNet's codec returns (0, 0) for it)
    assert np.array_equal(c.decode(logits + 7.0, refine="none")[0], coords)
    assert np.all(coords.sum(-1) > 0)
    assert np.allclose(c.decode(logits, refine="none")[1],
                       codec(score="mass").decode(logits + 3.0, refine="none")[1], atol=1e-6)
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.allclose(codec(score="max").decode(logits)[1], soft.max(2), atol=1e-6)
    flat = np.zeros((1, 1, 32, 24), np.float32)  # ties: the first pixel
    assert c.decode(flat, refine="none")[0].tolist() == [[[0.0, 0.0]]]


def test_round_trip_through_encode_decode_and_back_projection():
    c = codec()
    kpts = np.array([[42.0, 50.0, 1.0], [8.0, 120.0, 1.0], [90.0, 6.0, 1.0]])  # on pixel centres
    hd = c.encode(kpts)["target"]
    logits = np.log(hd + 1e-6)[None]  # the weighted cross-entropy's optimum, as logits
    coords, scores = c.decode(logits, InferenceSetting(input_size=(96, 128), refine="none"))
    expected = np.floor(kpts[:, :2] / 4 + 0.5)
    assert np.array_equal(coords[0], expected)
    assert np.allclose(scores, 1.0, atol=1e-3)  # all softmax mass inside the HD region
    # the quarter step moves a symmetric map nowhere, and back-projection gives input px
    quarter = c.decode(logits, InferenceSetting(input_size=(96, 128)))[0]
    assert np.array_equal(quarter[0], expected)
    meta = {"center": np.array([[48.0, 64.0]]), "scale": np.array([[96 / 200, 128 / 200]])}
    spec = type("Spec", (), {"flip_pairs": []})()
    setting = InferenceSetting(input_size=(96, 128), refine="none", flip_test=False)
    image_xy = decode_outputs(c, torch.from_numpy(logits), None, meta, spec, setting)[0, :, :2]
    assert np.allclose(image_xy, expected * 4, atol=1e-4)  # the crop is the image here


def test_flip_back_realigns_a_mirrored_prediction():
    c = codec()
    hd = c.encode(np.array([[20.0, 50.0, 1.0], [70.0, 50.0, 1.0]]))["target"]
    logits = torch.from_numpy(np.log(hd + 1e-6))[None]
    mirrored = logits.flip(-1)[:, [1, 0]]  # the mirrored crop's output: joints swap sides
    setting = InferenceSetting(input_size=(96, 128), flip_shift=False, refine="none")
    merged = c.merge_flip(logits, mirrored, [(0, 1)], setting)
    assert torch.allclose(merged, logits, atol=1e-6)


def test_options_config_and_errors():
    c = codec(alpha=0.6, t_hd=5, distance="cityblock", score="max")
    again = build_codec(c.config())
    assert again.config() == c.config() and isinstance(again, HDHRCodec)
    assert c.output_normalisation == "softmax"
    built = build_codec({"type": "hdhr"}, input_size=(96, 128), heatmap_size=(24, 32),
                        sigma=2.0, refine="none", boundary="hrnet", blur_kernel=11)
    assert built.refine == "none" and built.alpha == 0.7 and built.t_hd == 8
    for kw, msg in [({"alpha": 1.0}, "alpha"), ({"t_hd": 2.5}, "t_hd"),
                    ({"distance": "l3"}, "distance"), ({"refine": "dark"}, "DARK"),
                    ({"score": "sum"}, "score")]:
        with pytest.raises(ValueError, match=msg):
            codec(**kw)
    with pytest.raises(ValueError, match="DARK"):
        codec().decode(np.zeros((1, 1, 32, 24)), InferenceSetting(refine="dark"))


def test_the_dataset_stores_the_multi_label_map(data_root):
    """TopDownDataset keeps every key encode returns: real COCO crops give target,
    target_weight (K x 1) and target_labels, collated by a DataLoader."""
    from torch.utils.data import DataLoader

    from robustpose.data import TopDownDataset, load_coco_records

    d = data_root / "coco_val_mini"
    records, spec = load_coco_records(d / "annotations.json", d / "images", aspect_ratio=192 / 256)
    c = HDHRCodec((192, 256), (48, 64))
    batch = next(iter(DataLoader(TopDownDataset(records[:2], spec, codec=c), batch_size=2,
                                 collate_fn=None)))
    assert batch["target"].shape == batch["target_labels"].shape == (2, 17, 64, 48)
    assert batch["target_weight"].shape == (2, 17, 1)
    assert torch.equal(batch["target_labels"], (batch["target"] > 0).float())
    visible = batch["target_weight"][..., 0] > 0
    assert visible.any() and torch.all(batch["target"].flatten(2).amax(2)[visible] == 1)
