"""Spectral normalisation of a pose model's convolutions (the "Lipschitz" baseline).

``apply_spectral_norm(model, scope='all')`` registers
:func:`torch.nn.utils.parametrizations.spectral_norm` on every ``nn.Conv2d`` and
``nn.ConvTranspose2d`` of ``model`` (``scope='backbone'``: only those under the model's
``backbone_names``; ``'head'``: only the others). Each weight is then used as
``W / sigma(W)``, sigma the top singular value of ``W`` reshaped to a matrix
(out x in*kh*kw; ``dim=1`` for transposed convolutions, as torch chooses), estimated by
``n_power_iterations`` power-method steps per training forward (Miyato et al. 2018).

What it bounds, and what not: the *reshaped matrix* has norm ~1; the convolution's own
operator norm is within a factor ``sqrt(kh * kw)`` of it (Miyato's approximation, not the
exact bound of Sedghi et al.). BatchNorm layers are left as they are (their affine scale
and running statistics are not constrained), so the network as a whole is not 1-Lipschitz:
the constraint limits how fast each convolution can amplify a perturbation, the standard
SN recipe applied to a BN network.

How a model knows it: ``create_model(name, spectral_norm='all', spectral_norm_iters=1)``
applies it (inside create_model's seeded RNG fork, so the power-method start vectors are
reproducible) and records both options in ``model.model_config['kwargs']`` -- so configs
(``model.kwargs: {spectral_norm: all}``), ``best.pt``'s meta and ``load_model`` rebuild it.
State-dict keys change (``conv.weight`` -> ``conv.parametrizations.weight.original`` plus the
power-method vectors ``...weight.0._u`` / ``._v``); :func:`spectral_key` maps a plain
checkpoint's weights onto them (fine-tuning a spectrally normalised model from an
ordinary one: the loaded ``W`` becomes ``original`` and is used as ``W / sigma(W)``), after
which the power-method vectors are re-estimated from the loaded weights (15 steps, as at
registration) instead of being left at the initial weights' values.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

SCOPES = ("all", "backbone", "head")
#: power-method steps after loading weights that came without their vectors (torch's own
#: count at registration)
REESTIMATE_STEPS = 15
_ORIGINAL = ".parametrizations.weight.original"
_VECTORS = (".parametrizations.weight.0._u", ".parametrizations.weight.0._v")
_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def normalise_scope(value: Any) -> str | None:
    """``True``/'all' -> 'all', 'backbone', 'head'; ``False``/``None``/'none' -> None."""
    if value is None or value is False or value == "none":
        return None
    if value is True:
        return "all"
    if value not in SCOPES:
        raise ValueError(f"spectral_norm must be true/false or one of {', '.join(SCOPES)}, "
                         f"got {value!r}")
    return str(value)


def pop_spectral_options(kwargs: dict) -> dict:
    """Remove ``spectral_norm`` / ``spectral_norm_iters`` from a create_model ``**kw`` dict;
    -> the normalised options to record (empty when spectral normalisation is off)."""
    scope = normalise_scope(kwargs.pop("spectral_norm", None))
    iters = kwargs.pop("spectral_norm_iters", None)
    if scope is None:
        if iters is not None:
            raise ValueError("spectral_norm_iters is given but spectral_norm is off")
        return {}
    iters = 1 if iters is None else iters
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"spectral_norm_iters must be an integer >= 1, got {iters!r}")
    return {"spectral_norm": scope, "spectral_norm_iters": int(iters)}


def _in_scope(name: str, scope: str, backbone: tuple[str, ...]) -> bool:
    inside = name.split(".")[0] in backbone
    return scope == "all" or (scope == "backbone") == inside


def _targets(model: nn.Module, scope: str) -> Iterator[tuple[str, nn.Module]]:
    backbone = tuple(getattr(model, "backbone_names", ()) or ())
    if scope != "all" and not backbone:
        raise ValueError(f"spectral_norm={scope!r} needs a model with backbone_names; "
                         f"{type(model).__name__} has none (use 'all')")
    for name, module in model.named_modules():
        if isinstance(module, _CONVS) and _in_scope(name, scope, backbone):
            yield name, module


def apply_spectral_norm(model: nn.Module, scope: str = "all",
                        n_power_iterations: int = 1) -> nn.Module:
    """Spectrally normalise the convolutions of ``model`` in place; returns ``model``.

    Draws the power-method start vectors from torch's global RNG (``create_model`` calls
    this inside its seeded fork). Refuses a model that already has it."""
    scope = normalise_scope(scope) or "all"
    if is_spectral(model):
        raise ValueError(f"{type(model).__name__} already has spectral normalisation")
    names = []
    for name, module in list(_targets(model, scope)):
        spectral_norm(module, n_power_iterations=int(n_power_iterations))
        names.append(name)
    if not names:
        raise ValueError(f"spectral_norm={scope!r}: {type(model).__name__} has no convolution "
                         "in that scope")
    model.spectral_norm = {"scope": scope, "n_power_iterations": int(n_power_iterations),
                           "modules": names}
    model.register_load_state_dict_post_hook(_reestimate_after_load)
    return model


def spectral_modules(model: nn.Module) -> dict[str, nn.Module]:
    """name -> the spectrally normalised convolutions of ``model``."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, _CONVS) and parametrize.is_parametrized(m, "weight")
            and any(type(p).__name__ == "_SpectralNorm" for p in m.parametrizations.weight)}


