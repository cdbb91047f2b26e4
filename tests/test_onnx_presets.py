"""Issue 26 section 1, the model contract: presets by name read from the model file,
the new spec keys (input dtype, coordinate order / units, SimCC, outputs by role), one-line
refusals at load, ``robustpose inspect``, and the TFLite adapter (same keypoints as the
ONNX file of the same model)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robustpose.models.adapters import OnnxAdapter
from robustpose.models.onnx_adapter import decode_simcc
from robustpose.models.onnx_spec import load_onnx_spec

pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[1]


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path, outputs: list[str],
            dynamic_batch: bool = False) -> Path:
    """A tiny torch model exported to ONNX (the TorchScript exporter: no onnxscript here)."""
    pytest.importorskip("onnx")
    axes = {"input": {0: "batch"}, **{o: {0: "batch"} for o in outputs}} if dynamic_batch else None
    torch.onnx.export(module.eval(), (example,), str(path), input_names=["input"],
                      output_names=outputs, dynamic_axes=axes, dynamo=False)
    return path


class FixedPose(torch.nn.Module):
    """MoveNet's contract with a known answer: int32 NHWC in, (1, 1, 17, 3) (y, x, score)
    normalised to the crop out, whatever the image (plus 0 x the input, to keep it)."""

    def __init__(self, pose: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("pose", torch.as_tensor(pose, dtype=torch.float32)[None, None])

    def forward(self, x):
        return self.pose + 0.0 * x.float().mean()


def _pose(rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.uniform(0.1, 0.9, 17), rng.uniform(0.1, 0.9, 17),
                     rng.uniform(0.3, 1.0, 17)], axis=1)  # (y, x, score)


# ------------------------------------------------------------------------- presets
def test_movenet_preset_reads_size_and_dtype_from_the_file_thunder_too(tmp_path):
    rng = np.random.default_rng(26)
    pose = _pose(rng)
    path = _export(FixedPose(pose), torch.zeros(1, 256, 256, 3, dtype=torch.int32),
                   tmp_path / "thunder_like.onnx", ["output_0"])
    adapter = OnnxAdapter(path, "movenet")
    assert adapter.input_size == (256, 256) and adapter.input_dtype == "int32"
    kind, out, _ = adapter.outputs(torch.rand(2, 3, 256, 256))
    assert kind == "coords" and out.shape == (2, 17, 3)
    np.testing.assert_allclose(out[0, :, 0], pose[:, 1] * 256, atol=1e-4)  # x from index 1
    np.testing.assert_allclose(out[0, :, 1], pose[:, 0] * 256, atol=1e-4)
    np.testing.assert_allclose(out[1, :, 2], pose[:, 2], atol=1e-6)


def test_movenet_lightning_from_its_preset(models_root):
    adapter = OnnxAdapter(models_root / "movenet_singlepose_lightning.onnx", "movenet")
    assert adapter.input_size == (192, 192) and adapter.spec.coordinate_order == "yx"
    # the int32 input gets the crop's bytes: k / 255 -> k exactly
    levels = torch.arange(192 * 192 * 3).reshape(1, 3, 192, 192) % 256
    fed = adapter._prepare(levels.float() / 255.0)
    assert fed.dtype == np.int32 and fed.shape == (1, 192, 192, 3)
    np.testing.assert_array_equal(fed[0].transpose(2, 0, 1), levels[0].numpy())


@pytest.mark.parametrize("name, layout, output", [
    ("blazepose_landmark_lite.onnx", "NCHW", "Identity"),
    ("blazepose_heavy.onnx", "NHWC", "ld_3d")])
def test_blazepose_preset_fits_lite_and_heavy(models_root, name, layout, output):
    adapter = OnnxAdapter(models_root / name, "blazepose")
    assert adapter.spec.layout == layout and adapter.output_name == output
    assert adapter.num_keypoints == 17 and adapter.input_size == (256, 256)


def test_blazepose_preset_gives_the_shipped_yaml_s_keypoints(models_root):
    model = models_root / "blazepose_landmark_lite.onnx"
    crops = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(3))
    by_file = OnnxAdapter(model, REPO / "configs/onnx/blazepose_landmark_lite.yaml")
    by_name = OnnxAdapter(model, "blazepose")
    np.testing.assert_array_equal(by_name.outputs(crops)[1], by_file.outputs(crops)[1])


def test_a_preset_of_another_family_is_one_line(models_root):
    with pytest.raises(ValueError) as info:
        OnnxAdapter(models_root / "movenet_singlepose_lightning.onnx", "blazepose")
    text = str(info.value)
    assert "\n" not in text and "preset 'blazepose'" in text and "(N, 195)" in text
    with pytest.raises(FileNotFoundError, match="movenet, blazepose, rtmpose"):
        OnnxAdapter(models_root / "movenet_singlepose_lightning.onnx", "movenett")


# ------------------------------------------------------------------------- SimCC
def _simcc_of(pose_px: np.ndarray, size: tuple[int, int], ratio: float, sigma: float = 3.0):
    """SimCC vectors (1, K, W*r), (1, K, H*r) of a known pose (K, 2) crop px: Gaussians at
    x * r, y * r (mmpose SimCCLabel's targets), peak value 1."""
    bins_x, bins_y = np.arange(round(size[0] * ratio)), np.arange(round(size[1] * ratio))
    sx = np.exp(-(bins_x[None] - pose_px[:, :1] * ratio) ** 2 / (2 * sigma ** 2))
    sy = np.exp(-(bins_y[None] - pose_px[:, 1:2] * ratio) ** 2 / (2 * sigma ** 2))
    return sx[None], sy[None]


@pytest.mark.parametrize("ratio", [2.0, 3.0])
def test_simcc_decoding_recovers_known_poses(ratio):
    rng = np.random.default_rng(7)
    pose = rng.uniform(5, 180, size=(17, 2))
    sx, sy = _simcc_of(pose, (192, 256), ratio)
    sy[0, 4] *= 0.5  # the score is the smaller maximum
    out = decode_simcc(sx, sy, ratio)
    np.testing.assert_allclose(out[0, :, :2], pose, atol=0.5 / ratio + 1e-9)
    assert out[0, 4, 2] == pytest.approx(min(sx[0, 4].max(), sy[0, 4].max()))
    sx[0, 2] = -1.0  # mmpose: no positive response -> bin -1
    assert tuple(decode_simcc(sx, sy, ratio)[0, 2, :2]) == (-1 / ratio, -1 / ratio)


class PointFinder(torch.nn.Module):
    """An RTMPose-shaped SimCC model with a known answer: every keypoint is where the crop
    is brightest; simcc_x is the column profile upsampled x2 (bins 2u and 2u+1 hold column
    u), simcc_y the row profile."""

    def forward(self, x):  # (N, 3, 256, 192) normalised
        image = x.mean(dim=1)                                        # (N, H, W)
        sx = image.amax(dim=1).repeat_interleave(2, dim=-1)          # (N, 2W)
        sy = image.amax(dim=2).repeat_interleave(2, dim=-1)          # (N, 2H)
        return sx[:, None].expand(-1, 17, -1), sy[:, None].expand(-1, 17, -1)


def test_rtmpose_preset_on_an_exported_simcc_model(tmp_path):
    path = _export(PointFinder(), torch.zeros(1, 3, 256, 192), tmp_path / "simcc.onnx",
                   ["simcc_x", "simcc_y"], dynamic_batch=True)
    adapter = OnnxAdapter(path, "rtmpose")
    assert adapter.input_size == (192, 256) and adapter.spec.simcc_split_ratio == 2.0
    assert adapter.output_names == {"simcc_x": "simcc_x", "simcc_y": "simcc_y"}
    crops = torch.zeros(2, 3, 256, 192)
    crops[0, :, 40, 100] = 1.0
    crops[1, :, 200, 7] = 1.0
    kind, out, _ = adapter.outputs(crops)
    assert kind == "coords"
    np.testing.assert_array_equal(out[:, 0, :2], [[100, 40], [7, 200]])
    # a wrong split ratio is refused at load, naming the key and both values
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({"input_size": [192, 256], "output_kind": "simcc",
                                    "simcc_split_ratio": 3.0}))
    with pytest.raises(ValueError, match=r"384 bins; simcc_split_ratio 3.0 x input width "
                                         r"192 gives 576 \(key 'simcc_split_ratio'"):
        OnnxAdapter(path, spec)


