"""Black-box transfer: perturbations crafted on surrogate model A, evaluated on model B.

:func:`transfer_matrix` runs one attack per surrogate and scores every victim on the
resulting crops, so a whole matrix costs one attack per surrogate (the crafting) plus one
evaluation per (surrogate, victim) pair. Victims may be anything the score function can
run (torch models, ONNX or callable adapters); only the surrogates need gradients.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch


def transfer_matrix(surrogates: Mapping[str, Any], victims: Mapping[str, Any],
                    crops: torch.Tensor, make_attack: Callable[[Any], Any],
                    score: Callable[[Any, torch.Tensor], float],
                    targets: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """-> ``{'clean': {victim: score}, 'attacked': {surrogate: {victim: score}},
    'relative': {surrogate: {victim: attacked / clean}}}``.

    ``make_attack(surrogate_model) -> Attack``; ``score(victim, crops) -> float`` (e.g. PCK
    of the victim's predictions, higher is better); ``targets(surrogate)`` gives the attack's
    targets for that surrogate (None: untargeted against its clean prediction).
    """
    clean = {v: float(score(model, crops)) for v, model in victims.items()}
    attacked: dict[str, dict[str, float]] = {}
    for s, surrogate in surrogates.items():
        adv = make_attack(surrogate)(crops, None if targets is None else targets(surrogate))
        attacked[s] = {v: float(score(model, adv)) for v, model in victims.items()}
    relative = {s: {v: (row[v] / clean[v] if clean[v] else float("nan")) for v in row}
                for s, row in attacked.items()}
    return {"clean": clean, "attacked": attacked, "relative": relative}


class ResizedInput(torch.nn.Module):
    """A surrogate at another crop size: the victim's crop resized bilinearly (a
    differentiable op, so input gradients reach the victim-size crop) to ``size`` (w, h).

    Keeps ``output_kind``, ``coord_units`` and ``forward_all`` of the wrapped model;
    ``crop_size`` is ``size``. The outputs are in the surrogate's frame (untargeted transfer compares them with its own clean prediction).
    """

    def __init__(self, model: torch.nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.size = (int(size[0]), int(size[1]))
        self.output_kind = getattr(model, "output_kind", "heatmaps")
        self.coord_units = getattr(model, "coord_units", "pixels")

    @property
    def crop_size(self) -> tuple[int, int]:
        """(w, h) of the crop the wrapped network sees (its outputs' frame)."""
        return self.size

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == (self.size[1], self.size[0]):
            return x
        return torch.nn.functional.interpolate(x, size=(self.size[1], self.size[0]),
                                               mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self._resize(x))

    def forward_all(self, x: torch.Tensor) -> list:
        return self.model.forward_all(self._resize(x))