def is_spectral(model: nn.Module) -> bool:
    """Whether any convolution of ``model`` is spectrally normalised."""
    return bool(spectral_modules(model))


def _sn(module: nn.Module) -> nn.Module:
    return next(p for p in module.parametrizations.weight if type(p).__name__ == "_SpectralNorm")


@torch.no_grad()
def reestimate(module: nn.Module, steps: int = REESTIMATE_STEPS) -> None:
    """Re-run the power method of a normalised conv from its current vectors on its
    current ``original`` weight (deterministic: no random draw)."""
    sn = _sn(module)
    original = module.parametrizations.weight.original
    sn._power_method(sn._reshape_weight_to_matrix(original), int(steps))


def _reestimate_after_load(model: nn.Module, incompatible: Any) -> None:
    """load_state_dict post-hook: vectors missing from the loaded dict (a plain checkpoint
    mapped onto ``original``) are re-estimated from the loaded weights and no longer
    reported missing."""
    missing = set(incompatible.missing_keys)
    for name, module in spectral_modules(model).items():
        keys = [f"{name}{suffix}" for suffix in _VECTORS]
        if f"{name}{_ORIGINAL}" not in missing and all(k in missing for k in keys):
            reestimate(module)
            for key in keys:
                incompatible.missing_keys.remove(key)


def spectral_key(name: str, model_keys: set[str] | Mapping[str, Any]) -> str:
    """A plain checkpoint key ``<conv>.weight`` -> ``<conv>.parametrizations.weight.original``
    when the model has that key instead (else ``name`` unchanged)."""
    if name.endswith(".weight") and name not in model_keys:
        mapped = name[: -len(".weight")] + _ORIGINAL
        if mapped in model_keys:
            return mapped
    return name


def vectors_optional(key: str, mapped: Mapping[str, Any]) -> bool:
    """Whether a model key missing from a checkpoint is a power-method vector whose weight
    the checkpoint did provide (re-estimated after the load, see module docstring)."""
    for suffix in _VECTORS:
        if key.endswith(suffix):
            return key[: -len(suffix)] + _ORIGINAL in mapped
    return False


def spectral_hint(unexpected: list[str]) -> str:
    """One clause for a load error when the file has spectral normalisation the model lacks."""
    if any(k.endswith(_ORIGINAL) for k in unexpected):
        return (" (the checkpoint has spectral normalisation: build the model with "
                "spectral_norm=..., e.g. model.kwargs: {spectral_norm: all})")
    return ""


def spectral_options_of(meta: Mapping[str, Any] | None) -> dict:
    """The spectral options a robustpose checkpoint's meta records (its ``kwargs``)."""
    kwargs = dict((meta or {}).get("kwargs") or {})
    return pop_spectral_options({k: kwargs[k] for k in ("spectral_norm", "spectral_norm_iters")
                                 if k in kwargs})


def top_singular_value(module: nn.Module) -> float:
    """The exact top singular value of a conv's *effective* weight reshaped as torch's
    spectral norm reshapes it (for tests and reports)."""
    weight = module.weight.detach()
    dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
    if dim:
        weight = weight.transpose(0, 1)
    return float(torch.linalg.matrix_norm(weight.flatten(1), ord=2))
