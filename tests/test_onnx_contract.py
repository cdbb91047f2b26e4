"""Issue 24 item 10 (and the ONNX part of 12): an ONNX spec is checked against the model's
declared inputs and outputs when the model is loaded — one line naming the model, the
spec file and the key, before any work — and an onnxruntime error at run time is one line
naming the model; integer keys are checked when the spec is read."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from robustpose.models.adapters import OnnxAdapter
from robustpose.models.onnx_spec import load_onnx_spec

pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[1]
LITE = yaml.safe_load((REPO / "configs/onnx/blazepose_landmark_lite.yaml").read_text())
HEAT = yaml.safe_load((REPO / "configs/onnx/blazepose_landmark_lite_heatmaps.yaml").read_text())


def _spec(tmp_path, base, **changes):
    data = {**base, **changes}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}))
    return path


def _refused(model, spec, key):
    with pytest.raises(ValueError) as info:
        OnnxAdapter(model, spec)
    text = str(info.value)
    assert "\n" not in text and str(model) in text and str(spec) in text, text
    assert f"key {key!r}" in text, text
    return text


@pytest.mark.parametrize("changes, key, says", [
    ({"layout": "NHWC"}, "layout", "channels"),
    ({"input_size": [192, 256]}, "input_size", "fixed at [1, 3, 256, 256]"),
    ({"score_index": 7}, "score_index", "5 values per keypoint"),
    ({"keypoint_index_map": [0, 2, 40]}, "keypoint_index_map", "39 keypoints"),
    ({"values_per_keypoint": 4}, "values_per_keypoint", "195"),
    ({"output_kind": "heatmaps"}, "output_kind", "N x K x h x w"),
    ({"output_name": "Identity_9"}, "output_name", "Identity_3"),
    ({"input_name": "image"}, "input_name", "input_1"),
])
def test_blazepose_spec_mismatches_are_one_line(models_root, tmp_path, changes, key, says):
    text = _refused(models_root / "blazepose_landmark_lite.onnx",
                    _spec(tmp_path, LITE, **changes), key)
    assert says in text


def test_coords_on_a_heatmap_output_and_a_map_beyond_it(models_root, tmp_path):
    model = models_root / "blazepose_landmark_lite.onnx"
    _refused(model, _spec(tmp_path, HEAT, keypoint_index_map=[0, 39]), "keypoint_index_map")
    # a (N, K, h, w) output read as coords: rank 4 is not a coordinate layout
    _refused(model, _spec(tmp_path, HEAT, output_kind="coords"), "output_kind")


def test_a_float_spec_on_an_int32_input_names_input_dtype(models_root, tmp_path):
    """Issue 26: MoveNet's int32 input fed by a spec that says nothing of the dtype (the
    default float32) is one line naming the key, the model's dtype and the spec's."""
    spec = _spec(tmp_path, {"input_size": [192, 192], "layout": "NHWC",
                            "output_kind": "coords", "value_range": [0, 255]})
    text = _refused(models_root / "movenet_singlepose_lightning.onnx", spec, "input_dtype")
    assert "tensor(int32)" in text and "input_dtype float32" in text


def _tiny_model(tmp_path, dtype, shape):
    """A one-node ONNX model (Identity) with an input of ``dtype`` and ``shape``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    elem = {"float16": TensorProto.FLOAT16, "uint8": TensorProto.UINT8,
            "float": TensorProto.FLOAT}[dtype]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info("y", elem, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / f"tiny_{dtype}.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("dtype, spec_dtype", [("float16", "auto"), ("float16", "float32"),
                                               ("uint8", "float32"), ("float", "int32")])
def test_other_input_types_are_refused_at_load(tmp_path, dtype, spec_dtype):
    model = _tiny_model(tmp_path, dtype, [1, 3, 8, 8])
    spec = _spec(tmp_path, {"input_size": [8, 8], "output_kind": "heatmaps",
                            "input_dtype": spec_dtype})
    text = _refused(model, spec, "input_dtype")
    assert f"tensor({dtype})" in text


def test_runtime_error_is_one_line_naming_the_model(tmp_path):
    import torch

    model = _tiny_model(tmp_path, "float", [1, 3, "h", "w"])
    adapter = OnnxAdapter(model, _spec(tmp_path, {"input_size": [8, 8],
                                                  "output_kind": "heatmaps"}))

    def broken(*args, **kwargs):
        import onnxruntime

        raise onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument(
            "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions\nmore")

    adapter.session.run = broken
    with pytest.raises(ValueError) as info:
        adapter.forward(torch.zeros(2, 3, 8, 8))
    assert str(model) in str(info.value) and "\n" not in str(info.value)
    assert "invalid dimensions" in str(info.value)


@pytest.mark.parametrize("changes, key", [
    ({"values_per_keypoint": "abc"}, "values_per_keypoint"),
    ({"values_per_keypoint": 1}, "values_per_keypoint"),
    ({"score_index": -1}, "score_index"),
    ({"keypoint_index_map": [0, -2]}, "keypoint_index_map"),
    ({"keypoint_index_map": "0,1"}, "keypoint_index_map"),
    ({"input_size": [0, 256]}, "input_size"),
])
def test_integer_keys_are_checked_when_read(tmp_path, changes, key):
    path = _spec(tmp_path, LITE, **changes)
    with pytest.raises(ValueError) as info:
        load_onnx_spec(path)
    assert str(path) in str(info.value) and key in str(info.value)


def test_a_model_with_more_keypoints_than_the_data_set(models_root, tmp_path):
    from robustpose.benchmarking.loading import resolve_adapter

    spec = _spec(tmp_path, LITE, keypoint_index_map=None)
    with pytest.raises(ValueError, match=r"39 keypoints .* 17 .*keypoint_index_map"):
        resolve_adapter(None, None, None, models_root / "blazepose_landmark_lite.onnx", spec,
                        num_joints=17)
    np.testing.assert_equal(OnnxAdapter(models_root / "blazepose_landmark_lite.onnx",
                                        _spec(tmp_path, LITE)).num_keypoints, 17)
