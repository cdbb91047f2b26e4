"""The interface every robustpose pose model implements.

A :class:`PoseModel` takes person crops as ``float32`` tensors ``N x 3 x H x W`` holding RGB
values in ``[0, 1]`` (never normalised) and normalises them inside with the ImageNet mean and
standard deviation, so attacks and augmentations always work in pixel space. The mean/std are
*non-persistent* buffers: they move with ``.to()``/``.half()`` but never appear in
``state_dict()``, so official checkpoints load key for key.

Outputs:

- heatmap models (``output_kind == 'heatmaps'``): ``N x K x H/4 x W/4`` (``output_stride`` 4);
- regression models (``output_kind == 'coords'``): ``N x K x 2`` (x, y) — see ``coord_units``.

``forward_all`` returns every intermediate prediction (one per hourglass stack; a single-item
list for one-shot models), last item = ``forward``'s output, for intermediate supervision and
attacks on all stacks.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PoseModel(nn.Module):
    """Base class: input normalisation + the ``forward`` / ``forward_all`` contract.

    Subclasses implement :meth:`forward_normalized_all` (input already normalised) and set
    ``backbone_names`` (top-level child modules that ImageNet weights initialise).
    """

    output_kind: str = "heatmaps"
    output_stride: int = 4
    backbone_names: tuple[str, ...] = ()

    def __init__(self, num_joints: int, mean: tuple[float, float, float] = IMAGENET_MEAN,
                 std: tuple[float, float, float] = IMAGENET_STD) -> None:
        super().__init__()
        if int(num_joints) < 1:
            raise ValueError(f"num_joints must be >= 1, got {num_joints}")
        self.num_joints = int(num_joints)
        self.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("input_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        # Filled in by create_model: registry name and the merged architecture config.
        self.model_name: str | None = None
        self.model_config: dict[str, Any] = {}
        # An optional parameter-free layer on every output (the RCC layer, set by
        # robustpose.models.rcc.with_rcc); None = the architecture's own outputs.
        self.output_transform: nn.Module | None = None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``[0, 1]`` RGB ``N x 3 x H x W`` -> ImageNet-normalised tensor of the same shape."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an N x 3 x H x W RGB batch, got shape {tuple(x.shape)}")
        return (x - self.input_mean.to(x.dtype)) / self.input_std.to(x.dtype)

    def forward_normalized_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All predictions for an already-normalised batch (the network body)."""
        raise NotImplementedError

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Final prediction for an already-normalised batch (bypasses ``normalize``)."""
        out = self.forward_normalized_all(x)[-1]
        return out if self.output_transform is None else self.output_transform(out)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All predictions (hourglass stacks, in order) for a ``[0, 1]`` RGB batch
        (each through ``output_transform`` when one is set)."""
        outs = self.forward_normalized_all(self.normalize(x))
        if self.output_transform is None:
            return outs
        return [self.output_transform(out) for out in outs]

    def forward(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``[0, 1]`` RGB ``N x 3 x H x W`` -> heatmaps ``N x K x H/4 x W/4`` or coords ``N x K x 2``.

        ``normalize=False`` feeds ``x`` to the body unchanged (for inputs normalised elsewhere,
        e.g. the official fixtures).
        """
        if normalize:
            return self.forward_all(x)[-1]
        return self.forward_normalized(x)

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """Heatmap ``(width, height)`` for an input ``(width, height)`` (heatmap models)."""
        return (input_size[0] // self.output_stride, input_size[1] // self.output_stride)
