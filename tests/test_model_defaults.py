"""Per-model defaults (timm's pretrained_cfg): every registered model states how it is fed."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from robustpose.models import GENERIC_CFG, create_model, get_default_cfg, list_models, register_model
from robustpose.models.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
# The papers' input sizes (width, height): HRNet / SimpleBaseline / mmpose's lightweight
# configs on COCO 256x192, the stacked hourglass on MPII 256x256, DeepPose at 256x256.
EXPECTED = {"hrnet_w32": (192, 256), "hrnet_w48": (192, 256), "sbl_resnet50": (192, 256),
            "sbl_resnet152": (192, 256), "mobilenetv2": (192, 256), "shufflenetv2": (192, 256),
            "sbl_vgg19_bn": (192, 256), "hourglass_2": (256, 256), "hourglass_8": (256, 256),
            "deeppose_resnet50": (256, 256), "deeppose_shufflenetv2": (256, 256)}
BUILT_IN = [n for n in list_models() if not n.startswith("tiny_")]  # test_models registers one


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_paper_input_sizes(name):
    assert get_default_cfg(name)["input_size"] == EXPECTED[name]


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_builtin_model_has_its_own_cfg_matching_its_outputs(name):
    assert MODELS.meta(name)["default_cfg"] is not None, f"{name} registered without default_cfg"
    cfg = get_default_cfg(name)
    assert set(cfg) == set(GENERIC_CFG)
    w, h = cfg["input_size"]
    with torch.device("meta"):
        model = create_model(name, num_joints=3)
        out = model(torch.zeros(1, 3, h, w))
    if model.output_kind == "heatmaps":
        assert cfg["codec"]["type"] != "regression"
        assert tuple(out.shape[-2:]) == (cfg["heatmap_size"][1], cfg["heatmap_size"][0])
    else:
        assert cfg["codec"] == {"type": "regression"} and cfg["heatmap_size"] is None


def test_default_cfg_is_a_fresh_copy():
    cfg = get_default_cfg("hourglass_2")
    cfg["input_size"] = (1, 1)
    cfg["codec"]["type"] = "changed"
    assert get_default_cfg("hourglass_2")["input_size"] == (256, 256)
    assert get_default_cfg("hourglass_2")["codec"] == {"type": "hrnet"}


def test_registration_without_cfg_gets_generic_and_bad_cfg_is_one_line():
    name = "tiny_defaults_test_model"
    if name not in MODELS:
        register_model(name, lambda num_joints=17, extra=None: None)
    assert get_default_cfg(name) == GENERIC_CFG
    with pytest.raises(ValueError, match=r"^model 'tiny_bad_cfg': unknown default_cfg key\(s\) inputsize; choose from"):
        register_model("tiny_bad_cfg", lambda num_joints=17, extra=None: None, default_cfg={"inputsize": (1, 1)})
    with pytest.raises(ValueError, match=r"default_cfg input_size must be \(width, height\)"):
        register_model("tiny_bad_cfg", lambda num_joints=17, extra=None: None, default_cfg={"input_size": (0, 2)})
    assert "tiny_bad_cfg" not in MODELS
    with pytest.raises(ValueError, match=r"^unknown model 'hrnet_w33'; choose from .* \(nearest: 'hrnet_w32'\)$"):
        get_default_cfg("hrnet_w33")


def test_benchmark_script_reads_sizes_from_the_registry():
    spec = importlib.util.spec_from_file_location("bench_models", REPO / "benchmarks" / "models.py")
    bench_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_models)
    for name, (w, h) in EXPECTED.items():
        assert bench_models.paper_size(name) == (h, w)
    assert not hasattr(bench_models, "PAPER_SIZE")