# ------------------------------------------------------------------------- checks
def _write(tmp_path, **data):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, key, says", [
    ({"kind": "whole-image"}, "kind", "whole-image"),
    ({"input_dtype": "float32"}, "input_dtype", "tensor(int32) (input_dtype int32)"),
    ({"input_size": [256, 256]}, "input_size", "fixed at [1, 192, 192, 3]"),
    ({"layout": "NCHW"}, "layout", "channels"),
    ({"outputs": {"coords": "heatmap"}}, "outputs", "['output_0']"),
    ({"input_dtype": "uint8", "value_range": [0, 255], "input_name": "input"}, "input_dtype",
     "spec says input_dtype uint8"),
])
def test_movenet_spec_mismatches_are_one_line(models_root, tmp_path, changes, key, says):
    base = {"input_size": [192, 192], "output_kind": "coords", "layout": "NHWC",
            "value_range": [0, 255], "input_dtype": "int32", "values_per_keypoint": 3}
    spec = _write(tmp_path, **{**base, **changes})
    model = models_root / "movenet_singlepose_lightning.onnx"
    with pytest.raises(ValueError) as info:
        OnnxAdapter(model, spec)
    text = str(info.value)
    assert "\n" not in text and str(model) in text and f"key {key!r}" in text and says in text


