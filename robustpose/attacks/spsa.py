"""SPSA (Uesato et al. 2018): a query-only attack through any model or benchmark adapter.

Each step estimates the objective's gradient per crop from ``samples`` Rademacher
directions ``v`` (two queries each): ``g = mean_j (f(x + d v_j) - f(x - d v_j)) / (2 d) v_j``
with ``d = delta / 255``, then takes a signed step of ``alpha`` and projects (the same
update as IGSM, with the estimate in place of the gradient; Uesato et al. use Adam on
the estimate, the signed step keeps the two attacks comparable step for step).

Queries are counted per crop: the clean reference (untargeted without targets) costs 1,
each step ``2 * samples``; ``max_queries`` caps the steps so the count never exceeds it.
The model is only ever called forward, without gradients: a
:class:`~robustpose.models.adapters.RegistryAdapter`, ``OnnxAdapter`` or ``CallableAdapter``
(its raw outputs), a torch module, or a plain callable crops -> heatmaps / coordinates.
Directions come from the attack's seeded generator (same seed, same result).
"""
from __future__ import annotations

from typing import Any

import torch

from robustpose.attacks.base import Attack
from robustpose.attacks.losses import AttackObjective, as_targets


def raw_outputs(model: Any, crops: torch.Tensor) -> torch.Tensor:
    """One forward call -> float32 tensor: heatmaps (N, K, h, w) or crop-px coordinates
    (N, K, 2), in the data set's keypoint order for adapters (their index maps applied)."""
    from robustpose.models.adapters import CallableAdapter, OnnxAdapter, RegistryAdapter

    with torch.no_grad():
        if isinstance(model, RegistryAdapter):
            out = model.forward(crops)
        elif isinstance(model, OnnxAdapter):
            raw = model.forward(crops)
            out = model._heatmaps(raw) if model.spec.output_kind == "heatmaps" \
                else torch.as_tensor(model._keypoints(raw)[..., :2])
        elif isinstance(model, CallableAdapter):
            out = model._select(model.forward(crops))
            if model._kind(out) == "coords":
                out = out[..., :2]
        else:
            out = model(crops)
    out = out[-1] if isinstance(out, (list, tuple)) else out
    return torch.as_tensor(out).detach().float().to(crops.device)


class SPSA(Attack):
    """Query-based l_inf attack: ``SPSA(adapter, eps=8, steps=10, samples=16, max_queries=None)``.

    Args (besides :class:`Attack`'s; ``all_stacks`` is not available, only outputs are seen):
        steps: iterations (capped by ``max_queries``).
        samples: Rademacher directions per step (2 queries each per crop).
        delta: finite-difference size on the 0..255 scale (default 1).
        alpha: signed step on the 0..255 scale (default ``2.5 * eps / steps``, as IGSM).
        max_queries: per-crop query budget including the clean reference (None: no cap).
        query_batch: crops per model call (the directions of several crops go together).
    After a call, ``queries_used`` is the number of queries each crop cost.
    """

    name = "spsa"

    def __init__(self, model: Any, eps: float = 8.0, steps: int = 10, samples: int = 16,
                 delta: float = 1.0, alpha: float | None = None,
                 max_queries: int | None = None, query_batch: int = 64, **kwargs: Any) -> None:
        if kwargs.get("all_stacks"):
            raise ValueError("SPSA sees only the final output; all_stacks needs a white-box attack")
        super().__init__(model, eps, **kwargs)
        if int(steps) < 1 or int(samples) < 1 or not delta > 0:
            raise ValueError("SPSA: steps and samples must be >= 1 and delta > 0")
        self.samples, self.delta = int(samples), float(delta)
        self.max_queries = None if max_queries is None else int(max_queries)
        self.query_batch = max(1, int(query_batch))
        self.requested_steps = int(steps)
        self.steps = int(steps)
        self.alpha = 2.5 * self.eps / self.steps if alpha is None else float(alpha)
        self.queries_used = 0
        self._loss = kwargs.get("loss", "auto")


    def query(self, x: torch.Tensor) -> torch.Tensor:
        """Forward calls in chunks of ``query_batch`` (the per-crop count is kept by
        :meth:`reference` and :meth:`step`)."""
        parts = [raw_outputs(self.model, x[s:s + self.query_batch])
                 for s in range(0, x.shape[0], self.query_batch)]
        return torch.cat(parts)

    def reference(self, crops: torch.Tensor, targets: Any):
        self.queries_used = 0
        if targets is None:
            if self.targeted:
                raise ValueError("SPSA: a targeted attack needs targets")
            clean = self.query(crops)
            self.queries_used = 1
            self._fit_kind(clean)
            return as_targets(clean, clean)
        target = targets["target"] if isinstance(targets, dict) else targets
        target = torch.as_tensor(target).float()
        self._fit_kind(target)
        return as_targets(targets, target.to(crops.device))

    def _fit_kind(self, out: torch.Tensor) -> None:
        kind = "heatmaps" if out.dim() == 4 else "coords"
        if kind != self.objective.kind:  # a callable's kind shows only in its outputs
            self.objective = AttackObjective(kind, self._loss, self.targeted, False)
            self.kind = kind

    def perturb(self, crops, target, weight, generator):
        per_step = 2 * self.samples
        budget = None if self.max_queries is None else self.max_queries - self.queries_used
        self.steps = self.requested_steps if budget is None else \
            max(0, min(self.requested_steps, budget // per_step))
        return super().perturb(crops, target, weight, generator)

    def step(self, adv, target, weight, generator, t):
        n = adv.shape[0]
        d = self.delta / 255.0
        v = torch.randint(0, 2, (self.samples,) + tuple(adv.shape), generator=generator,
                          device=adv.device).float().mul_(2).sub_(1)     # S, N, 3, H, W
        probes = torch.cat([adv[None] + d * v, adv[None] - d * v])       # 2S, N, 3, H, W
        outs = self.query(probes.reshape(-1, *adv.shape[1:]))
        rep = 2 * self.samples
        values = self.objective.per_crop(
            outs, target.repeat(rep, *([1] * (target.dim() - 1))),
            weight.repeat(rep, 1)).reshape(2, self.samples, n)
        self.queries_used += rep
        coeff = (values[0] - values[1]) / (2 * d)                       # S, N
        grad = (coeff[..., None, None, None] * v).mean(0)
        return adv + self.alpha / 255.0 * grad.sign()
