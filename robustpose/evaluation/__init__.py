"""Metrics (COCO OKS AP, MPII PCKh, PCK/AUC/EPE), robustness aggregation and the results store.

Every metric object has the same three methods: ``accumulate(keypoints, meta)``,
``stats() -> dict`` and ``write_predictions(path)``. See docs/evaluation.md.
"""
from typing import Any

from robustpose.evaluation.coco import (COCO_STAT_NAMES, CocoKeypointMetric, evaluate_coco_results,
                                        load_coco_ground_truth)
from robustpose.evaluation.coco_conventions import AREA_RULES, CROWD_STAT_NAMES
from robustpose.evaluation.files import evaluate_file
from robustpose.evaluation.oks_nms import COCO_SIGMAS, oks_iou, oks_nms, rescore
from robustpose.evaluation.pck import PCKMetric, pck_auc_epe
from robustpose.evaluation.pckh import PCKhMetric, load_mpii_ground_truth, pckh_table
from robustpose.evaluation.robustness import (BENCHMARK_CORRUPTIONS, FAMILIES, severity_table,
                                              summarize_robustness, summarize_store)
from robustpose.evaluation.stability import StabilityMetric
from robustpose.evaluation.store import ResultsStore, cell_key

__all__ = [
    "COCO_STAT_NAMES", "CocoKeypointMetric", "evaluate_coco_results", "load_coco_ground_truth",
    "AREA_RULES", "CROWD_STAT_NAMES", "evaluate_file", "COCO_SIGMAS", "oks_iou", "oks_nms", "rescore", "PCKMetric", "pck_auc_epe",
    "PCKhMetric", "load_mpii_ground_truth", "pckh_table", "BENCHMARK_CORRUPTIONS", "FAMILIES",
    "severity_table", "summarize_robustness", "summarize_store", "ResultsStore", "cell_key",
    "StabilityMetric", "METRIC_ALIASES", "build_dataset_metric",
]

#: the metric names of a dataset entry (``DatasetInfo.metric``) and the older spellings of
#: a training config's ``val.metric`` (``coco`` / ``pckh``) they stand for
METRIC_ALIASES = {"AP": "AP", "coco": "AP", "PCKh": "PCKh", "pckh": "PCKh", "PCK": "PCK",
                  "pck": "PCK"}


def build_dataset_metric(metric: str, *, annotation_file: Any = None, records: Any = None,
                         sigmas: Any = None, **options: Any) -> Any:
    """A fresh metric object for a dataset entry's ``metric`` (training's validation and
    the runs both build theirs here).

    ``'AP'`` -> :class:`CocoKeypointMetric` (``annotation_file``, the spec's ``sigmas`` (K,),
    ``options`` e.g. ``score_mode``, ``nms_mode``, ``keypoint_score_thr``, ``nms_thr``,
    ``area_rule``); ``'PCKh'`` -> :class:`PCKhMetric` on ``records`` (the loaded MPII people)
    when given, else on ``annotation_file``; ``'PCK'`` -> :class:`PCKMetric`. Unknown names
    or options raise one line naming the choices.
    """
    import inspect

    from robustpose.evaluation.metrics import METRICS

    name = METRIC_ALIASES.get(str(metric))
    if name is None:
        raise ValueError(f"unknown metric {metric!r}; choose from AP, PCKh, PCK "
                         "(or coco, pckh, pck)")
    cls = METRICS.get({"AP": "coco_ap", "PCKh": "pckh", "PCK": "pck"}[name])  # the one table
    accepted = [p for p in inspect.signature(cls.__init__).parameters
                if p not in ("self", "annotation_file", "sigmas")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"metric {name}: unknown option {unknown[0]!r}; choose from "
                         f"{', '.join(accepted)}")
    if name == "PCKh" and records is not None:
        return cls(records, **options)
    if annotation_file is None:
        raise ValueError(f"metric {name} needs the annotation file")
    if name == "AP":
        return cls(str(annotation_file), sigmas=sigmas, **options)
    return cls(str(annotation_file), **options)
