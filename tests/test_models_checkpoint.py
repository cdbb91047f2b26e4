"""Checkpoint formats (official, DDP, mmpose 1.x, robustpose), refusal of pickled code,
mismatch reports and ImageNet initialisation from a local file."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.models import create_model, load_checkpoint, load_model, save_checkpoint
from robustpose.models.checkpoint import read_checkpoint

torch.set_num_threads(1)
SBL = "official_sbl_resnet18_coco_256x192.pt"
HRNET = "official_hrnet_w8_coco_256x192.pt"


@pytest.fixture(scope="module")
def sbl_fixture(models_root):
    return torch.load(models_root / "official" / SBL, weights_only=True)


@pytest.fixture(scope="module")
def hrnet_fixture(models_root):
    return torch.load(models_root / "official" / HRNET, weights_only=True)


def _output(model, data):
    model.eval()
    with torch.no_grad():
        return model(data["input_normalized"], normalize=False)


def _assert_reproduces(model, data):
    assert (_output(model, data) - data["output"]).abs().max().item() < 1e-4


@pytest.mark.parametrize("layout", ["plain", "state_dict", "module_prefix"])
def test_official_layouts_load_and_reproduce_output(sbl_fixture, tmp_path, layout):
    state = dict(sbl_fixture["state_dict"])                # fp16 as stored: the loader casts
    if layout == "module_prefix":
        state = {"module." + k: v for k, v in state.items()}
    obj = {"state_dict": state} if layout == "state_dict" else state
    path = tmp_path / "official.pth"
    torch.save(obj, path)
    model = create_model("sbl_resnet18", extra=sbl_fixture["extra"])
    wrapped = torch.nn.DataParallel(model)                     # wrappers are looked through
    report = load_checkpoint(wrapped if layout == "module_prefix" else model, path)
    assert report.ok and report.loaded == len(sbl_fixture["state_dict"])
    assert model.final_layer.weight.dtype == torch.float32
    _assert_reproduces(model, sbl_fixture)


def _to_mmpose(state, head_keys):
    out = {}
    for k, v in state.items():
        out[("head." if k.split(".")[0] in head_keys else "backbone.") + k] = v
    return {"meta": {"mmengine_version": "0.10.3", "epoch": 210,
                     "dataset_meta": {"dataset_name": "coco", "num_keypoints": 17,
                                      "sigmas": np.linspace(0.025, 0.107, 17)}},
            "state_dict": out}


@pytest.mark.parametrize("which", ["sbl", "hrnet"])
def test_mmpose_checkpoint_maps_backbone_and_head(sbl_fixture, hrnet_fixture, tmp_path, which):
    data, name = (sbl_fixture, "sbl_resnet18") if which == "sbl" else (hrnet_fixture, "hrnet")
    ckpt = _to_mmpose(data["state_dict"], {"deconv_layers", "final_layer"})
    assert "head.final_layer.weight" in ckpt["state_dict"]
    path = tmp_path / "mmpose.pth"
    torch.save(ckpt, path)
    model = create_model(name, extra=data["extra"])
    report = load_checkpoint(model, path)
    assert report.source_format == "mmpose" and report.ok
    _assert_reproduces(model, data)


def test_robustpose_format_round_trip(tmp_path):
    model = create_model("hourglass_2", num_joints=16, seed=1)
    path = save_checkpoint(model, tmp_path / "run" / "hg.pth", meta={"epoch": 3})
    raw = read_checkpoint(path)
    assert set(raw) == {"model", "meta"}
    assert raw["meta"]["format"] == "robustpose" and raw["meta"]["name"] == "hourglass_2"
    assert raw["meta"]["num_joints"] == 16 and raw["meta"]["epoch"] == 3
    other = create_model("hourglass_2", num_joints=16, seed=2)
    assert not torch.equal(other.score[0].weight, model.score[0].weight)
    report = load_checkpoint(other, path)
    assert report.source_format == "robustpose" and report.ok
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k
    rebuilt = load_model(path).eval()
    assert rebuilt.model_name == "hourglass_2" and rebuilt.num_stacks == 2 and rebuilt.num_joints == 16
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model.eval()(x))


def test_load_model_rebuilds_keyword_options(tmp_path):
    model = create_model("deeppose_resnet18", num_joints=4, coord_units="normalized")
    rebuilt = load_model(save_checkpoint(model, tmp_path / "dp.pth"))
    assert rebuilt.coord_units == "normalized" and rebuilt.output_kind == "coords"
    torch.save(model.state_dict(), tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="no robustpose meta"):
        load_model(tmp_path / "plain.pth")


class Payload:
    """Unpickling this would call _side_effect: a stand-in for code hidden in a checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_side_effect, (self.marker,))


