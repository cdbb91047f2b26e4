"""Stacked hourglass network (Newell et al. 2016) with intermediate supervision.

Stem: 7x7 stride-2 conv (64) -> residual (128) -> 2x2 max pool -> residual (128) ->
residual (256), so features are at 1/4 of the input. Each stack: a depth-4 hourglass,
a residual, a 1x1 conv-BN-ReLU and a 1x1 score conv to K heatmaps; between stacks the
features and the re-projected scores are added back (``fc_`` / ``score_``). ``forward_all``
returns the heatmaps of every stack (for intermediate supervision and the attacks' "ALL"
variant); ``forward`` returns the last one. Inputs should have H and W divisible by 64
(depth-4 pooling on the 1/4 features); 256 x 256 is the paper's size.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import PoseModel
from .extra import merge_extra
from .registry import register_model, square_cfg

HOURGLASS_PRESET: dict[str, Any] = {"NUM_STACKS": 2, "NUM_BLOCKS": 1, "NUM_FEATS": 128, "DEPTH": 4}


class PreActBottleneck(nn.Module):
    """Pre-activation residual: BN-ReLU-1x1 -> BN-ReLU-3x3 -> BN-ReLU-1x1 (x2 channels)."""

    expansion = 2

    def __init__(self, cin: int, planes: int) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=True)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Conv2d(cin, cout, 1, bias=True) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + residual


def _residuals(cin: int, planes: int, count: int) -> nn.Sequential:
    blocks = [PreActBottleneck(cin, planes)]
    blocks += [PreActBottleneck(planes * 2, planes) for _ in range(count - 1)]
    return nn.Sequential(*blocks)


class Hourglass(nn.Module):
    """Recursive hourglass of ``depth`` levels on ``2 * planes`` channels."""

    def __init__(self, planes: int, depth: int, num_blocks: int) -> None:
        super().__init__()
        ch = planes * 2
        self.up1 = _residuals(ch, planes, num_blocks)
        self.low1 = _residuals(ch, planes, num_blocks)
        self.low2 = Hourglass(planes, depth - 1, num_blocks) if depth > 1 else _residuals(ch, planes, num_blocks)
        self.low3 = _residuals(ch, planes, num_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2, stride=2))))
        return self.up1(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


class StackedHourglass(PoseModel):
    """``NUM_STACKS`` hourglasses; one heatmap prediction (N x K x H/4 x W/4) per stack."""

    backbone_names = ()

    def __init__(self, num_joints: int = 17, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(num_joints)
        cfg = merge_extra(HOURGLASS_PRESET, extra, "hourglass")
        stacks, blocks, feats = int(cfg["NUM_STACKS"]), int(cfg["NUM_BLOCKS"]), int(cfg["NUM_FEATS"])
        if stacks < 1:
            raise ValueError(f"hourglass: NUM_STACKS must be >= 1, got {stacks}")
        self.config = cfg
        self.num_stacks = stacks
        ch = feats * 2
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _residuals(64, 64, 1)          # 64 -> 128
        self.layer2 = _residuals(128, 64, 1)         # 128 -> 128
        self.layer3 = _residuals(128, feats, 1)      # 128 -> 2 * feats
        self.hourglasses = nn.ModuleList(Hourglass(feats, int(cfg["DEPTH"]), blocks) for _ in range(stacks))
        self.res = nn.ModuleList(_residuals(ch, feats, blocks) for _ in range(stacks))
        self.fc = nn.ModuleList(nn.Sequential(nn.Conv2d(ch, ch, 1), nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
                                for _ in range(stacks))
        self.score = nn.ModuleList(nn.Conv2d(ch, num_joints, 1) for _ in range(stacks))
        self.fc_ = nn.ModuleList(nn.Conv2d(ch, ch, 1) for _ in range(stacks - 1))
        self.score_ = nn.ModuleList(nn.Conv2d(num_joints, ch, 1) for _ in range(stacks - 1))

    def forward_normalized_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.layer1(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(F.max_pool2d(x, 2, stride=2)))
        outputs = []
        for i in range(self.num_stacks):
            y = self.fc[i](self.res[i](self.hourglasses[i](x)))
            score = self.score[i](y)
            outputs.append(score)
            if i < self.num_stacks - 1:
                x = x + self.fc_[i](y) + self.score_[i](score)
        return outputs


def _hourglass(stacks: int | None):
    def build(num_joints: int = 17, extra: Mapping[str, Any] | None = None,
              num_stacks: int | None = None) -> StackedHourglass:
        merged = {str(k).upper(): v for k, v in (extra or {}).items()}
        if stacks is not None:
            merged.setdefault("NUM_STACKS", stacks)
        if num_stacks is not None:
            merged["NUM_STACKS"] = num_stacks
        return StackedHourglass(num_joints, merged)
    build.__doc__ = (f"{stacks}-stack hourglass (128 features, depth 4, 1 residual per level)." if stacks else
                     "Stacked hourglass; num_stacks (default 2) or extra NUM_STACKS picks the depth.")
    return build


_HOURGLASS_CFG = square_cfg("Stacked hourglass paper (Newell et al. 2016): MPII 256x256")
register_model("hourglass", _hourglass(None), default_cfg=_HOURGLASS_CFG)
for _stacks in (1, 2, 4, 8):
    register_model(f"hourglass_{_stacks}", _hourglass(_stacks), default_cfg=_HOURGLASS_CFG)
