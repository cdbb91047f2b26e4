"""sbl_vgg19_bn: VGG19-bn in torchvision's ``features`` layout + the SimpleBaseline head."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from robustpose.models import create_model, list_models, save_checkpoint

#: torchvision vgg19_bn: the Conv2d positions inside ``features`` (conv, bn, relu per conv;
#: one max-pool per block) -- what an ImageNet state dict's ``features.<i>.*`` keys name
TORCHVISION_CONV_INDICES = [0, 3, 7, 10, 14, 17, 20, 23, 27, 30, 33, 36, 40, 43, 46, 49]
WIDTHS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]


def expected_feature_parameters() -> int:
    """By hand: each 3x3 conv has 9 * c_in * c_out weights + c_out biases, each BatchNorm
    2 * c_out (weight, bias); running statistics are buffers, not parameters."""
    total, c_in = 0, 3
    for c_out in WIDTHS:
        total += 9 * c_in * c_out + c_out + 2 * c_out
        c_in = c_out
    return total


@pytest.fixture(scope="module")
def model():
    return create_model("sbl_vgg19_bn", num_joints=17).eval()


def test_registered_and_listed():
    assert "sbl_vgg19_bn" in list_models()
    assert list_models("*vgg*") == ["sbl_vgg19_bn"]


def test_feature_parameter_count_matches_torchvision_vgg19_bn(model):
    count = sum(p.numel() for p in model.features.parameters())
    assert count == expected_feature_parameters() == 20_035_392  # vgg19_bn minus its classifier
    convs = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    assert convs == TORCHVISION_CONV_INDICES and len(model.features) == 53
    assert [model.features[i].out_channels for i in convs] == WIDTHS
    assert all(model.features[i].bias is not None for i in convs)
    assert all(isinstance(model.features[i + 1], nn.BatchNorm2d) for i in convs)


@pytest.mark.parametrize("size", [(256, 192), (128, 96)])
def test_heatmaps_are_a_quarter_of_the_input(model, size):
    h, w = size
    with torch.no_grad():
        out = model(torch.rand(1, 3, h, w))
    assert out.shape == (1, 17, h // 4, w // 4)
    assert model.output_size((w, h)) == (w // 4, h // 4)


def test_an_imagenet_state_dict_in_torchvision_layout_loads_as_pretrained(tmp_path):
    """A torchvision-layout file (features.* at the indices above, classifier.* ignored)
    initialises the backbone through ``pretrained=`` (the CLI's --pretrained PATH)."""
    source = create_model("sbl_vgg19_bn", num_joints=17, seed=11)
    state = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    state.update({"classifier.0.weight": torch.zeros(4096, 25088), "classifier.6.bias": torch.zeros(1000)})
    path = tmp_path / "vgg19_bn-imagenet.pth"
    torch.save(state, path)
    model = create_model("sbl_vgg19_bn", num_joints=5, pretrained=str(path))
    assert torch.equal(model.features[49].weight, source.features[49].weight)
    assert torch.equal(model.features[1].running_var, source.features[1].running_var)
    # the head keeps its own initialisation (not in the file)
    assert model.final_layer.out_channels == 5
    with pytest.raises(ValueError, match="not an ImageNet backbone"):
        torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
        create_model("sbl_vgg19_bn", pretrained=str(tmp_path / "partial.pth"))


def test_head_options_and_checkpoint_round_trip(tmp_path):
    from robustpose.models import load_model
    small = create_model("sbl_vgg19_bn", num_joints=3, extra={"NUM_DECONV_FILTERS": [64, 64, 64]})
    assert small.final_layer.in_channels == 64
    path = save_checkpoint(small, tmp_path / "vgg.pt")
    again = load_model(path).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(x), small.eval()(x))
    with pytest.raises(ValueError, match="unknown MODEL.EXTRA key"):
        create_model("sbl_vgg19_bn", extra={"NUM_LAYERS": 19})
