"""Light backbones with the SimpleBaseline head: MobileNetV2 and ShuffleNetV2 (1.0x).

Both backbones have stride 32; three stride-2 (256, 4x4) deconvolutions bring the heatmaps to
1/4 of the input, as in mmpose's ``td-hm_mobilenetv2`` / ``td-hm_shufflenetv2`` configs.
State-dict layout: ``backbone.*``, ``deconv_layers.*``, ``final_layer.*``.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .base import PoseModel
from .extra import merge_extra
from .layers import add_deconv_head
from .registry import coco_cfg, register_model

HEAD_PRESET: dict[str, Any] = {"NUM_DECONV_LAYERS": 3, "NUM_DECONV_FILTERS": [256, 256, 256],
                               "NUM_DECONV_KERNELS": [4, 4, 4], "DECONV_WITH_BIAS": False,
                               "FINAL_CONV_KERNEL": 1}


def _conv_bn_act(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_act(cin, hidden, 1, act=nn.ReLU6))
        layers += [_conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   _conv_bn_act(hidden, cout, 1, act=None)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2Backbone(nn.Module):
    """MobileNetV2 (width 1.0) feature extractor: N x 3 x H x W -> N x 1280 x H/32 x W/32."""

    # (expansion t, channels c, repeats n, first stride s) from Sandler et al. 2018, Table 2.
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))
    out_channels = 1280

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_act(3, 32, 3, 2, act=nn.ReLU6)]
        cin = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(_conv_bn_act(cin, self.out_channels, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups (ShuffleNet)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit: channel split (stride 1) or two downsampling branches (stride 2)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride == 2:
            self.branch1 = nn.Sequential(_conv_bn_act(cin, cin, 3, 2, groups=cin, act=None),
                                         _conv_bn_act(cin, half, 1))
        branch_in = cin if stride == 2 else half
        self.branch2 = nn.Sequential(_conv_bn_act(branch_in, half, 1),
                                     _conv_bn_act(half, half, 3, stride, groups=half, act=None),
                                     _conv_bn_act(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2Backbone(nn.Module):
    """ShuffleNetV2 1.0x feature extractor: N x 3 x H x W -> N x 1024 x H/32 x W/32."""

    REPEATS = (4, 8, 4)
    CHANNELS = (24, 116, 232, 464, 1024)
    out_channels = 1024

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv_bn_act(3, self.CHANNELS[0], 3, 2)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = self.CHANNELS[0]
        for s, (repeats, cout) in enumerate(zip(self.REPEATS, self.CHANNELS[1:4])):
            units = [ShuffleUnit(cin, cout, 2)] + [ShuffleUnit(cout, cout, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{s + 2}", nn.Sequential(*units))
            cin = cout
        self.conv5 = _conv_bn_act(cin, self.CHANNELS[4], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.stage4(self.stage3(self.stage2(x))))


class DeconvHeadModel(PoseModel):
    """Any stride-32 backbone + the SimpleBaseline deconvolution head (``extra``: NUM_DECONV_*)."""

    backbone_names = ("backbone",)

    def __init__(self, backbone: nn.Module, num_joints: int = 17,
                 extra: Mapping[str, Any] | None = None, name: str = "deconv_head") -> None:
        super().__init__(num_joints)
        cfg = merge_extra(HEAD_PRESET, extra, name)
        self.config = cfg
        self.backbone = backbone
        add_deconv_head(self, backbone.out_channels, cfg, num_joints)

    def forward_normalized_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.final_layer(self.deconv_layers(self.backbone(x)))]


@register_model("mobilenetv2", default_cfg=coco_cfg("mmpose mobilenetv2_coco_256x192 config"))
def mobilenetv2(num_joints: int = 17, extra: Mapping[str, Any] | None = None) -> DeconvHeadModel:
    """MobileNetV2 (1.0x) + 3 x (256, 4x4) deconvolutions + 1x1 classifier."""
    return DeconvHeadModel(MobileNetV2Backbone(), num_joints, extra, "mobilenetv2")


@register_model("shufflenetv2", default_cfg=coco_cfg("mmpose shufflenetv2_coco_256x192 config"))
def shufflenetv2(num_joints: int = 17, extra: Mapping[str, Any] | None = None) -> DeconvHeadModel:
    """ShuffleNetV2 (1.0x) + 3 x (256, 4x4) deconvolutions + 1x1 classifier."""
    return DeconvHeadModel(ShuffleNetV2Backbone(), num_joints, extra, "shufflenetv2")
