"""The RCC (row-column correlation) layer of stable heatmap regression (Zhang et al. 2022, Eq. 1, 7).

For a square heatmap ``H`` (S x S, row index first)::

    RCC(l, m) = sum_i H(l, i) * H(i, m)          (Eq. 1: the matrix product H @ H)
    out       = RCC / max_{l,m} RCC               (Eq. 7: normalised by its maximum, per map)

Row ``l`` of ``H`` is correlated with column ``m``. Why a single Gaussian passes unchanged
(Theorem 1): a discretised isotropic Gaussian at (x = b, y = a) is *separable*,
``H = u v^T`` with ``u(l) = A exp(-(l - a)^2 / 2 s^2)`` and ``v(i) = exp(-(i - b)^2 / 2 s^2)``,
so ``H @ H = u (v . u) v^T = (v . u) H``: the same map times a constant, which the
normalisation removes. This is exact for any rank-1 map (also HRNet's targets cut at
3 sigma, whose support is a product of two windows) as long as ``v . u > 0``.
``v . u = sum_i v(i) u(i) ~ A sqrt(pi) s exp(-(a - b)^2 / 4 s^2)`` shrinks with the peak's
distance from the diagonal ``x = y``: in float32 it underflows for ``|a - b| > ~37`` px at
sigma 2, and a 3-sigma-cut target has ``v . u = 0`` once ``|a - b| > 6 sigma`` (then RCC is
all zero and the guarded output is zero). Two Gaussians ``H = H1 + H2`` give
``H @ H = (v1.u1) H1 + (v2.u2) H2 + (v1.u2) u1 v2^T + (v2.u1) u2 v1^T``: each peak kept with
its own gain and two cross terms at (x = b2, y = a1) and (x = b1, y = a2) (the closed form
tested in tests/test_rcc.py, the paper's two-peak analysis).

Options:

- ``square``: non-square maps (h x w, e.g. 64 x 48) are made square. ``'pad'`` (default):
  zero rows / columns appended at the bottom / right up to ``max(h, w)``, so index ``i``
  keeps meaning "column i" and "row i" of the original map, and the product is cropped
  back to h x w (every pixel of the map can hold the peak). ``'crop'``: the central
  ``min(h, w)`` square only; pixels outside it are 0 in the output (a keypoint there
  cannot be predicted; kept as the documented alternative).
- ``negative``: the theorems assume non-negative maps (a product of two negative values
  is a positive spurious peak). ``'relu'`` (default): ``max(H, 0)``. ``'clamp'``: clamp to
  ``[0, 1]``, the range of the Gaussian targets (the peak saturates at 1). ``'softmax'``:
  a per-map softmax over the pixels first (for logit outputs, e.g. HDHR models trained
  with the weighted cross-entropy).
- ``log_output``: return ``log(max(out, eps))`` instead of ``out``: a logit map whose
  per-map softmax is ``RCC / sum RCC``, so softmax-based losses and decoders (HDHR)
  read the RCC output as a distribution.

A map whose RCC is all zero (e.g. an all-negative map under ``relu``) gives zeros (the
maximum is replaced by 1), never NaN. The product is computed in float32 (autocast off;
float64 inputs in float64) and the output has the input's dtype.

:func:`with_rcc` adds the layer to any heatmap :class:`~robustpose.models.PoseModel` in
place (``create_model(name, rcc=True | {...})`` and ``model.kwargs.rcc`` in a config do the
same); the layer has no parameters, so the state dict is unchanged, and the options are
recorded in ``model.model_config['rcc']``, which checkpoints save in their meta and
``load_checkpoint`` re-applies.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RCC", "SQUARE_MODES", "NEGATIVE_MODES", "rcc_config", "with_rcc", "rcc_options",
           "rcc_meta", "apply_rcc_meta"]

SQUARE_MODES = ("pad", "crop")
NEGATIVE_MODES = ("relu", "clamp", "softmax")


class RCC(nn.Module):
    """Row-column correlation of each heatmap, normalised by its maximum (module docstring).

    Shapes: ``maps`` (N, K, h, w) -> (N, K, h, w), same dtype; values in [0, 1] (or their
    log with ``log_output``). No parameters, no buffers.
    """

    def __init__(self, square: str = "pad", negative: str = "relu", log_output: bool = False,
                 eps: float = 1e-12) -> None:
        super().__init__()
        if square not in SQUARE_MODES:
            raise ValueError(f"RCC: square must be one of {', '.join(SQUARE_MODES)}, got {square!r}")
        if negative not in NEGATIVE_MODES:
            raise ValueError(f"RCC: negative must be one of {', '.join(NEGATIVE_MODES)}, "
                             f"got {negative!r}")
        if not float(eps) > 0:
            raise ValueError(f"RCC: eps must be > 0, got {eps!r}")
        self.square, self.negative = square, negative
        self.log_output, self.eps = bool(log_output), float(eps)

    def config(self) -> dict[str, Any]:
        """Plain-typed options: ``RCC(**config())`` rebuilds the layer."""
        return {"square": self.square, "negative": self.negative,
                "log_output": self.log_output, "eps": self.eps}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    def _non_negative(self, maps: torch.Tensor) -> torch.Tensor:
        if self.negative == "relu":
            return F.relu(maps)
        if self.negative == "clamp":
            return maps.clamp(0.0, 1.0)
        n, k, h, w = maps.shape
        return torch.softmax(maps.reshape(n, k, h * w), dim=2).reshape(n, k, h, w)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        if maps.dim() != 4:
            raise ValueError(f"RCC expects N x K x h x w heatmaps, got shape {tuple(maps.shape)}")
        with torch.autocast(device_type=maps.device.type, enabled=False):
            # float32 at least (half inputs, autocast); float64 inputs stay float64
            x = self._non_negative(maps.to(torch.promote_types(maps.dtype, torch.float32)))
            h, w = x.shape[-2:]
            top = left = 0
            if h == w:
                square = x
            elif self.square == "pad":
                s = max(h, w)
                square = F.pad(x, (0, s - w, 0, s - h))
            else:
                s = min(h, w)
                top, left = (h - s) // 2, (w - s) // 2
                square = x[..., top:top + s, left:left + s]
            corr = torch.matmul(square, square)
            peak = corr.amax(dim=(-2, -1), keepdim=True)
            corr = corr / torch.where(peak > 0, peak, torch.ones_like(peak))
            if h == w:
                out = corr
            elif self.square == "pad":
                out = corr[..., :h, :w]
            else:
                s = corr.shape[-1]
                out = F.pad(corr, (left, w - s - left, top, h - s - top))
            if self.log_output:
                out = torch.log(out.clamp_min(self.eps))
        return out.to(maps.dtype)


def rcc_config(options: bool | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``None`` / ``False`` -> None (off); ``True`` -> the defaults; a mapping -> the full,
    checked option dict. One-line ValueError for unknown keys or values."""
    if options is None or options is False:
        return None
    if options is True:
        return RCC().config()
    if not isinstance(options, Mapping):
        raise ValueError(f"rcc must be true, false or a mapping of RCC options, got {options!r}")
    try:
        return RCC(**dict(options)).config()
    except TypeError as exc:
        raise ValueError(f"rcc options {dict(options)!r}: {exc}") from None