@pytest.mark.parametrize("changes, says", [
    ({"coordinate_order": "zy"}, "coordinate_order must be one of"),
    ({"coordinate_units": "pixels"}, "coordinate_units must be one of"),
    ({"input_dtype": "float64"}, "input_dtype must be one of"),
    ({"outputs": {"boxes": "x"}}, "outputs must map roles"),
    ({"input_dtype": "uint8", "value_range": [0, 1000]}, "uint8 holds 0..255"),
    ({"kind": "bottom-up"}, "kind must be one of"),
])
def test_new_keys_are_checked_when_read(tmp_path, changes, says):
    path = _write(tmp_path, input_size=[192, 192], output_kind="coords", **changes)
    with pytest.raises(ValueError) as info:
        load_onnx_spec(path)
    assert str(path) in str(info.value) and says in str(info.value)


def test_the_shipped_spec_keeps_its_content_hash():
    """Run folders recorded this hash before the new keys existed (defaults do not count)."""
    assert load_onnx_spec(REPO / "configs/onnx/blazepose_landmark_lite.yaml"
                          ).content_sha256() == "ff6a1e43e0682def"


def test_cli_wrong_spec_is_one_line_and_inspect_names_the_preset(models_root, data_root,
                                                                 capsys, tmp_path):
    from robustpose.cli import main

    model = str(models_root / "movenet_singlepose_lightning.onnx")
    spec = _write(tmp_path, input_size=[192, 192], output_kind="coords", layout="NHWC",
                  value_range=[0, 255])
    rc = main(["benchmark", "--onnx", model, "--onnx-spec", str(spec), "--dataset",
               "coco-format", "--data-root", str(data_root / "coco_val_mini"),
               "--corruptions", "none", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "key 'input_dtype'" in err
    assert main(["inspect", model]) == 0
    out = capsys.readouterr().out
    assert "tensor(int32)" in out and "[1, 1, 17, 3]" in out
    assert "presets that fit: movenet" in out


# ------------------------------------------------------------------------- TFLite
def test_tflite_and_onnx_lite_give_the_same_keypoints_on_the_same_crops(models_root,
                                                                        data_root):
    pytest.importorskip("ai_edge_litert")
    from robustpose.data import TopDownDataset, load_coco_records
    from robustpose.models.tflite_adapter import TfliteAdapter

    root = data_root / "coco_val_mini"
    records, kspec = load_coco_records(root / "annotations.json", root / "images",
                                       aspect_ratio=1.0)
    ds = TopDownDataset(records[:6], kspec, input_size=(256, 256), heatmap_size=(64, 64),
                        encode_targets=False)
    items = [ds[i] for i in range(len(ds))]
    crops = torch.stack([it["image"] for it in items])
    metas = {k: np.stack([np.asarray(it["meta"][k]) for it in items])
             for k in ("center", "scale")}
    onnx = OnnxAdapter(models_root / "blazepose_landmark_lite.onnx", "blazepose")
    tflite = TfliteAdapter(models_root / "blazepose_landmark_lite.tflite", "blazepose")
    assert tflite.spec.layout == "NHWC" and onnx.spec.layout == "NCHW"
    a = onnx.predict(crops, metas, kspec, flip_test=False)
    b = tflite.predict(crops, metas, kspec, flip_test=False)
    np.testing.assert_allclose(b[..., :2], a[..., :2], atol=0.05)  # image px
    np.testing.assert_allclose(b[..., 2], a[..., 2], atol=1e-3)
    # the heatmap role too: NHWC maps in the .tflite, NCHW in the .onnx
    heat = dict(input_size=[256, 256], output_kind="heatmaps", output_name="Identity_3",
                heatmap_activation="sigmoid", layout="NHWC", heatmap_layout="NHWC",
                keypoint_index_map=[0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26,
                                    27, 28])
    from robustpose.models.onnx_spec import spec_from_mapping

    maps_t = TfliteAdapter(models_root / "blazepose_landmark_lite.tflite",
                           spec_from_mapping(heat, "test")).outputs(crops[:2])[1]
    maps_o = OnnxAdapter(models_root / "blazepose_landmark_lite.onnx", spec_from_mapping(
        {**heat, "layout": "NCHW", "heatmap_layout": "NCHW"}, "test")).outputs(crops[:2])[1]
    np.testing.assert_allclose(maps_t.numpy(), maps_o.numpy(), atol=1e-3)
