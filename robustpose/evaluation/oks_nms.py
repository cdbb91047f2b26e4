"""Person rescoring and greedy OKS-NMS, following the HRNet reference evaluation.

HRNet (``lib/dataset/coco.py::evaluate`` and ``lib/nms/nms.py::oks_nms``) post-processes
top-down predictions per image before COCOeval:

1. rescoring: ``score = box_score * mean(keypoint scores > vis_thr)`` (0 when no keypoint
   score is above the threshold); :func:`person_scores` also offers mmpose CocoMetric's
   other ``score_mode`` values (``keypoint``: plain mean of the K keypoint scores;
   ``bbox``: the box score alone);
2. greedy NMS: sort by the new score, keep the best, drop every remaining person whose OKS
   with it is ``> nms_thr`` (0.9), repeat. OKS uses the dataset sigmas, *all* keypoints
   (no visibility filter, as in HRNet's call) and the mean of the two persons' areas, where
   the area is the padded box area ``prod(scale * 200)`` (HRNet's ``all_boxes[:, 4]``).
"""
from __future__ import annotations

import numpy as np

from robustpose.utils.conventions import COCO_SIGMAS, PIXEL_STD

__all__ = ["COCO_SIGMAS", "SCORE_MODES", "NMS_MODES", "rescore", "person_scores", "oks_iou",
           "oks_nms", "areas_from_scale"]

#: mmpose CocoMetric's names: how a person's score (the ranking of COCOeval) is made.
SCORE_MODES = ("bbox_keypoint", "keypoint", "bbox")
#: whether OKS-NMS runs per image before COCOeval.
NMS_MODES = ("oks_nms", "none")


def rescore(keypoints: np.ndarray, box_scores: np.ndarray, vis_thr: float = 0.2) -> np.ndarray:
    """HRNet person rescoring.

    Args:
        keypoints: (N, K, 3) x, y, score.
        box_scores: (N,) detector (or ground-truth: 1) box scores.
        vis_thr: keypoint scores strictly above this count.
    Returns:
        (N,) ``box_score * mean(keypoint scores > vis_thr)``; 0 where no keypoint passes.
    """
    scores = np.asarray(keypoints, dtype=np.float64)[..., 2]
    valid = scores > vis_thr
    count = valid.sum(axis=1)
    total = np.where(valid, scores, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean * np.asarray(box_scores, dtype=np.float64)


def person_scores(keypoints: np.ndarray, box_scores: np.ndarray,
                  score_mode: str = "bbox_keypoint", keypoint_score_thr: float = 0.2) -> np.ndarray:
    """The person score COCOeval ranks by, as mmpose CocoMetric's ``score_mode`` names it.

    Args:
        keypoints: (N, K, 3) x, y, score.
        box_scores: (N,) detector (or ground-truth: 1) box scores.
        score_mode: ``'bbox_keypoint'`` (HRNet: :func:`rescore` with ``keypoint_score_thr``),
            ``'keypoint'`` (mean of all K keypoint scores, no box score, no threshold) or
            ``'bbox'`` (the box score alone).
        keypoint_score_thr: used by ``'bbox_keypoint'`` only.
    Returns:
        (N,) float64 scores.
    """
    if score_mode == "bbox_keypoint":
        return rescore(keypoints, box_scores, keypoint_score_thr)
    if score_mode == "keypoint":
        return np.asarray(keypoints, dtype=np.float64)[..., 2].mean(axis=1)
    if score_mode == "bbox":
        return np.asarray(box_scores, dtype=np.float64).reshape(-1).copy()
    raise ValueError(f"score_mode must be one of {', '.join(SCORE_MODES)}, got {score_mode!r}")


def oks_iou(kpt: np.ndarray, others: np.ndarray, area: float, other_areas: np.ndarray,
            sigmas: np.ndarray) -> np.ndarray:
    """OKS between one person and several others, HRNet's ``oks_iou`` without the vis filter.

    Args:
        kpt: (K, 3) or (K, 2) keypoints of the kept person (image px).
        others: (M, K, >=2) keypoints of the remaining persons.
        area: area of the kept person (px^2); other_areas: (M,).
        sigmas: (K,) OKS sigmas.
    Returns:
        (M,) OKS in [0, 1].
    """
    variances = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    d2 = ((others[:, :, 0] - kpt[None, :, 0]) ** 2 + (others[:, :, 1] - kpt[None, :, 1]) ** 2)
    mean_area = (area + np.asarray(other_areas, dtype=np.float64)) / 2.0 + np.spacing(1)
    e = d2 / variances[None, :] / mean_area[:, None] / 2.0
    return np.exp(-e).mean(axis=1)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray,
            sigmas: np.ndarray, thr: float = 0.9) -> list[int]:
    """Greedy OKS-NMS over the persons of ONE image.

    Args:
        keypoints: (N, K, >=2) image px; scores: (N,) (already rescored); areas: (N,) px^2.
        sigmas: (K,) OKS sigmas; thr: a person is removed when its OKS with a kept,
            higher-scored person is ``> thr`` (HRNet keeps ``<= thr``).
    Returns:
        Indices of the kept persons, best score first.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64)
    if len(scores) == 0:
        return []
    # argsort()[::-1] as in HRNet (ties resolved the same way).
    order = scores.argsort()[::-1]
    keep: list[int] = []
    while order.size > 0:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        if rest.size == 0:
            break
        ovr = oks_iou(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas)
        order = rest[ovr <= thr]
    return keep


def areas_from_scale(scale: np.ndarray) -> np.ndarray:
    """HRNet's person area for NMS: ``prod(scale * 200)`` per person; scale (N, 2) -> (N,)."""
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 2)
    return np.prod(scale * PIXEL_STD, axis=1)
