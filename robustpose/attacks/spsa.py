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

from typing import Any, Callable

import torch

from robustpose.attacks.base import Attack
from robustpose.attacks.losses import AttackObjective, as_targets


def spsa_gradient(values: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                  samples: int, delta: float, generator: torch.Generator,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """SPSA's gradient estimate at ``x`` (N, ...) [0, 1] from ``samples`` Rademacher
    directions ``v`` (drawn from ``generator``, shape (samples, *x.shape)), two queries each:
    ``mean_j (f(x + d v_j) - f(x - d v_j)) / (2 d) v_j`` with ``d = delta / 255``.

    ``values``: probes (2 * samples * N, ...) -> (2 * samples * N,) objective values, the
    probes ordered (+v_1 .. +v_S, -v_1 .. -v_S), each N items. ``mask`` (broadcast to
    ``x``): 1 where the attack may change a value; elsewhere the directions are 0, so no
    probe moves those values (a whole image's letterbox padding). Returns (N, ...)."""
    n = x.shape[0]
    d = float(delta) / 255.0
    v = torch.randint(0, 2, (int(samples),) + tuple(x.shape), generator=generator,
                      device=x.device).float().mul_(2).sub_(1)          # S, N, ...
    if mask is not None:
        v = v * mask
    probes = torch.cat([x[None] + d * v, x[None] - d * v])               # 2S, N, ...
    out = values(probes.reshape(-1, *x.shape[1:])).reshape(2, int(samples), n)
    coeff = (out[0] - out[1]) / (2 * d)                                  # S, N
    return (coeff.reshape(coeff.shape + (1,) * (x.dim() - 1)) * v).mean(0)


def raw_outputs(model: Any, crops: torch.Tensor) -> torch.Tensor:
    """One forward call -> float32 tensor: heatmaps (N, K, h, w) or crop-px coordinates
    (N, K, 2), in the data set's keypoint order for adapters (their index maps applied)."""
    from robustpose.models.adapters import CallableAdapter, RegistryAdapter
    from robustpose.models.spec_adapter import SpecAdapter

    with torch.no_grad():
        if isinstance(model, RegistryAdapter):
            out = model.forward(crops)
        elif isinstance(model, SpecAdapter):
            # ONNX and TFLite alike: forward() casts each query to the model's input dtype
            # (MoveNet's int32: rounded to the nearest level), so every probe is what the
            # deployed model would be fed
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
        #: (broadcast to a crop) 1 where the attack may change a value; None: everywhere
        self.mask = None


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

    def values(self, probes: torch.Tensor, target: torch.Tensor,
               weight: torch.Tensor) -> torch.Tensor:
        """The objective of each probe (B,), B = 2 * samples * N, against the reference of
        its crop (probes ordered as :func:`spsa_gradient` makes them)."""
        rep = probes.shape[0] // target.shape[0]
        return self.objective.per_crop(self.query(probes),
                                       target.repeat(rep, *([1] * (target.dim() - 1))),
                                       weight.repeat(rep, 1))

    def step(self, adv, target, weight, generator, t):
        grad = spsa_gradient(lambda probes: self.values(probes, target, weight), adv,
                             self.samples, self.delta, generator, self.mask)
        self.queries_used += 2 * self.samples
        return adv + self.alpha / 255.0 * grad.sign()
