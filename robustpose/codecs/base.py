"""The codec protocol (mmpose-style) and its registry: keypoints -> training targets -> keypoints.

A codec is one object per target type. The same instance makes the training targets
(:meth:`Codec.encode`, called by :class:`~robustpose.data.TopDownDataset`), aligns the
output of a mirrored crop for the flip test (:meth:`Codec.flip_back`) and decodes model
outputs back to keypoints (:meth:`Codec.decode`) for validation, ``robustpose test`` and
the benchmark adapters.

Frames, once: ``encode`` takes keypoints in **input-crop pixels**; ``decode`` returns
coordinates in the codec's **output frame**, the pixel grid of the model output
(heatmap pixels for heatmap codecs, the input crop itself for coordinate regression);
:meth:`Codec.frame` gives that grid's (width, height) for a batch of outputs, and
:func:`~robustpose.codecs.heatmaps_to_image_coords` (``to_image``) back-projects from it
to image pixels — the single back-projection every consumer uses.

New codecs register with :func:`register_codec` and are built by name or config block
with :func:`build_codec`::

    >>> codec = build_codec({"type": "hrnet", "sigma": 2.0}, input_size=(192, 256),
    ...                     heatmap_size=(48, 64))
    >>> sorted(codec.encode(np.zeros((17, 3))))
    ['target', 'target_weight']
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from . import registry as _registry
from .registry import CODECS, codec_decoding, codec_names, config_codec_block, register_codec
from .setting import InferenceSetting

__all__ = ["Codec", "CODECS", "register_codec", "build_codec", "codec_names", "config_codec_block",
           "codec_decoding"]


class Codec:
    """Base class of codecs (see the module docstring for the frames).

    Subclasses set ``name`` (the registry key), ``output_kind`` (the model output they
    decode: ``'heatmaps'`` or ``'coords'``), ``input_size`` (w, h) and implement
    :meth:`encode`, :meth:`decode`, :meth:`flip_back`, :meth:`frame` and :meth:`config`.
    """

    name: ClassVar[str] = "base"
    output_kind: ClassVar[str] = "heatmaps"
    input_size: tuple[int, int]

    def encode(self, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        """Targets of one person: ``keypoints`` (K, 3) x, y in input-crop pixels and a
        visibility (> 0 = labelled) -> at least ``target`` and ``target_weight`` (K,)
        float32 (1 = supervise, 0 = not), plus codec-specific keys; all numpy arrays."""
        raise NotImplementedError

    def decode(self, outputs: Any,
               setting: InferenceSetting | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Model outputs of N crops -> ``coords`` (N, K, 2) float in the output frame and
        ``scores`` (N, K). ``setting`` supplies the decoding choices (``refine``,
        ``dark_kernel``, ``boundary``); ``None`` = the codec's own defaults."""
        raise NotImplementedError

    def flip_back(self, outputs: Any, flip_pairs: Sequence[tuple[int, int]],
                  setting: InferenceSetting | None = None) -> Any:
        """Outputs of the horizontally mirrored crops, aligned with the unmirrored ones
        (mirror, swap each left/right pair; heatmaps also get ``setting.flip_shift``)."""
        raise NotImplementedError

    def merge_flip(self, outputs: Any, flipped: Any, flip_pairs: Sequence[tuple[int, int]],
                   setting: InferenceSetting | None = None) -> Any:
        """The flip test: the mean of ``outputs`` and the flipped-back ``flipped``."""
        return (outputs + self.flip_back(flipped, flip_pairs, setting)) * 0.5

    def frame(self, outputs: Any) -> tuple[int, int]:
        """(width, height) of the pixel grid :meth:`decode` returns coordinates in."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """A plain-typed block that :func:`build_codec` turns back into this codec."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


def build_codec(config: Mapping[str, Any] | str, **kwargs: Any) -> Codec:
    """A codec from a name (``'hrnet'``) or a block (``{type: hrnet, sigma: 2.0}``).

    ``kwargs`` are the experiment's context (``input_size``, ``heatmap_size``, ``sigma``,
    ...): each is passed only when the codec takes it and the block leaves it out. Keys of
    the block are the user's and must all fit. One-line ``ValueError`` for a missing or
    unknown ``type`` and for block keys the codec does not take.
    """
    block = {"type": config} if isinstance(config, str) else dict(config or {})
    name = block.pop("type", None)
    if not name:
        raise ValueError(f"codec config needs a 'type' (one of {', '.join(codec_names())}), "
                         f"got {dict(config or {})!r}")
    factory = _registry.CODECS.get(name)  # one-line error naming the choices and the nearest
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    context = {k: v for k, v in kwargs.items() if takes_any or k in params}
    try:
        return factory(**{**context, **block})
    except TypeError as exc:
        raise ValueError(f"codec {name!r}: {exc}") from None
