"""VGG19 with BatchNorm (Simonyan & Zisserman 2015) + the SimpleBaseline upsampling head.

The trunk is torchvision's ``vgg19_bn().features`` module for module: configuration 'E'
(2 x 64, 2 x 128, 4 x 256, 4 x 512, 4 x 512 3x3 convolutions with bias, each followed by
BatchNorm and ReLU; a 2x2 max-pool closing each of the five blocks), held as
``self.features`` so its ``nn.Sequential`` indices and therefore its state-dict keys
(``features.0.weight`` ... ``features.49.bias``) are torchvision's: an ImageNet
``vgg19_bn`` state dict given by the user (``--pretrained PATH`` / ``model.pretrained``)
loads into it, its ``classifier.*`` keys ignored. Stride 32, 512 channels out; three
stride-2 (256, 4x4) deconvolutions and a 1x1 classifier bring the heatmaps to 1/4 of the
input, as SimpleBaseline's head does on ResNet (the stable-heatmap paper's "VGG19-bn with
an upsampling head").
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .base import PoseModel
from .extra import merge_extra
from .layers import add_deconv_head
from .registry import coco_cfg, register_model

#: torchvision's configuration 'E' (VGG19): conv widths, 'M' = 2x2 max-pool
VGG19_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                    512, 512, 512, 512, "M", 512, 512, 512, 512, "M")

VGG_HEAD_PRESET: dict[str, Any] = {"NUM_DECONV_LAYERS": 3, "NUM_DECONV_FILTERS": [256, 256, 256],
                                   "NUM_DECONV_KERNELS": [4, 4, 4], "DECONV_WITH_BIAS": False,
                                   "FINAL_CONV_KERNEL": 1}


def make_vgg_features(cfg: Sequence[int | str] = VGG19_CFG, batch_norm: bool = True) -> nn.Sequential:
    """torchvision's ``vgg.make_layers``: conv3x3(pad 1, bias) [-> BN] -> ReLU per width,
    MaxPool2d(2, 2) per 'M'. N x 3 x H x W -> N x 512 x H/32 x W/32."""
    layers: list[nn.Module] = []
    channels = 3
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(channels, int(item), kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(item)))
        layers.append(nn.ReLU(inplace=True))
        channels = int(item)
    return nn.Sequential(*layers)


def _init_features(features: nn.Module) -> None:
    """torchvision's VGG init: kaiming-normal (fan_out, relu) convs, zero biases, BN 1 / 0."""
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SimpleBaselineVGG(PoseModel):
    """VGG19-bn trunk (``features``) + ``deconv_layers`` + ``final_layer``.

    ``extra``: the head's ``NUM_DECONV_*``, ``DECONV_WITH_BIAS``, ``FINAL_CONV_KERNEL``
    (SimpleBaseline's ``MODEL.EXTRA`` keys). Input N x 3 x H x W in [0, 1] (H, W multiples
    of 32) -> N x K x H/4 x W/4 heatmaps with the default three deconvolutions.
    """

    backbone_names = ("features",)

    def __init__(self, num_joints: int = 17, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(num_joints)
        cfg = merge_extra(VGG_HEAD_PRESET, extra, "sbl_vgg19_bn")
        if int(cfg["NUM_DECONV_LAYERS"]) != len(cfg["NUM_DECONV_FILTERS"]):
            raise ValueError(f"sbl_vgg19_bn: NUM_DECONV_LAYERS={cfg['NUM_DECONV_LAYERS']} but "
                             f"{len(cfg['NUM_DECONV_FILTERS'])} NUM_DECONV_FILTERS")
        self.config = cfg
        self.features = make_vgg_features(VGG19_CFG, batch_norm=True)
        _init_features(self.features)
        channels = 512
        add_deconv_head(self, channels, cfg, num_joints)

    def forward_normalized_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.final_layer(self.deconv_layers(self.features(x)))]


@register_model("sbl_vgg19_bn", default_cfg=coco_cfg("SimpleBaseline head on VGG19-BN: COCO 256x192"))
def sbl_vgg19_bn(num_joints: int = 17, extra: Mapping[str, Any] | None = None) -> SimpleBaselineVGG:
    """VGG19-bn (torchvision ``features`` layout) + 3 x (256, 4x4) deconvolutions + 1x1 classifier."""
    return SimpleBaselineVGG(num_joints, extra)
