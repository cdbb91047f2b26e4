"""DeepPose-style direct regression on the light backbones (ShuffleNetV2, MobileNetV2).

``deeppose_shufflenetv2`` is the regression counterpart of the bundled SynthPose heatmap
model (``shufflenetv2``: the same :class:`~robustpose.models.lightweight.ShuffleNetV2Backbone`
under the same ``backbone.*`` keys), so the two differ only in the head: here global
average pooling + one linear layer to K x 2 coordinates instead of the deconvolution head.
``model.pretrained=<bundled .pt>`` (``load_pretrained_backbone``) therefore loads exactly the
bundled model's backbone and leaves the coordinate head at its initialisation.

Coordinates follow :class:`~robustpose.models.resnet.DeepPoseResNet`: the linear layer
predicts ``u = x / W``, ``v = y / H`` (0 = left/top edge, 1 = right/bottom edge of the
crop), initialised at the crop centre; ``coord_units='pixels'`` (default) returns
``(u * W, v * H)`` in input-crop pixels, ``'normalized'`` returns ``(u, v)`` -- the two
units of the ``regression`` codec. State-dict layout: ``backbone.*``, ``coord_head.*``.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .base import PoseModel
from .extra import merge_extra
from .lightweight import MobileNetV2Backbone, ShuffleNetV2Backbone
from .registry import register_model
from .resnet import DEEPPOSE_CFG  # the one default_cfg of every DeepPose regression model

COORD_UNITS = ("pixels", "normalized")


class DeepPoseLight(PoseModel):
    """Stride-32 backbone -> global average pool -> linear -> (N, K, 2) coordinates."""

    output_kind = "coords"
    backbone_names = ("backbone",)

    def __init__(self, backbone: nn.Module, num_joints: int = 17,
                 extra: Mapping[str, Any] | None = None, coord_units: str = "pixels",
                 name: str = "deeppose_light") -> None:
        super().__init__(num_joints)
        if coord_units not in COORD_UNITS:
            raise ValueError(f"coord_units must be 'pixels' or 'normalized', got {coord_units!r}")
        self.config = merge_extra({}, extra, name)   # no architecture options: refuse typos
        self.coord_units = coord_units
        self.backbone = backbone
        self.coord_head = nn.Linear(backbone.out_channels, num_joints * 2)
        # as DeepPoseResNet: near-zero weights, every joint starts at the crop centre
        nn.init.normal_(self.coord_head.weight, std=0.001)
        nn.init.constant_(self.coord_head.bias, 0.5)

    def forward_normalized_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.backbone(x).mean(dim=(2, 3))                      # (N, C)
        coords = self.coord_head(feats).view(x.shape[0], self.num_joints, 2)
        if self.coord_units == "pixels":
            scale = torch.tensor([x.shape[3], x.shape[2]], dtype=coords.dtype, device=coords.device)
            coords = coords * scale                                    # (u, v) -> (x, y) px
        return [coords]


@register_model("deeppose_shufflenetv2", default_cfg=DEEPPOSE_CFG)
def deeppose_shufflenetv2(num_joints: int = 17, extra: Mapping[str, Any] | None = None,
                          coord_units: str = "pixels") -> DeepPoseLight:
    """DeepPose-style regression on ShuffleNetV2 1.0x (the bundled model's backbone)."""
    return DeepPoseLight(ShuffleNetV2Backbone(), num_joints, extra, coord_units,
                         "deeppose_shufflenetv2")


@register_model("deeppose_mobilenetv2", default_cfg=DEEPPOSE_CFG)
def deeppose_mobilenetv2(num_joints: int = 17, extra: Mapping[str, Any] | None = None,
                         coord_units: str = "pixels") -> DeepPoseLight:
    """DeepPose-style regression on MobileNetV2 1.0x."""
    return DeepPoseLight(MobileNetV2Backbone(), num_joints, extra, coord_units,
                         "deeppose_mobilenetv2")
