"""SimpleBaseline (Xiao et al. 2018) and DeepPose-style regression on a ResNet trunk.

The trunk's attributes (``conv1``, ``bn1``, ``layer1`` .. ``layer4``) sit at the top level of
the model, exactly as in the official ``pose_resnet.py``; the head is ``deconv_layers`` +
``final_layer``. Official and torchvision ImageNet ResNet state dicts therefore load directly.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .base import PoseModel
from .extra import merge_extra
from .layers import BasicBlock, Bottleneck, add_deconv_head, make_res_layer
from .registry import coco_cfg, register_model, square_cfg

RESNET_SPECS: dict[int, tuple[type[nn.Module], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}

SBL_PRESET: dict[str, Any] = {
    "NUM_LAYERS": 50,
    "DECONV_WITH_BIAS": False,
    "NUM_DECONV_LAYERS": 3,
    "NUM_DECONV_FILTERS": [256, 256, 256],
    "NUM_DECONV_KERNELS": [4, 4, 4],
    "FINAL_CONV_KERNEL": 1,
}

RESNET_TRUNK = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


def _add_resnet_trunk(model: nn.Module, depth: int) -> int:
    """Attach the ImageNet ResNet trunk (stride 32) to ``model``; return its output channels."""
    if depth not in RESNET_SPECS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_SPECS)}, got {depth}")
    block, counts = RESNET_SPECS[depth]
    model.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(64)
    model.relu = nn.ReLU(inplace=True)
    model.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    channels = 64
    for i, (planes, count) in enumerate(zip((64, 128, 256, 512), counts)):
        layer, channels = make_res_layer(block, channels, planes, count, stride=1 if i == 0 else 2)
        setattr(model, f"layer{i + 1}", layer)
    return channels


def _resnet_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


class SimpleBaselineResNet(PoseModel):
    """ResNet + ``NUM_DECONV_LAYERS`` stride-2 deconvolutions + 1x1 classifier.

    With the default 3 deconvolutions the heatmaps are 1/4 of the input (stride 32 / 8).
    ``extra`` is the official ``MODEL.EXTRA`` block (``NUM_LAYERS``, ``NUM_DECONV_*``,
    ``DECONV_WITH_BIAS``, ``FINAL_CONV_KERNEL``).
    """

    backbone_names = RESNET_TRUNK

    def __init__(self, num_joints: int = 17, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(num_joints)
        cfg = merge_extra(SBL_PRESET, extra, "sbl_resnet")
        if int(cfg["NUM_DECONV_LAYERS"]) != len(cfg["NUM_DECONV_FILTERS"]):
            raise ValueError(f"sbl_resnet: NUM_DECONV_LAYERS={cfg['NUM_DECONV_LAYERS']} but "
                             f"{len(cfg['NUM_DECONV_FILTERS'])} NUM_DECONV_FILTERS")
        self.config = cfg
        channels = _add_resnet_trunk(self, int(cfg["NUM_LAYERS"]))
        add_deconv_head(self, channels, cfg, num_joints)

    def forward_normalized_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.final_layer(self.deconv_layers(_resnet_features(self, x)))]


class DeepPoseResNet(PoseModel):
    """DeepPose-style direct regression: ResNet trunk -> global average pool -> linear -> K x 2.

    The linear layer predicts coordinates normalised to the input crop, ``u = x / W`` and
    ``v = y / H`` (0 = left/top edge, 1 = right/bottom edge), initialised at the crop centre.
    ``coord_units='pixels'`` (default) returns ``(u * W, v * H)`` in input pixels, comparable
    with heatmap peaks times the output stride; ``coord_units='normalized'`` returns ``(u, v)``.
    """

    output_kind = "coords"
    backbone_names = RESNET_TRUNK

    def __init__(self, num_joints: int = 17, extra: Mapping[str, Any] | None = None,
                 coord_units: str = "pixels") -> None:
        super().__init__(num_joints)
        if coord_units not in ("pixels", "normalized"):
            raise ValueError(f"coord_units must be 'pixels' or 'normalized', got {coord_units!r}")
        cfg = merge_extra({"NUM_LAYERS": 50}, extra, "deeppose_resnet")
        self.config = cfg
        self.coord_units = coord_units
        channels = _add_resnet_trunk(self, int(cfg["NUM_LAYERS"]))
        self.coord_head = nn.Linear(channels, num_joints * 2)
        nn.init.normal_(self.coord_head.weight, std=0.001)
        nn.init.constant_(self.coord_head.bias, 0.5)

    def forward_normalized_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = _resnet_features(self, x).mean(dim=(2, 3))
        coords = self.coord_head(feats).view(x.shape[0], self.num_joints, 2)
        if self.coord_units == "pixels":
            scale = torch.tensor([x.shape[3], x.shape[2]], dtype=coords.dtype, device=coords.device)
            coords = coords * scale
        return [coords]


def _sbl(depth: int):
    def build(num_joints: int = 17, extra: Mapping[str, Any] | None = None) -> SimpleBaselineResNet:
        merged = {"NUM_LAYERS": depth, **{str(k).upper(): v for k, v in (extra or {}).items()}}
        return SimpleBaselineResNet(num_joints, merged)
    build.__doc__ = f"SimpleBaseline ResNet-{depth}, 3 x (256, 4x4) deconvolutions, 1x1 classifier."
    return build


def _deeppose(depth: int):
    def build(num_joints: int = 17, extra: Mapping[str, Any] | None = None,
              coord_units: str = "pixels") -> DeepPoseResNet:
        merged = {"NUM_LAYERS": depth, **{str(k).upper(): v for k, v in (extra or {}).items()}}
        return DeepPoseResNet(num_joints, merged, coord_units)
    build.__doc__ = f"DeepPose-style regression on ResNet-{depth} (coordinates, see DeepPoseResNet)."
    return build


_SBL_CFG = coco_cfg("SimpleBaseline paper / official res50_256x192 config: COCO 256x192")
# DeepPose regresses coordinates; 256x256 crops as in the attack study's setting.
DEEPPOSE_CFG = square_cfg("DeepPose regression, attack study setting: 256x256", codec="regression")
for _depth in RESNET_SPECS:
    register_model(f"sbl_resnet{_depth}", _sbl(_depth), default_cfg=_SBL_CFG)
    register_model(f"deeppose_resnet{_depth}", _deeppose(_depth), default_cfg=DEEPPOSE_CFG)
register_model("sbl_resnet", _sbl(50), default_cfg=_SBL_CFG)
