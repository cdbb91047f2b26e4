"""The metric protocol and the metric registry.

Every metric of :mod:`robustpose.evaluation` is an object with three methods: ``reset()``
(forget what was accumulated: one object serves every cell of a run, the ground truth
read once), ``accumulate(...)`` (one batch: predictions in image px and the batch's meta,
or for :class:`~robustpose.evaluation.pck.BoxPCK` predictions, ground truth and boxes)
and ``stats() -> dict`` (numbers; an absent value is None, never 0). Most also have
``write_predictions(path)``.

>>> metric = build_metric("box_pck", 17, thr=0.1)
>>> metric.stats()["PCK"] is None          # nothing accumulated: absent
True
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from robustpose.evaluation.coco import CocoKeypointMetric
from robustpose.evaluation.pck import BoxPCK, PCKMetric
from robustpose.evaluation.pckh import PCKhMetric
from robustpose.evaluation.stability import StabilityMetric
from robustpose.utils.registry import Registry

__all__ = ["Metric", "METRICS", "register_metric", "build_metric", "list_metrics"]


@runtime_checkable
class Metric(Protocol):
    """What a run's cell loop calls on a metric."""

    def reset(self) -> None: ...

    def accumulate(self, *args: Any, **kwargs: Any) -> None: ...

    def stats(self) -> dict: ...


#: name -> metric class (or factory)
METRICS: Registry = Registry("metric")


def register_metric(name: str, factory: Any) -> Any:
    """Add a metric class / factory under ``name`` (refuses a taken name)."""
    return METRICS.register(name, factory)


def build_metric(name: str, *args: Any, **kwargs: Any) -> Metric:
    """The metric ``name`` built with ``args`` / ``kwargs`` (one-line error naming the
    choices for an unknown name)."""
    return METRICS.get(name)(*args, **kwargs)


def list_metrics(pattern: str = "*") -> list[str]:
    return METRICS.list(pattern)


register_metric("coco_ap", CocoKeypointMetric)   # OKS AP (COCO, CrowdPose rules)
register_metric("pckh", PCKhMetric)              # MPII PCKh
register_metric("pck", PCKMetric)                # PCK / AUC / EPE against a COCO-format file
register_metric("box_pck", BoxPCK)               # streaming PCK of max(box w, h) (attacks)
register_metric("stability", StabilityMetric)    # R, RUC, D_n, D_(1)(2)
