"""Every model choice becomes an adapter through one call, robustpose.models.load_adapter;
a checkpoint is read once; bad input is one line naming the file."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import robustpose.benchmarking.loading  # noqa: F401  (registers the config reader)
from robustpose.codecs import InferenceSetting
from robustpose.models import checkpoint as checkpoint_module
from robustpose.models import create_model, load_adapter, save_checkpoint
from robustpose.models.adapters import CallableAdapter, OnnxAdapter, RegistryAdapter

REPO = Path(__file__).resolve().parents[1]
BLAZEPOSE_SPEC = REPO / "configs" / "onnx" / "blazepose_landmark_lite.yaml"


@pytest.fixture
def reads(monkeypatch):
    """Every read_checkpoint call (path), by every module that reads through it."""
    seen: list[str] = []
    original = checkpoint_module.read_checkpoint

    def counting(path, *args, **kwargs):
        seen.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "read_checkpoint", counting)
    return seen


@pytest.fixture(scope="module")
def spectral_rcc_checkpoint(tmp_path_factory) -> Path:
    """A robustpose file whose meta must rebuild spectral norm and the RCC layer before
    the weights fit, and carries its inference setting and codec."""
    model = create_model("mobilenetv2", num_joints=17, spectral_norm="all",
                         spectral_norm_iters=2, rcc=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)  # weights unlike a fresh build's, so a load is visible
    meta = {"inference": InferenceSetting(input_size=(96, 128), refine="dark").to_dict(),
            "codec": {"type": "unbiased", "input_size": [96, 128], "heatmap_size": [24, 32]}}
    return save_checkpoint(model, tmp_path_factory.mktemp("sn") / "sn.pt", meta=meta)


def _crops(size, n=2):
    return torch.rand(n, 3, size[1], size[0], generator=torch.Generator().manual_seed(0))


def test_registry_name_and_checkpoint_is_one_read_rebuilding_spectral_rcc_codec(
        spectral_rcc_checkpoint, reads):
    adapter, info = load_adapter("mobilenetv2", checkpoint=spectral_rcc_checkpoint)
    assert reads == [str(spectral_rcc_checkpoint)]  # opened exactly once
    assert isinstance(adapter, RegistryAdapter)
    assert adapter.model.model_config["kwargs"] == {"spectral_norm": "all",
                                                    "spectral_norm_iters": 2}
    assert adapter.model.model_config.get("rcc") is not None or \
        getattr(adapter.model, "output_transform", None) is not None
    assert adapter.inference.input_size == (96, 128) and adapter.inference.refine == "dark"
    assert adapter.codec.name == "unbiased"
    saved = torch.load(spectral_rcc_checkpoint, weights_only=True)["model"]
    own = adapter.model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in saved.items())
    # run.json's model keys, exactly as before
    assert set(info) == {"source", "checkpoint", "identity"}
    assert info["source"] == "registry" and info["checkpoint"] == str(spectral_rcc_checkpoint)
    assert set(info["identity"]) == {"weights", "codec"}
    assert adapter.checkpoint_meta["codec"]["type"] == "unbiased"


def test_old_spelling_gives_the_same_adapter_and_facts(spectral_rcc_checkpoint):
    from robustpose.benchmarking.loading import resolve_adapter

    old, old_info = resolve_adapter("mobilenetv2", spectral_rcc_checkpoint)
    new, new_info = load_adapter("mobilenetv2", checkpoint=spectral_rcc_checkpoint)
    assert old_info == new_info
    x = _crops(new.input_size)
    assert torch.equal(old.forward(x), new.forward(x))


def test_registry_name_alone_starts_from_its_default_cfg():
    adapter, info = load_adapter("hourglass_1", num_joints=16)
    assert adapter.input_size == (256, 256)  # its registry default_cfg, not 192x256
    assert info == {"source": "registry", "checkpoint": None, "identity": info["identity"]}
    coco, _ = load_adapter("mobilenetv2")
    assert coco.input_size == (192, 256)
    assert coco.inference.heatmap_size is None  # recorded in run.json: as before
    assert coco.codec.config()["heatmap_size"] == [48, 64] or \
        tuple(coco.codec.config()["heatmap_size"]) == (48, 64)
    resized, _ = load_adapter("hourglass_1", num_joints=16, input_size="128x128")
    assert resized.input_size == (128, 128)


def test_config_with_its_best_pt_loads_through_the_same_call(tmp_path, reads):
    out = tmp_path / "run"
    out.mkdir()
    config = yaml.safe_load((REPO / "configs" / "synthpose_shufflenetv2.yaml").read_text())
    config["output_dir"] = str(out)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    model = create_model("shufflenetv2", extra={"NUM_DECONV_FILTERS": [64, 64, 64]})
    save_checkpoint(model, out / "best.pt",
                    meta={"inference": InferenceSetting(input_size=(96, 128)).to_dict()})
    adapter, info = load_adapter(config=path)
    assert reads == [str(out / "best.pt")]
    assert adapter.input_size == (96, 128)
    from robustpose.config import load_config

    assert adapter.name == f"{load_config(path)['name']}:best"  # the config's name, the file's stem
    assert set(info) == {"source", "config", "checkpoint", "identity"}
    assert info["source"] == "config" and info["checkpoint"] == str(out / "best.pt")
    assert adapter.predict(_crops((96, 128)), {"center": np.full((2, 2), 48.0),
                                               "scale": np.ones((2, 2))},
                           _coco_spec(), flip_test=False).shape == (2, 17, 3)


def _coco_spec():
    from robustpose.data import get_spec

    return get_spec("coco")


def test_bundled_model_is_the_default_and_read_once(reads):
    adapter, info = load_adapter()
    assert len(reads) == 1 and reads[0].endswith(".pt")
    assert info["source"] == "bundled" and set(info) == {"source", "checkpoint", "identity"}
    assert adapter.name.startswith("bundled:") and adapter.input_size == (96, 128)
    with pytest.raises(ValueError, match="the bundled model takes 96x128"):
        load_adapter(input_size="192x256")


def test_python_objects_load_through_the_same_call():
    net = create_model("mobilenetv2")
    adapter, info = load_adapter(net, input_size=(192, 256))
    assert isinstance(adapter, RegistryAdapter) and info["source"] == type(net).__name__
    assert "module" in info["identity"]

    def fn(crops):
        return torch.zeros(len(crops), 17, 64, 48)

    wrapped, info = load_adapter(fn, model_identity="zeros-v1", name="zeros")
    assert isinstance(wrapped, CallableAdapter) and wrapped.name == "zeros"
    assert info["identity"] == {"python": "zeros-v1"}
    same, _ = load_adapter(wrapped)
    assert same is wrapped


def test_onnx_with_its_spec(models_root):
    pytest.importorskip("onnxruntime")
    adapter, info = load_adapter(onnx=models_root / "blazepose_landmark_lite.onnx",
                                 onnx_spec=BLAZEPOSE_SPEC)
    assert isinstance(adapter, OnnxAdapter)
    assert set(info) == {"source", "onnx", "onnx_spec", "identity"}
    with pytest.raises(ValueError, match=r"blazepose_landmark_lite\.onnx: the model gives 17 "
                                         r"keypoints and the data set has 16"):
        load_adapter(onnx=models_root / "blazepose_landmark_lite.onnx",
                     onnx_spec=BLAZEPOSE_SPEC, num_joints=16)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"model": "mobilenetv2", "checkpoint": "nowhere/w.pt"}, FileNotFoundError,
     r"^nowhere/w\.pt: checkpoint not found$"),
    ({"config": "nowhere/c.yaml"}, FileNotFoundError, r"nowhere/c\.yaml"),
    ({"onnx": "nowhere/m.onnx", "onnx_spec": str(BLAZEPOSE_SPEC)}, FileNotFoundError,
     r"^nowhere/m\.onnx: ONNX model not found$"),
    ({"model": "no_such_net"}, ValueError, r"no_such_net"),
    ({"checkpoint": "w.pt"}, ValueError, r"--checkpoint needs --model NAME"),
    ({"onnx": "m.onnx"}, ValueError, r"--onnx needs --onnx-spec"),
    ({"model": "mobilenetv2", "input_size": "wide"}, ValueError, r"bad input size 'wide'"),
])
def test_bad_input_is_one_line_naming_it(kwargs, error, message):
    if "onnx_spec" in kwargs:
        pytest.importorskip("onnxruntime")
    with pytest.raises(error, match=message) as caught:
        load_adapter(**kwargs)
    assert "\n" not in str(caught.value)


def test_wrong_keypoint_count_names_the_checkpoint(spectral_rcc_checkpoint):
    with pytest.raises(ValueError, match=rf"^{spectral_rcc_checkpoint}: checkpoint does not "
                                         r"fit .*shape mismatch") as caught:
        load_adapter("mobilenetv2", checkpoint=spectral_rcc_checkpoint, num_joints=16)
    assert "\n" not in str(caught.value)


def test_text_file_as_checkpoint_is_refused_naming_it(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match=rf"^{path}: not a readable PyTorch checkpoint"):
        load_adapter("mobilenetv2", checkpoint=path)


def test_old_import_paths_keep_working():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from robustpose.assets import bundled_checkpoint_path, load_bundled_model
        from robustpose.benchmarking.identity import file_sha256, model_identity  # noqa: F401
        from robustpose.benchmarking.loading import (DEFAULT_INPUT_SIZE, check_keypoint_count,
                                                     parse_extra, parse_input_size)
    from robustpose.models import bundled, identity, loading

    assert parse_input_size is loading.parse_input_size and parse_extra is loading.parse_extra
    assert check_keypoint_count is loading.check_keypoint_count
    assert DEFAULT_INPUT_SIZE == (192, 256) and model_identity is identity.model_identity
    assert bundled_checkpoint_path() == bundled.bundled_checkpoint_path()
    assert load_bundled_model()[1]["input_size"] == (96, 128)