def _side_effect(marker):
    with open(marker, "w") as fh:
        fh.write("code ran")
    return None


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    marker = tmp_path / "executed.txt"
    model = create_model("sbl_resnet18")
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": model.state_dict(), "hook": Payload(marker)}, path)
    with pytest.raises(ValueError) as err:
        load_checkpoint(model, path)
    msg = str(err.value)
    assert "refusing to load" in msg and "evil.pth" in msg and "_side_effect" in msg
    assert "\n" not in msg
    assert not marker.exists()


def test_mismatches_are_reported_by_name(sbl_fixture, tmp_path):
    state = {k: v for k, v in sbl_fixture["state_dict"].items() if k != "layer1.0.conv1.weight"}
    state["extra_head.weight"] = torch.zeros(3)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    model = create_model("sbl_resnet18", num_joints=10)       # final layer: 10 != 17 joints
    before = model.final_layer.weight.clone()
    with pytest.raises(ValueError) as err:
        load_checkpoint(model, path)
    msg = str(err.value)
    for name in ("layer1.0.conv1.weight", "extra_head.weight", "final_layer.weight"):
        assert name in msg
    assert "[17, 256, 1, 1]" in msg and "[10, 256, 1, 1]" in msg
    assert torch.equal(model.final_layer.weight, before)          # strict failure loads nothing
    report = load_checkpoint(model, path, strict=False)
    assert report.missing == ["layer1.0.conv1.weight"]
    assert report.unexpected == ["extra_head.weight"]
    assert {k for k, _, _ in report.shape_mismatch} == {"final_layer.weight", "final_layer.bias"}
    assert torch.equal(model.conv1.weight, sbl_fixture["state_dict"]["conv1.weight"].float())


def test_unreadable_and_missing_files(tmp_path):
    model = create_model("sbl_resnet18")
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth: not a readable"):
        load_checkpoint(model, bad)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_checkpoint(model, tmp_path / "nowhere.pth")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="no state dict"):
        load_checkpoint(model, tmp_path / "tensor.pth")


def test_imagenet_init_only_from_local_file(tmp_path):
    donor = create_model("deeppose_resnet18", seed=7)        # same trunk as SBL-R18
    trunk = {k: v for k, v in donor.state_dict().items() if not k.startswith("coord_head")}
    trunk["fc.weight"] = torch.zeros(1000, 512)               # torchvision classifier: ignored
    trunk["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(trunk, path)
    model = create_model("sbl_resnet18", pretrained=path, seed=0)
    scratch = create_model("sbl_resnet18", seed=0)
    assert torch.equal(model.layer4[1].conv2.weight, donor.layer4[1].conv2.weight)
    assert torch.equal(model.final_layer.weight, scratch.final_layer.weight)   # head untouched
    with pytest.raises(ValueError, match="not an ImageNet backbone"):
        create_model("sbl_resnet50", pretrained=path)


@pytest.mark.parametrize("content, expected", [
    (b"cuda settings\nlr: 0.1\n", "text file? it starts with 'cuda settings'"),
    (b"MODEL:\n  NAME: pose_hrnet\n", "text file? it starts with 'MODEL:'"),
    (b"", "an empty file"),
    (b"\x00\x01\x02\x03binary", "unknown format, starts with bytes 00 01 02 03"),
])
def test_a_file_that_is_no_torch_save_file_says_what_it_is(tmp_path, content, expected):
    """Before: a text file read as protocol-0 pickle opcodes and was called a checkpoint
    'holding pickled Python objects'."""
    path = tmp_path / "best.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        load_checkpoint(create_model("sbl_resnet18"), path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: not a readable PyTorch checkpoint (") and expected in msg
    assert "pickled" not in msg and "\n" not in msg
