"""Building blocks shared by the architectures: ResNet blocks and the SimpleBaseline head.

Attribute names (``conv1``, ``bn1``, ``downsample.0``, ``deconv_layers.<i>``, ``final_layer``)
follow the official HRNet release (``pose_resnet.py`` / ``pose_hrnet.py``) so state dicts line
up key for key. BatchNorm uses PyTorch's defaults (momentum 0.1, eps 1e-5), as the official
code does (``BN_MOMENTUM = 0.1``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34, HRNet branches)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, as in the official code) -> 1x1 x4 with a residual connection."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


BLOCKS: dict[str, type[nn.Module]] = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def make_res_layer(block: type[nn.Module], inplanes: int, planes: int, blocks: int,
                   stride: int = 1) -> tuple[nn.Sequential, int]:
    """A stage of ``blocks`` residual blocks; the first one downsamples (1x1 conv + BN) when
    the stride or channel count changes. Returns the stage and its output channels."""
    out = planes * block.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(nn.Conv2d(inplanes, out, kernel_size=1, stride=stride, bias=False),
                                   nn.BatchNorm2d(out))
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(out, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers), out


def _deconv_padding(kernel: int) -> tuple[int, int]:
    """(padding, output_padding) that make a stride-2 transposed conv exactly double the size."""
    if kernel == 4:
        return 1, 0
    if kernel == 3:
        return 1, 1
    if kernel == 2:
        return 0, 0
    raise ValueError(f"deconvolution kernel must be 2, 3 or 4, got {kernel}")


def make_deconv_layers(in_channels: int, filters: Sequence[int], kernels: Sequence[int],
                       with_bias: bool = False) -> nn.Sequential:
    """SimpleBaseline upsampling: per layer ConvTranspose2d(stride 2) -> BN -> ReLU.

    Indices inside the Sequential (0 deconv, 1 BN, 2 ReLU, 3 deconv, ...) match the official
    ``deconv_layers.<i>`` keys. Each layer doubles H and W.
    """
    if len(filters) != len(kernels):
        raise ValueError(f"NUM_DECONV_FILTERS {list(filters)} and NUM_DECONV_KERNELS "
                         f"{list(kernels)} differ in length")
    layers: list[nn.Module] = []
    for planes, kernel in zip(filters, kernels):
        padding, output_padding = _deconv_padding(int(kernel))
        layers += [nn.ConvTranspose2d(in_channels, int(planes), int(kernel), stride=2, padding=padding,
                                      output_padding=output_padding, bias=with_bias),
                   nn.BatchNorm2d(int(planes)), nn.ReLU(inplace=True)]
        in_channels = int(planes)
    return nn.Sequential(*layers)


def make_final_layer(in_channels: int, num_joints: int, kernel: int = 1) -> nn.Conv2d:
    """The heatmap classifier: ``kernel`` x ``kernel`` conv to K channels (padding 1 if 3x3)."""
    if kernel not in (1, 3):
        raise ValueError(f"FINAL_CONV_KERNEL must be 1 or 3, got {kernel}")
    return nn.Conv2d(in_channels, num_joints, kernel_size=kernel, stride=1, padding=1 if kernel == 3 else 0)


def init_head(module: nn.Module, std: float = 0.001) -> None:
    """Official head init: deconv/conv weights N(0, std), biases 0, BN weight 1 bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def add_deconv_head(model: nn.Module, in_channels: int, cfg: dict, num_joints: int) -> None:
    """The SimpleBaseline head on a stride-32 trunk of ``in_channels``, from a merged
    ``MODEL.EXTRA`` block: ``model.deconv_layers``, ``model.final_layer`` (the official
    keys), ``model.output_stride``, initialised as the official code does (modules built,
    then re-initialised in that order, so a seeded model draws the same numbers)."""
    filters = cfg["NUM_DECONV_FILTERS"]
    model.deconv_layers = make_deconv_layers(in_channels, filters, cfg["NUM_DECONV_KERNELS"],
                                             bool(cfg["DECONV_WITH_BIAS"]))
    head_in = int(filters[-1]) if filters else in_channels
    model.final_layer = make_final_layer(head_in, num_joints, int(cfg["FINAL_CONV_KERNEL"]))
    model.output_stride = 32 // (2 ** len(filters))
    init_head(model.deconv_layers)
    init_head(model.final_layer)
