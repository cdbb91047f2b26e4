"""Universal adversarial perturbation: one ``(3, H, W)`` perturbation for a whole crop set.

Fitted by stochastic gradient ascent with projection (the SGD variant of universal
perturbations, Shafahi et al. 2020; the study's UAP is Moosavi-Dezfooli's DeepFool-based
one, which has no pose analogue): for ``epochs`` passes over the fitting crops in a
seeded order, each batch moves ``delta`` by ``alpha * sign(sum of the crops' input
gradients)`` and projects it onto the eps ball. Fit on one split, evaluate on a disjoint
one (:meth:`UAP.__call__` adds the fitted ``delta`` and clips to [0, 1]).
:meth:`UAP.save` writes ``<stem>.npy`` (float32 (3, H, W), [0, 1]-crop units) and
``<stem>.png`` (H x W x 3 uint8, ``-eps -> 0, 0 -> 127.5, +eps -> 255``: the study's Fig. 2
scaling, the perturbation stretched to the full 0-255 range).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from robustpose.attacks.base import Attack, attack_mode
from robustpose.attacks.losses import as_targets

Batches = torch.Tensor | dict | Callable[[int], Iterable[Any]]
#: ``monitor(epochs_done, delta) -> stop?``, called after every epoch of :meth:`UAP.fit`
Monitor = Callable[[int, torch.Tensor], bool]


class PlateauStop:
    """A stopping rule fixed before any result: feed it one value per epoch (lower = a
    stronger perturbation, e.g. the held-out relative PCK); :meth:`update` says stop once
    the best of the last ``patience`` values is not below the best before them by more
    than ``min_delta`` (the curve has flattened), or at ``max_epochs``."""

    def __init__(self, patience: int, min_delta: float = 0.005) -> None:
        if int(patience) < 1 or not min_delta >= 0:
            raise ValueError(f"UAP stopping rule: patience must be >= 1 and min_delta >= 0, "
                             f"got {patience!r}, {min_delta!r}")
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.history: list[float] = []

    def update(self, value: float) -> bool:
        """Record one epoch's value; True when the fit should stop."""
        self.history.append(float(value))
        if len(self.history) <= self.patience:
            return False
        before = min(self.history[:-self.patience])
        return before - min(self.history[-self.patience:]) <= self.min_delta


