"""What the adapters share: the setting view, the output types the codecs decode, and the
one prediction path of an adapter without a torch model of its own.

Its own module so that :mod:`.adapters` (registry / callable models) and the spec-driven
adapters (:mod:`.onnx_adapter`, :mod:`.tflite_adapter`) both import it without a circle.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from robustpose.codecs import InferenceSetting, decode_outputs

__all__ = ["_SettingView", "_as_numpy", "_setting", "_for_codec", "_predict_from_outputs"]


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _setting(inference: InferenceSetting | Sequence[int]) -> InferenceSetting:
    if isinstance(inference, InferenceSetting):
        return inference
    return InferenceSetting(input_size=tuple(int(v) for v in inference))


def _for_codec(outputs: Any, kind: str) -> Any:
    """Raw outputs in the type the codec decodes: float32 tensors for heatmaps (the flip
    average in float32, as for torch models), float64 arrays for coordinates."""
    if kind == "heatmaps":
        return torch.as_tensor(_as_numpy(outputs), dtype=torch.float32)
    return np.asarray(_as_numpy(outputs), dtype=np.float64)


def _predict_from_outputs(adapter: Any, crops: torch.Tensor, metas: dict, spec: Any,
                          flip_test: bool) -> np.ndarray:
    """Keypoints (N, K, 3) image px of an adapter without a torch model of its own: its
    :meth:`outputs` on the crops (and the mirrored crops) through the one decode path."""
    kind, out, codec = adapter.outputs(crops)
    flipped = adapter.outputs(torch.flip(crops, dims=[3]))[1] if flip_test else None
    return decode_outputs(codec, out, flipped, metas, spec, adapter.inference).astype(np.float32)


class _SettingView:
    """``input_size``, ``padding``, ``default_flip_test``: views of ``self.inference``."""

    inference: InferenceSetting

    @property
    def input_size(self) -> tuple[int, int]:
        return self.inference.input_size

    @property
    def padding(self) -> float:
        return self.inference.padding

    @property
    def default_flip_test(self) -> bool:
        return self.inference.flip_test
