"""Architectures: official key/shape manifests, official fixtures, registry, interface."""
from __future__ import annotations

import json

import pytest
import torch

from robustpose.models import IMAGENET_MEAN, IMAGENET_STD, PoseModel, create_model, list_models, register_model

torch.set_num_threads(1)

MANIFEST = {  # official config name -> (registry name, num_joints)
    "coco_hrnet_w32_256x192_adam_lr1e-3": ("hrnet_w32", 17),
    "coco_hrnet_w48_256x192_adam_lr1e-3": ("hrnet_w48", 17),
    "coco_resnet_res50_256x192_d256x3_adam_lr1e-3": ("sbl_resnet50", 17),
    "coco_resnet_res101_256x192_d256x3_adam_lr1e-3": ("sbl_resnet101", 17),
    "coco_resnet_res152_256x192_d256x3_adam_lr1e-3": ("sbl_resnet152", 17),
    "mpii_hrnet_w32_256x256_adam_lr1e-3": ("hrnet_w32", 16),
}
FIXTURES = {"official_hrnet_w8_coco_256x192.pt": "hrnet",
            "official_sbl_resnet18_coco_256x192.pt": "sbl_resnet18"}


@pytest.fixture(scope="module")
def manifest(models_root):
    with open(models_root / "official" / "official_state_dicts.json") as fh:
        return json.load(fh)


@pytest.mark.parametrize("config", sorted(MANIFEST))
def test_state_dict_matches_official_manifest(manifest, config):
    name, joints = MANIFEST[config]
    ref = manifest[config]
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = create_model(name, num_joints=joints)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(ref["state_dict"])          # same keys, same order
    assert ours == ref["state_dict"]                       # same shapes
    assert sum(p.numel() for p in model.parameters()) == ref["num_params"]
    w, h = ref["image_size_wh"]
    out = model(torch.zeros(1, 3, h, w, device="meta"))
    assert list(out.shape) == ref["output_shape"]
    assert not any(k.startswith("input_") for k in ours)   # normalisation buffers stay out


def _load_fixture(models_root, fname):
    data = torch.load(models_root / "official" / fname, weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
    return data, state


@pytest.mark.parametrize("fname", sorted(FIXTURES))
def test_official_fixture_output_reproduced(models_root, fname):
    data, state = _load_fixture(models_root, fname)
    model = create_model(FIXTURES[fname], num_joints=17, extra=data["extra"]).eval()
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = model(data["input_normalized"], normalize=False)
        same = model.forward_normalized(data["input_normalized"])
    assert out.shape == data["output"].shape
    assert (out - data["output"]).abs().max().item() < 1e-4
    assert torch.equal(out, same)


def test_internal_normalisation_equals_official_preprocessing(models_root):
    """Un-normalising the fixture input to [0, 1] and using the default path gives the same output."""
    data, state = _load_fixture(models_root, "official_sbl_resnet18_coco_256x192.pt")
    model = create_model("sbl_resnet18", extra=data["extra"]).eval()
    model.load_state_dict(state)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pixels = data["input_normalized"] * std + mean
    with torch.no_grad():
        out = model(pixels)
    assert (out - data["output"]).abs().max().item() < 1e-4


def test_extra_overrides_preset_and_rejects_typos():
    small = {"STAGE2": {"NUM_CHANNELS": [8, 16]}, "STAGE3": {"NUM_CHANNELS": [8, 16, 32]},
             "STAGE4": {"NUM_CHANNELS": [8, 16, 32, 64]}, "PRETRAINED_LAYERS": ["*"]}
    with torch.device("meta"):
        w8 = create_model("hrnet_w32", extra=small)
        assert w8.final_layer.weight.shape == (17, 8, 1, 1)
        r18 = create_model("sbl_resnet", extra={"num_layers": 18, "NUM_DECONV_FILTERS": [128, 128, 128]})
        assert r18.layer1[0].__class__.__name__ == "BasicBlock" and r18.final_layer.in_channels == 128
    with pytest.raises(ValueError, match="NUM_DECONV_FILTRES"):
        create_model("sbl_resnet50", extra={"NUM_DECONV_FILTRES": [256]})
    with pytest.raises(ValueError, match="NUM_BRANCHES"):
        create_model("hrnet", extra={"STAGE2": {"NUM_CHANNELS": [8, 16, 32]}})


def test_list_models_and_registry_errors():
    assert list_models("hrnet*") == ["hrnet", "hrnet_w32", "hrnet_w48"]
    for name in ("sbl_resnet18", "sbl_resnet152", "mobilenetv2", "shufflenetv2", "hourglass_2",
                 "hourglass_8", "deeppose_resnet50"):
        assert name in list_models()
    with pytest.raises(ValueError, match="unknown model"):
        create_model("hrnet_w33")
    with pytest.raises(ValueError, match="never downloads"):
        create_model("sbl_resnet18", pretrained=True)

    @register_model("tiny_test_model")
    def tiny(num_joints=17, extra=None):
        return create_model("sbl_resnet18", num_joints=num_joints, extra=extra)
    assert "tiny_test_model" in list_models("tiny*")
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny_test_model", lambda num_joints=17, extra=None: None)


def test_seeded_init_is_repeatable_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = create_model("mobilenetv2", seed=3)
    b = create_model("mobilenetv2", seed=3)
    c = create_model("mobilenetv2", seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.final_layer.weight, c.final_layer.weight)


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_forward_and_backward(name):
    model = create_model(name, num_joints=5).train()
    assert isinstance(model, PoseModel)
    x = torch.rand(2, 3, 64, 64, requires_grad=True)     # multiple of 64: hourglass depth 4
    outs = model.forward_all(x)
    final = model(x)
    assert len(outs) == (model.num_stacks if "hourglass" in name else 1)
    if model.output_kind == "heatmaps":
        assert all(o.shape == (2, 5, 16, 16) for o in outs)
    else:
        assert final.shape == (2, 5, 2)
    assert torch.allclose(final, outs[-1])
    sum(o.float().square().mean() for o in outs).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_deeppose_coordinate_units():
    pix = create_model("deeppose_resnet18", num_joints=3).eval()
    norm = create_model("deeppose_resnet18", num_joints=3, coord_units="normalized").eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        p, n = pix(x), norm(x)
    assert torch.allclose(p, n * torch.tensor([96.0, 64.0]))
    assert torch.allclose(n, torch.full_like(n, 0.5), atol=0.05)   # initialised at the crop centre


def test_bad_input_shape_is_a_clear_error():
    model = create_model("sbl_resnet18")
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        model(torch.rand(3, 64, 48))
    with pytest.raises(ValueError, match="divisible by 32"):
        create_model("hrnet_w32")(torch.rand(1, 3, 64, 48))


def test_hourglass_intermediate_supervision_reaches_only_earlier_stacks():
    model = create_model("hourglass", num_joints=4, num_stacks=3).train()
    outs = model.forward_all(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    assert len(outs) == 3 and not torch.allclose(outs[0], outs[2])
    outs[0].square().mean().backward()            # loss on the first stack only
    assert model.hourglasses[0].up1[0].conv1.weight.grad is not None
    assert model.score[0].weight.grad is not None
    assert model.score[1].weight.grad is None and model.hourglasses[2].up1[0].conv1.weight.grad is None
