"""HRNet (Sun et al. 2019) for top-down pose, key for key like the official ``pose_hrnet.py``.

Stem: two stride-2 3x3 convs (``conv1``/``bn1``, ``conv2``/``bn2``), ``layer1`` = 4
Bottlenecks (256 channels). Then ``transition1``, ``stage2``, ``transition2``, ``stage3``,
``transition3``, ``stage4``; each stage is a Sequential of ``HighResolutionModule``s
(``branches``, ``fuse_layers``). The last module of stage 4 outputs only the highest
resolution branch (as officially), and ``final_layer`` maps it to K heatmaps at 1/4 input.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .base import PoseModel
from .extra import merge_extra
from .layers import BLOCKS, Bottleneck, make_final_layer, make_res_layer
from .registry import coco_cfg, register_model


def _stage(channels: Sequence[int], modules: int) -> dict[str, Any]:
    n = len(channels)
    return {"NUM_MODULES": modules, "NUM_BRANCHES": n, "BLOCK": "BASIC", "NUM_BLOCKS": [4] * n,
            "NUM_CHANNELS": list(channels), "FUSE_METHOD": "SUM"}


def hrnet_preset(width: int) -> dict[str, Any]:
    """The official MODEL.EXTRA of HRNet-W``width`` (W32, W48 configs of the release)."""
    w = int(width)
    return {"FINAL_CONV_KERNEL": 1,
            "STAGE2": _stage([w, 2 * w], 1),
            "STAGE3": _stage([w, 2 * w, 4 * w], 4),
            "STAGE4": _stage([w, 2 * w, 4 * w, 8 * w], 3)}


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                               nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of residual blocks followed by multi-resolution fusion (sum)."""

    def __init__(self, block: type[nn.Module], num_blocks: Sequence[int], in_channels: Sequence[int],
                 num_channels: Sequence[int], multi_scale_output: bool = True) -> None:
        super().__init__()
        n = len(num_channels)
        if not (len(num_blocks) == len(in_channels) == n):
            raise ValueError(f"HRNet stage: {n} branches but NUM_BLOCKS {list(num_blocks)} and "
                             f"inputs {list(in_channels)}")
        self.num_branches = n
        self.branches = nn.ModuleList()
        self.out_channels: list[int] = []
        for i in range(n):
            branch, out = make_res_layer(block, in_channels[i], num_channels[i], num_blocks[i])
            self.branches.append(branch)
            self.out_channels.append(out)
        self.relu = nn.ReLU(inplace=True)
        self.fuse_layers = self._make_fuse_layers(multi_scale_output) if n > 1 else None

    def _make_fuse_layers(self, multi_scale_output: bool) -> nn.ModuleList:
        ch = self.out_channels
        fuse = nn.ModuleList()
        for i in range(self.num_branches if multi_scale_output else 1):
            row = nn.ModuleList()
            for j in range(self.num_branches):
                if j > i:  # lower resolution -> 1x1 conv, BN, nearest upsampling
                    row.append(nn.Sequential(nn.Conv2d(ch[j], ch[i], 1, 1, 0, bias=False), nn.BatchNorm2d(ch[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:  # higher resolution -> (i - j) stride-2 3x3 convs; ReLU on all but the last
                    steps = [_conv_bn(ch[j], ch[j], 3, 2, relu=True) for _ in range(i - j - 1)]
                    steps.append(_conv_bn(ch[j], ch[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            fuse.append(row)
        return fuse

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(self.relu(y))
        return out


class PoseHighResolutionNet(PoseModel):
    """HRNet built from the official ``MODEL.EXTRA`` block (``STAGE2..4``, ``FINAL_CONV_KERNEL``)."""

    backbone_names = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2",
                      "transition2", "stage3", "transition3", "stage4")

    def __init__(self, num_joints: int = 17, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(num_joints)
        cfg = merge_extra(hrnet_preset(32), extra, "hrnet")
        self.config = cfg
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1, channels = make_res_layer(Bottleneck, 64, 64, 4)
        previous = [channels]
        for s in (2, 3, 4):
            stage_cfg = cfg[f"STAGE{s}"]
            self._check_stage(s, stage_cfg)
            block = BLOCKS[str(stage_cfg["BLOCK"]).upper()]
            widths = [int(c) * block.expansion for c in stage_cfg["NUM_CHANNELS"]]
            setattr(self, f"transition{s - 1}", self._make_transition(previous, widths))
            stage, previous = self._make_stage(stage_cfg, block, widths, multi_scale_output=(s != 4))
            setattr(self, f"stage{s}", stage)
        self.final_layer = make_final_layer(previous[0], num_joints, int(cfg["FINAL_CONV_KERNEL"]))
        self._init_weights()

    @staticmethod
    def _check_stage(s: int, stage_cfg: Mapping[str, Any]) -> None:
        n = int(stage_cfg["NUM_BRANCHES"])
        if len(stage_cfg["NUM_CHANNELS"]) != n or len(stage_cfg["NUM_BLOCKS"]) != n:
            raise ValueError(f"hrnet: STAGE{s} has NUM_BRANCHES={n} but NUM_CHANNELS "
                             f"{list(stage_cfg['NUM_CHANNELS'])} / NUM_BLOCKS {list(stage_cfg['NUM_BLOCKS'])}")
        if str(stage_cfg["BLOCK"]).upper() not in BLOCKS:
            raise ValueError(f"hrnet: STAGE{s}.BLOCK must be BASIC or BOTTLENECK, got {stage_cfg['BLOCK']!r}")
        if str(stage_cfg["FUSE_METHOD"]).upper() != "SUM":
            raise ValueError(f"hrnet: STAGE{s}.FUSE_METHOD must be SUM, got {stage_cfg['FUSE_METHOD']!r}")

    @staticmethod
    def _make_transition(previous: Sequence[int], current: Sequence[int]) -> nn.ModuleList:
        """Existing branches: 3x3 conv if the width changes, else identity (None).
        New branches: stride-2 3x3 convs from the lowest-resolution existing branch."""
        layers = nn.ModuleList()
        for i, width in enumerate(current):
            if i < len(previous):
                layers.append(_conv_bn(previous[i], width, 3, 1, relu=True) if width != previous[i] else None)
            else:
                steps = []
                for k in range(i + 1 - len(previous)):
                    cin = previous[-1]
                    cout = width if k == i - len(previous) else cin
                    steps.append(_conv_bn(cin, cout, 3, 2, relu=True))
                layers.append(nn.Sequential(*steps))
        return layers

    @staticmethod
    def _make_stage(stage_cfg: Mapping[str, Any], block: type[nn.Module], widths: list[int],
                    multi_scale_output: bool) -> tuple[nn.Sequential, list[int]]:
        modules = []
        in_channels = list(widths)
        count = int(stage_cfg["NUM_MODULES"])
        for m in range(count):
            keep_all = multi_scale_output or m != count - 1
            module = HighResolutionModule(block, [int(b) for b in stage_cfg["NUM_BLOCKS"]], in_channels,
                                          [int(c) for c in stage_cfg["NUM_CHANNELS"]], keep_all)
            modules.append(module)
            in_channels = module.out_channels
        return nn.Sequential(*modules), in_channels

    def _init_weights(self) -> None:
        """Official init: conv / deconv weights N(0, 0.001), biases 0, BN weight 1 bias 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    @staticmethod
    def _transition(layers: nn.ModuleList, ys: list[torch.Tensor]) -> list[torch.Tensor]:
        # Existing branch i reads its own output; new branches read the lowest resolution one.
        return [ys[i] if layer is None else layer(ys[min(i, len(ys) - 1)]) for i, layer in enumerate(layers)]

    def forward_normalized_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"HRNet needs input height and width divisible by 32, got {tuple(x.shape[-2:])}")
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        ys = self.stage2(self._transition(self.transition1, ys))
        ys = self.stage3(self._transition(self.transition2, ys))
        ys = self.stage4(self._transition(self.transition3, ys))
        return [self.final_layer(ys[0])]


def _hrnet(width: int | None):
    def build(num_joints: int = 17, extra: Mapping[str, Any] | None = None) -> PoseHighResolutionNet:
        name = f"hrnet_w{width}" if width else "hrnet"
        return PoseHighResolutionNet(num_joints, merge_extra(hrnet_preset(width or 32), extra, name))
    build.__doc__ = (f"HRNet-W{width} (official preset, overridable by extra)." if width else
                     "HRNet family: the W32 preset unless extra (official MODEL.EXTRA) says otherwise.")
    return build


_HRNET_CFG = coco_cfg("HRNet paper / official w32_256x192 config: COCO 256x192")
register_model("hrnet", _hrnet(None), default_cfg=_HRNET_CFG)
register_model("hrnet_w32", _hrnet(32), default_cfg=_HRNET_CFG)
register_model("hrnet_w48", _hrnet(48), default_cfg=_HRNET_CFG)
