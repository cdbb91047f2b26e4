"""Metrics (COCO OKS AP, MPII PCKh, PCK/AUC/EPE), robustness aggregation and the results store.

Every metric object has the same three methods: ``accumulate(keypoints, meta)``,
``stats() -> dict`` and ``write_predictions(path)``. See docs/evaluation.md.
"""
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
    "StabilityMetric",
]
