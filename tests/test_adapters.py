"""Model adapters: ONNX (BlazePose, a real pretrained model), callables, spec files."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpose.data import (TopDownDataset, affine_transform_points, get_affine_transform,
                             get_spec, load_coco_records)
from robustpose.codecs import CoordinateRegression, InferenceSetting, decode_outputs
from robustpose.models.adapters import CallableAdapter, OnnxAdapter, as_adapter, load_onnx_spec

REPO = Path(__file__).resolve().parents[1]
BLAZEPOSE_SPEC = REPO / "configs" / "onnx" / "blazepose_landmark_lite.yaml"


def coco_mini(data_root, input_size=(256, 256)):
    root = data_root / "coco_val_mini"
    records, spec = load_coco_records(root / "annotations.json", root / "images",
                                      aspect_ratio=input_size[0] / input_size[1])
    return records, spec


def batch_of(records, spec, input_size):
    ds = TopDownDataset(records, spec, input_size=input_size,
                        heatmap_size=(input_size[0] // 4, input_size[1] // 4))
    items = [ds[i] for i in range(len(records))]
    images = torch.stack([it["image"] for it in items])
    meta = {k: np.stack([np.asarray(it["meta"][k]) for it in items])
            for k in ("center", "scale", "image_id", "score")}
    return images, meta


# --------------------------------------------------------------------------- spec files
def test_blazepose_spec_reads():
    spec = load_onnx_spec(BLAZEPOSE_SPEC)
    assert spec.input_size == (256, 256) and spec.output_kind == "coords"
    assert spec.output_name == "Identity" and spec.values_per_keypoint == 5
    assert spec.keypoint_index_map == [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25,
                                       26, 27, 28]


@pytest.mark.parametrize("text, message", [
    ("input_size: [256, 256]\n", "lacks required key(s) output_kind"),
    ("input_size: [256, 256]\noutput_kind: boxes\n", "output_kind must be one of"),
    ("input_size: [256, 256]\noutput_kind: coords\nmean: [0, 0, 0]\n", "both mean and std"),
    ("- a\n- b\n", "must be a mapping"),
    ("input_size: [256\n", "cannot parse"),
])
def test_bad_spec_gives_one_line_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_onnx_spec(path)
    assert str(path) in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_onnxruntime_names_the_extra(monkeypatch, models_root):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"robustpose\[onnx\]"):
        OnnxAdapter(models_root / "blazepose_landmark_lite.onnx", BLAZEPOSE_SPEC)


# --------------------------------------------------------------------------- BlazePose
@pytest.fixture(scope="module")
def blazepose(models_root):
    return OnnxAdapter(models_root / "blazepose_landmark_lite.onnx", BLAZEPOSE_SPEC)


def test_blazepose_lands_near_ground_truth_on_a_large_person(blazepose, data_root):
    records, spec = coco_mini(data_root)
    # the 277 px tall, fully annotated person of image 397133
    person = [r for r in records if r.image_id == 397133 and r.bbox[3] > 250][0]
    images, meta = batch_of([person], spec, blazepose.input_size)
    keypoints = blazepose.predict(images, meta, spec, flip_test=False)[0]
    visible = person.keypoints[:, 2] > 0
    error = np.linalg.norm(keypoints[visible, :2] - person.keypoints[visible, :2], axis=1)
    assert visible.sum() >= 12
    assert np.median(error) < 8.0, error
    assert np.all((keypoints[:, 2] >= 0) & (keypoints[:, 2] <= 1))  # sigmoid scores


def test_fixed_batch_of_one_is_fed_crop_by_crop(blazepose, data_root):
    assert blazepose.fixed_batch == 1
    records, spec = coco_mini(data_root)
    images, meta = batch_of(records[:3], spec, blazepose.input_size)
    together = blazepose.forward(images)
    alone = np.concatenate([blazepose.forward(images[i:i + 1]) for i in range(3)])
    assert together.shape == (3, 195)
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-4)



def test_blazepose_logit_heatmaps_need_the_sigmoid(models_root, data_root, tmp_path):
    # Identity_3 holds logits (mostly negative): HRNet's decode sends a joint whose map
    # maximum is <= 0 to the crop corner, so without heatmap_activation many joints land
    # far off; with it the maps' argmax agrees with the ground truth about as well as the
    # model's own coordinate output.
    records, spec = coco_mini(data_root)
    records = [r for r in records if (r.keypoints[:, 2] > 0).sum() >= 5]
    hm_spec = REPO / "configs" / "onnx" / "blazepose_landmark_lite_heatmaps.yaml"
    text = hm_spec.read_text()
    assert "heatmap_activation: sigmoid" in text
    raw_spec = tmp_path / "raw.yaml"
    raw_spec.write_text(text.replace("heatmap_activation: sigmoid", "heatmap_activation: none"))
    errors = {}
    for name, spec_file in (("sigmoid", hm_spec), ("raw", raw_spec), ("coords", BLAZEPOSE_SPEC)):
        adapter = OnnxAdapter(models_root / "blazepose_landmark_lite.onnx", spec_file)
        images, meta = batch_of(records, spec, adapter.input_size)
        keypoints = adapter.predict(images, meta, spec, flip_test=False)
        gt = np.stack([r.keypoints for r in records])
        visible = gt[..., 2] > 0
        errors[name] = float(np.mean(np.linalg.norm(keypoints[..., :2] - gt[..., :2], axis=-1)[visible]))
        if name == "sigmoid":
            assert np.all((keypoints[..., 2] > 0) & (keypoints[..., 2] < 1))
    assert errors["sigmoid"] < 1.5 * errors["coords"], errors
    assert errors["raw"] > 2 * errors["sigmoid"], errors

@pytest.mark.parametrize("image_id", [109313, 153797])
def test_blazepose_flip_test_mirrors_and_swaps_back(blazepose, data_root, image_id):
    records, spec = coco_mini(data_root)
    person = max((r for r in records if r.image_id == image_id), key=lambda r: r.bbox[3])
    images, meta = batch_of([person], spec, blazepose.input_size)
    flipped = blazepose.predict(images, meta, spec, flip_test=True)[0]
    visible = person.keypoints[:, 2] > 0
    # without the left/right swap these people come out 38 px and 93 px (median) off
    error = np.linalg.norm(flipped[visible, :2] - person.keypoints[visible, :2], axis=1)
    assert np.median(error) < 10.0, error


# --------------------------------------------------------------------------- callables
def test_crop_pixels_map_back_to_image_pixels_exactly(data_root):
    records, spec = coco_mini(data_root, (192, 256))
    record = records[0]
    matrix = get_affine_transform(record.center, record.scale, 0, (192, 256))
    crop_xy = affine_transform_points(record.keypoints[:, :2], matrix)
    meta = {"center": record.center[None], "scale": record.scale[None]}
    back = decode_outputs(CoordinateRegression((192, 256)), crop_xy[None], None, meta, spec,
                          InferenceSetting((192, 256)))
    np.testing.assert_allclose(back[0, :, :2], record.keypoints[:, :2], atol=1e-3)
    assert np.all(back[0, :, 2] == 1.0)  # no score column -> score 1


def _bright_spot_heatmaps(crops: torch.Tensor, k: int = 17) -> torch.Tensor:
    """A toy 'model': every heatmap peaks at the brightest pixel of the crop."""
    n, _, h, w = crops.shape
    grey = crops.mean(1)
    pooled = torch.nn.functional.avg_pool2d(grey[:, None], 4)[:, 0]  # (n, h/4, w/4)
    flat = pooled.reshape(n, -1).argmax(1)
    ys, xs = flat // (w // 4), flat % (w // 4)
    yy, xx = torch.meshgrid(torch.arange(h // 4), torch.arange(w // 4), indexing="ij")
    maps = torch.exp(-((xx[None] - xs[:, None, None]) ** 2 + (yy[None] - ys[:, None, None]) ** 2)
                     / (2 * 2.0 ** 2))
    return maps[:, None].repeat(1, k, 1, 1).float()


@pytest.mark.parametrize("flip_test", [False, True])
def test_heatmap_callable_finds_a_bright_spot(flip_test):
    spec = get_spec("coco")
    crops = torch.zeros(2, 3, 256, 192)
    spots = [(40, 100), (148, 32)]  # (x, y) in crop pixels: 4x4 blocks from there
    for i, (x, y) in enumerate(spots):
        crops[i, :, y:y + 4, x:x + 4] = 1.0
    adapter = as_adapter(_bright_spot_heatmaps, input_size=(192, 256))
    assert isinstance(adapter, CallableAdapter)
    # centre/scale that make the crop the identity: 192 px wide box centred in the crop
    center = np.array([[96.0 - 0.0, 128.0]] * 2)
    scale = np.array([[192 / 200.0, 256 / 200.0]] * 2)
    keypoints = adapter.predict(crops, {"center": center, "scale": scale}, spec, flip_test)
    for i, (x, y) in enumerate(spots):
        assert np.allclose(keypoints[i, :, 0], x, atol=3.0)
        assert np.allclose(keypoints[i, :, 1], y, atol=3.0)


def test_callable_output_shape_is_checked():
    adapter = CallableAdapter(lambda x: torch.zeros(x.shape[0], 5), input_size=(64, 64))
    spec = get_spec("coco")
    meta = {"center": np.zeros((1, 2)), "scale": np.ones((1, 2))}
    with pytest.raises(ValueError, match="expected heatmaps"):
        adapter.predict(torch.zeros(1, 3, 64, 64), meta, spec, False)


def test_registry_adapter_decodes_with_dark_when_asked():
    from robustpose.codecs import predict_keypoints
    from robustpose.data import get_spec
    from robustpose.models import create_model
    from robustpose.models.adapters import RegistryAdapter

    torch.manual_seed(0)
    model = create_model("sbl_resnet18", extra={"NUM_DECONV_FILTERS": [32, 32, 32]}).eval()
    crops = torch.rand(2, 3, 128, 96)
    metas = {"center": torch.tensor([[50.0, 60.0], [80.0, 90.0]]),
             "scale": torch.tensor([[0.6, 0.8], [0.9, 1.2]])}
    spec = get_spec("coco")
    setting = InferenceSetting((96, 128), refine="dark", dark_kernel=5)
    adapter = RegistryAdapter(model, setting)
    assert adapter.inference is setting and adapter.inference.refine == "dark"
    want = predict_keypoints(model, crops, metas, spec, setting)
    np.testing.assert_allclose(adapter.predict(crops, metas, spec, True), want, rtol=1e-6)
    quarter = RegistryAdapter(model, (96, 128)).predict(crops, metas, spec, True)
    assert not np.allclose(quarter, want)
    with pytest.raises(ValueError, match="refine"):
        as_adapter(model, input_size=(96, 128), post_process="argmax")
    via_options = as_adapter(model, input_size=(96, 128), post_process="dark", dark_kernel=5)
    assert via_options.inference == setting


def test_every_adapter_carries_one_inference_setting(blazepose):
    """input_size / padding / default_flip_test are read from ``adapter.inference``."""
    from robustpose.models import create_model
    from robustpose.models.adapters import RegistryAdapter

    spec = load_onnx_spec(BLAZEPOSE_SPEC)
    assert blazepose.inference == InferenceSetting(spec.input_size, padding=spec.padding,
                                                   flip_test=spec.flip_test)
    model = create_model("sbl_resnet18", extra={"NUM_DECONV_FILTERS": [32, 32, 32]})
    setting = InferenceSetting((64, 96), padding=1.4, flip_test=False, flip_shift=False)
    callable_ = CallableAdapter(_bright_spot_heatmaps, input_size=(64, 96), padding=1.4,
                                shift=False)
    for adapter in (blazepose, RegistryAdapter(model, setting), callable_):
        assert adapter.input_size == adapter.inference.input_size
        assert adapter.padding == adapter.inference.padding
        assert adapter.default_flip_test == adapter.inference.flip_test
    assert callable_.inference == setting and callable_.inference.flip_shift is False
    with pytest.raises(AttributeError):
        callable_.input_size = (1, 1)  # derived, not a second copy
    with pytest.raises(ValueError, match="decodes heatmaps"):
        from robustpose.codecs import GaussianHeatmap
        RegistryAdapter(create_model("deeppose_resnet18"), (64, 64),
                        codec=GaussianHeatmap((64, 64), (16, 16)))



def test_model_name_with_checkpoint_decodes_with_the_saved_setting_and_codec(tmp_path):
    """`--model NAME --checkpoint best.pt` decodes with the InferenceSetting and codec block
    saved in the file's meta (what the trainer writes); another `--input-size` keeps the
    decoding choices with that size's default codec; a file without them gets defaults."""
    from robustpose.benchmarking.loading import resolve_adapter
    from robustpose.codecs import GaussianHeatmap, InferenceSetting, UnbiasedHeatmap
    from robustpose.models import create_model, save_checkpoint

    extra = {"NUM_DECONV_FILTERS": [8, 8, 8]}
    model = create_model("shufflenetv2", num_joints=17, extra=extra)
    setting = InferenceSetting(input_size=(96, 128), heatmap_size=(24, 32), flip_shift=False,
                               refine="dark", dark_kernel=5)
    codec = UnbiasedHeatmap((96, 128), (24, 32), refine="dark", blur_kernel=5)
    saved = save_checkpoint(model, tmp_path / "best.pt",
                            meta={"inference": setting.to_dict(), "codec": codec.config()})

    adapter, _ = resolve_adapter("shufflenetv2", saved, extra=extra)
    assert adapter.inference == setting
    assert isinstance(adapter.codec, UnbiasedHeatmap) and adapter.codec.config() == codec.config()

    resized, _ = resolve_adapter("shufflenetv2", saved, extra=extra, input_size="128x128")
    assert resized.inference.input_size == (128, 128) and resized.inference.refine == "dark"
    assert isinstance(resized.codec, GaussianHeatmap) and resized.codec.input_size == (128, 128)

    plain, _ = resolve_adapter("shufflenetv2", save_checkpoint(model, tmp_path / "plain.pt"),
                               extra=extra)
    assert plain.inference == InferenceSetting(input_size=(192, 256))
