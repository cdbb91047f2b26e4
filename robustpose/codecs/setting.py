"""One frozen description of how a model is fed and decoded (timm's ``pretrained_cfg``).

Every consumer — training validation, ``robustpose test``, the benchmark adapters, the
bundled model, attacks — reads the same :class:`InferenceSetting` instead of copying the
keys by hand. It is stored as a plain dict (:meth:`InferenceSetting.to_dict`) in training
checkpoint meta and in the bundled model's meta, and read back with
:meth:`InferenceSetting.from_dict`, which also understands the older key names
(``shift`` for the flip shift, ``post_process`` for the refinement).

Names, once: ``flip_shift`` is HRNet's ``TEST.SHIFT_HEATMAP`` (the flipped-back heatmaps
move 1 px right before averaging); ``refine`` is HRNet's ``TEST.POST_PROCESS`` (the
sub-pixel step after the argmax: ``'quarter'``, ``'dark'`` or ``'none'``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .registry import codec_decoding, config_codec_block

__all__ = ["InferenceSetting", "REFINES", "BOUNDARIES"]

REFINES = ("quarter", "dark", "none")
BOUNDARIES = ("hrnet", "mmpose")


def _pair(value: Sequence[int] | None, what: str) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"InferenceSetting: {what} must be (width, height), got {value!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"InferenceSetting: {what} must be positive, got {value!r}")
    return w, h


def _first(*values: Any) -> Any:
    """The first value that is not None (a config key set to null means "the default")."""
    return next((v for v in values if v is not None), None)


@dataclass(frozen=True)
class InferenceSetting:
    """How crops are made and model outputs decoded (all sizes (width, height) in px).

    Attributes:
        input_size: crop size fed to the model.
        heatmap_size: output heatmap size (``None``: read from the model's output).
        padding: box enlargement before the crop (HRNet: 1.25).
        flip_test: average with the prediction on the mirrored crop.
        flip_shift: HRNet's 1-px shift of the flipped-back heatmaps (heatmap models only).
        refine: sub-pixel refinement of the argmax: 'quarter' (HRNet), 'dark', 'none'.
        dark_kernel: DARK's blur kernel (odd, heatmap px), used when ``refine='dark'``.
        boundary: the quarter-shift border rule, 'hrnet' or 'mmpose'.
    """

    input_size: tuple[int, int] = (192, 256)
    heatmap_size: tuple[int, int] | None = None
    padding: float = 1.25
    flip_test: bool = True
    flip_shift: bool = True
    refine: str = "quarter"
    dark_kernel: int = 11
    boundary: str = "hrnet"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", _pair(self.input_size, "input_size"))
        object.__setattr__(self, "heatmap_size", _pair(self.heatmap_size, "heatmap_size"))
        object.__setattr__(self, "padding", float(self.padding))
        object.__setattr__(self, "flip_test", bool(self.flip_test))
        object.__setattr__(self, "flip_shift", bool(self.flip_shift))
        object.__setattr__(self, "dark_kernel", int(self.dark_kernel))
        if self.refine not in REFINES:
            raise ValueError(f"InferenceSetting: refine must be one of {', '.join(REFINES)}, "
                             f"not {self.refine!r}")
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"InferenceSetting: boundary must be one of "
                             f"{', '.join(BOUNDARIES)}, not {self.boundary!r}")
        if self.dark_kernel < 1 or self.dark_kernel % 2 == 0:
            raise ValueError(f"InferenceSetting: dark_kernel must be odd and positive, "
                             f"not {self.dark_kernel}")
        if self.padding <= 0:
            raise ValueError(f"InferenceSetting: padding must be positive, not {self.padding}")

    @property
    def aspect_ratio(self) -> float:
        """Crop width / height: what box -> center/scale widens the boxes to."""
        return self.input_size[0] / self.input_size[1]

    def replace(self, **changes: Any) -> "InferenceSetting":
        """A copy with some fields changed (the object itself is frozen)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists for sizes): safe in ``weights_only`` checkpoints and JSON."""
        out = dataclasses.asdict(self)
        out["input_size"] = list(self.input_size)
        out["heatmap_size"] = None if self.heatmap_size is None else list(self.heatmap_size)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InferenceSetting":
        """Read :meth:`to_dict`'s output; also the keys of files written before this object
        existed (``shift`` = ``flip_shift``, ``post_process`` = ``refine``). Unknown keys
        are ignored (a meta dict carries other facts too)."""
        data = dict(data)
        if data.get("flip_shift") is None and data.get("shift") is not None:
            data["flip_shift"] = data["shift"]
        if "refine" not in data and data.get("post_process"):
            data["refine"] = data["post_process"]
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields and v is not None}
        return cls(**kwargs)

    @classmethod
    def from_config(cls, config: Mapping[str, Any],
                    codec: Mapping[str, Any] | str | None = None) -> "InferenceSetting":
        """The setting of an experiment config (``data.input_size``/``heatmap_size``,
        ``val.flip_test``/``flip_shift``/``refine``/``dark_kernel``/``padding``/``boundary``).

        The decoding keys (``refine``, ``dark_kernel``, ``boundary``) left out of ``val``
        come from the codec (:func:`~robustpose.codecs.base.codec_decoding`): ``codec`` (a
        block a training method declares) or the config's ``data.codec``; so
        ``codec: {type: unbiased}`` alone decodes with DARK, as ``build_codec('unbiased')``.
        """

        data, val = config["data"], config["val"]
        own = codec_decoding(codec if codec is not None else config_codec_block(config))
        return cls(input_size=tuple(data["input_size"]),
                   heatmap_size=tuple(data["heatmap_size"]),
                   padding=float(_first(val.get("padding"), 1.25)),
                   flip_test=bool(_first(val.get("flip_test"), True)),
                   flip_shift=bool(_first(val.get("flip_shift"), val.get("shift"), True)),
                   refine=str(_first(val.get("refine"), val.get("post_process"), own.get("refine"),
                                     "quarter")),
                   dark_kernel=int(_first(val.get("dark_kernel"), own.get("dark_kernel"), 11)),
                   boundary=str(_first(val.get("boundary"), own.get("boundary"), "hrnet")))