class UAP(Attack):
    """``uap = UAP(model, eps=8, epochs=5); uap.fit(fit_crops); adv = uap(eval_crops)``.

    Args (besides :class:`Attack`'s): ``epochs`` passes (the most, with a ``monitor`` that
    stops early), ``alpha`` the signed step per batch on the 0..255 scale (default
    ``eps / 10``), ``batch_size`` crops per step when ``fit`` gets tensors: one epoch is
    ``ceil(M / batch_size)`` signed steps. Untargeted only (a universal target pose has no
    meaning across crops).
    """

    name = "uap"

    def __init__(self, model: Any, eps: float = 8.0, epochs: int = 5,
                 alpha: float | None = None, batch_size: int = 32, **kwargs: Any) -> None:
        if kwargs.get("targeted"):
            raise ValueError("UAP is untargeted (one perturbation for every crop)")
        super().__init__(model, eps, **kwargs)
        if int(epochs) < 1 or int(batch_size) < 1:
            raise ValueError("UAP: epochs and batch_size must be >= 1")
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.steps = self.epochs
        self.alpha = self.eps / 10.0 if alpha is None else float(alpha)
        self.delta: torch.Tensor | None = None
        self.fitted_crops = 0
        self.epochs_run = 0

    def _batches(self, data: Batches, epoch: int, generator: torch.Generator) -> Iterable[Any]:
        if callable(data):
            return data(epoch)
        images = data["image"] if isinstance(data, dict) else data
        order = torch.randperm(images.shape[0], generator=generator, device="cpu")
        chunks = (order[s:s + self.batch_size] for s in range(0, images.shape[0], self.batch_size))
        if not isinstance(data, dict) or data.get("target") is None:
            return (images[idx] for idx in chunks)
        return ((images[idx], {"target": data["target"][idx],
                               "target_weight": data["target_weight"][idx]}) for idx in chunks)

    def fit(self, data: Batches, monitor: Monitor | None = None) -> torch.Tensor:
        """Fit ``delta`` on ``data``: an (M, 3, H, W) tensor of [0, 1] crops, or a dict with
        ``image`` and optional ``target`` / ``target_weight`` of M crops (either shuffled
        per epoch from the seeded generator), or ``epoch -> iterable of crops or (crops,
        targets)`` batches. ``monitor(epochs_done, delta)`` runs after every epoch (e.g.
        the held-out curve); it returning True ends the fit before ``epochs``
        (``epochs_run`` says how many ran). Returns ``delta`` (3, H, W), |delta| <= eps/255."""
        generator = torch.Generator().manual_seed(self.seed)
        e = self.eps / 255.0
        self.fitted_crops = 0
        self.epochs_run = 0
        with attack_mode([self._module()]):
            delta = None
            for epoch in range(self.epochs):
                for batch in self._batches(data, epoch, generator):
                    crops, targets = batch if isinstance(batch, (tuple, list)) else (batch, None)
                    crops = crops.detach().float()
                    if delta is None:  # a seeded start in the ball: zero is a
                        # stationary point of the loss to the clean prediction
                        delta = (torch.rand(crops.shape[1:], generator=generator) * 2 - 1) \
                            .mul_(e).to(crops.device)
                        self.objective.set_frame(*self.frame(crops))
                    with torch.no_grad():
                        clean = self.query(crops)
                    target, weight = as_targets(clean if targets is None else targets, clean)
                    d = delta.detach().requires_grad_(True)
                    with torch.enable_grad():
                        value = self.objective.total(self.outputs((crops + d).clamp(0, 1)),
                                                     target, weight)
                        (grad,) = torch.autograd.grad(value, [d])
                    delta = (delta + self.alpha / 255.0 * grad.sign()).clamp(-e, e)
                    self.fitted_crops += crops.shape[0]
                self.epochs_run = epoch + 1
                if monitor is not None and delta is not None and monitor(epoch + 1, delta.detach()):
                    break
        if delta is None:
            raise ValueError("UAP.fit: no crops to fit on")
        self.delta = delta.detach()
        return self.delta

    def reference(self, crops, targets):
        # the fitted delta needs no reference; skip the clean forward pass
        return crops.new_zeros(0), crops.new_zeros(0)

    def perturb(self, crops, target, weight, generator):
        if self.delta is None:
            raise ValueError("UAP: fit() (or load()) a perturbation before applying it")
        if tuple(self.delta.shape) != tuple(crops.shape[1:]):
            raise ValueError(f"UAP: the perturbation is {tuple(self.delta.shape)}, the crops "
                             f"{tuple(crops.shape[1:])}")
        return crops + self.delta.to(crops.device)

    def save(self, stem: str | Path) -> tuple[Path, Path]:
        """Write ``stem.npy`` and ``stem.png`` (see the module docstring); returns both."""
        import cv2

        if self.delta is None:
            raise ValueError("UAP: nothing to save; fit() first")
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        array = self.delta.detach().cpu().numpy().astype(np.float32)
        np.save(stem.with_suffix(".npy"), array)
        cv2.imwrite(str(stem.with_suffix(".png")), uap_picture(array, self.eps)[..., ::-1])
        return stem.with_suffix(".npy"), stem.with_suffix(".png")

    def load(self, path: str | Path) -> "UAP":
        """Read a ``.npy`` written by :meth:`save` (its values are kept within eps)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: UAP file not found")
        e = self.eps / 255.0
        self.delta = torch.from_numpy(np.load(path).astype(np.float32)).clamp(-e, e)
        return self


def uap_picture(delta: np.ndarray, eps: float) -> np.ndarray:
    """(3, H, W) perturbation in [0, 1] units -> H x W x 3 uint8 RGB, eps ball -> 0..255."""
    e = max(float(eps) / 255.0, 1e-12)
    scaled = (np.asarray(delta, np.float64).transpose(1, 2, 0) / (2 * e) + 0.5) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
