"""The ``regression`` codec (DeepPose coordinates): targets on real crops, direct decoding,
flip handling, and a regression model predicted through it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.codecs import (CoordinateRegression, InferenceSetting, build_codec,
                               decode_outputs, heatmaps_to_image_coords, predict_keypoints)
from robustpose.data import TopDownDataset, fliplr_keypoints, get_spec, load_coco_records

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def crops(data_root):
    d = data_root / "coco_val_mini"
    records, spec = load_coco_records(d / "annotations.json", d / "images",
                                      aspect_ratio=192 / 256)
    codec = CoordinateRegression((192, 256))
    ds = TopDownDataset(records, spec, codec=codec)
    return ds, spec, codec


def test_targets_round_trip_to_the_image_keypoints(crops):
    """Every labelled keypoint of coco_val_mini: crop px target -> decode -> image px lands
    on the annotation (only float error: no quantisation in a coordinate target)."""
    ds, spec, codec = crops
    worst, labelled = 0.0, 0
    for i in range(len(ds)):
        item = ds[i]
        assert item["target"].shape == (17, 2) and item["target_weight"].shape == (17, 1)
        coords, scores = codec.decode(item["target"][None])
        assert np.all(scores == 1.0)
        meta = item["meta"]
        xy = heatmaps_to_image_coords(coords, meta["center"][None], meta["scale"][None],
                                      codec.frame(item["target"][None]))[0]
        vis = item["target_weight"][:, 0].numpy() > 0
        labelled += int(vis.sum())
        worst = max(worst, float(np.abs(xy[vis] - meta["keypoints"][vis, :2]).max(initial=0)))
        assert np.all(item["target"][~vis].numpy() == 0)  # unlabelled: nothing to regress
    assert labelled > 600 and worst < 1e-3


def test_normalized_units_divide_by_the_crop_size():
    kpts = np.array([[96.0, 64.0, 1.0], [191.0, 255.0, 2.0], [10.0, 10.0, 0.0]])
    pixels = CoordinateRegression((192, 256)).encode(kpts)["target"]
    unit = CoordinateRegression((192, 256), units="normalized")
    normalized = unit.encode(kpts)["target"]
    np.testing.assert_allclose(normalized[:2], pixels[:2] / [192, 256], rtol=1e-6)
    coords, _ = unit.decode(normalized[None])
    np.testing.assert_allclose(coords[0, :2], kpts[:2, :2], rtol=1e-6)


@pytest.mark.parametrize("units", ["pixels", "normalized"])
def test_flip_back_undoes_the_mirror_exactly(crops, units):
    """x -> W-1-x and the pair swap: the mirrored crop's targets flipped back are the
    crop's own targets (unlike heatmaps, no half-pixel asymmetry), in both units."""
    ds, spec, _ = crops
    codec = CoordinateRegression((192, 256), units=units)
    for i in range(0, len(ds), 7):
        joints = ds[i]["meta"]["joints"]
        mirrored = codec.encode(fliplr_keypoints(joints, 192, spec.flip_pairs))["target"]
        own = codec.encode(joints)["target"]
        back = codec.flip_back(mirrored[None], spec.flip_pairs)[0]
        vis = joints[:, 2] > 0
        np.testing.assert_allclose(back[vis], own[vis], atol=1e-4)


def test_score_column_is_kept_and_averaged():
    codec = CoordinateRegression((48, 64))
    spec = get_spec("coco")
    out = np.zeros((1, 17, 3))
    out[0, :, :2], out[0, :, 2] = 10.0, 0.8
    flipped = codec.flip_back(out, spec.flip_pairs)  # the mirrored crop's prediction
    flipped[0, :, 2] = 0.4
    metas = {"center": np.array([[24.0, 32.0]]), "scale": np.array([[48 / 200, 64 / 200]])}
    keypoints = decode_outputs(codec, out, flipped, metas, spec, InferenceSetting((48, 64)))
    np.testing.assert_allclose(keypoints[0, :, :2], 10.0, atol=1e-4)
    np.testing.assert_allclose(keypoints[0, :, 2], 0.6)
    with pytest.raises(ValueError, match="N x K x 2"):
        codec.decode(np.zeros((1, 17, 4)))


def test_a_deeppose_model_is_decoded_by_this_codec():
    """predict_keypoints picks the regression codec for output_kind 'coords' and gives the
    same keypoints as decoding the model outputs through the codec by hand."""
    from robustpose.models import create_model

    torch.manual_seed(0)
    model = create_model("deeppose_resnet18").eval()
    images = torch.rand(2, 3, 64, 64)
    metas = {"center": np.array([[50.0, 60.0], [80.0, 90.0]]),
             "scale": np.array([[0.6, 0.6], [0.9, 0.9]])}
    spec = get_spec("coco")
    setting = InferenceSetting((64, 64), flip_test=True)
    got = predict_keypoints(model, images, metas, spec, setting)
    codec = build_codec("regression", input_size=(64, 64), heatmap_size=(16, 16), sigma=2.0)
    with torch.no_grad():
        want = decode_outputs(codec, model(images), model(images.flip(3)), metas, spec, setting)
    np.testing.assert_array_equal(got, want)