def _bare(model: nn.Module) -> nn.Module:
    while isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return model


def with_rcc(model: nn.Module, **options: Any) -> nn.Module:
    """Put the RCC layer (``RCC(**options)``) on every heatmap output of ``model``, in
    place, and return it. ``model`` is a heatmap PoseModel (any registry architecture,
    possibly DDP-wrapped); its parameters and state dict are unchanged. Calling it again
    replaces the options."""
    from .base import PoseModel

    bare = _bare(model)
    if not isinstance(bare, PoseModel):
        raise ValueError(f"with_rcc: needs a robustpose PoseModel, got {type(bare).__name__}")
    if getattr(bare, "output_kind", "heatmaps") != "heatmaps":
        raise ValueError(f"with_rcc: {bare.model_name or type(bare).__name__} outputs "
                         f"{bare.output_kind}, RCC works on heatmaps")
    layer = RCC(**options)
    bare.output_transform = layer
    config = dict(getattr(bare, "model_config", {}) or {})
    config["rcc"] = layer.config()
    bare.model_config = config
    return model


def rcc_options(model: nn.Module) -> dict[str, Any] | None:
    """The RCC options of ``model`` (as :meth:`RCC.config`), or None without RCC."""
    layer = getattr(_bare(model), "output_transform", None)
    return layer.config() if isinstance(layer, RCC) else None


def rcc_meta(model: nn.Module) -> dict[str, Any]:
    """``{'rcc': options}`` for a checkpoint's meta when ``model`` has RCC, else ``{}``."""
    options = rcc_options(model)
    return {"rcc": options} if options is not None else {}


def apply_rcc_meta(model: nn.Module, meta: Mapping[str, Any], where: str = "checkpoint") -> None:
    """Re-apply the RCC layer a checkpoint's ``meta`` records (``meta['rcc']``).

    Nothing happens when the meta has none. A model without RCC gets it; one with the
    same options is left alone; one with other options is a one-line ValueError (the
    weights were trained behind another layer)."""
    wanted = rcc_config(meta.get("rcc")) if isinstance(meta, Mapping) else None
    if wanted is None:
        return
    from .base import PoseModel

    have = rcc_options(model)
    if have is None:
        if not isinstance(_bare(model), PoseModel):
            raise ValueError(f"{where}: trained with the RCC layer {wanted}, but "
                             f"{type(_bare(model)).__name__} cannot take it")
        with_rcc(model, **wanted)
    elif have != wanted:
        raise ValueError(f"{where}: trained with RCC {wanted}, but the model has RCC {have}")
