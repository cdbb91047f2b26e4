"""PCK normalised by box size, AUC of PCK over 0..30 px, and end-point error (EPE).

The hand-pose conventions (RHD / STB; the stable-heatmap paper's accuracy metric), as in
mmpose's ``keypoint_pck_accuracy`` / ``keypoint_auc`` / ``keypoint_epe``:

- a keypoint counts when its ground-truth visibility is > 0;
- ``PCK``: hit when ``distance / max(box w, box h) < thr`` (``thr`` 0.2); per-joint
  fractions, then the mean over joints that have at least one visible instance;
- ``AUC``: PCK with pixel thresholds ``t`` in 0..30 px (no box normalisation), mean over
  joints as above. Default ``auc_method='trapezoid'`` follows the RHD authors' ``EvalUtil``
  (Zimmermann & Brox): hit when ``distance <= t``, ``t`` in ``linspace(0, 30, 20)``,
  trapezoid rule divided by 30. ``auc_method='mmpose'`` follows mmpose's
  ``keypoint_auc(norm_factor=30, num_thrs=20)``: hit when ``distance < t``, ``t = 30 i / 20``
  for i = 0..19, plain mean of the 20 values;
- ``EPE``: mean Euclidean distance in px over all visible keypoints.
A keypoint with v = 0 counts nowhere; when no keypoint is visible, PCK, AUC and EPE are
``None`` (absent).
Values are fractions in [0, 1] (PCK, AUC) and pixels (EPE).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from robustpose.evaluation.results_io import check_finite_array, finite_numbers, read_json
from robustpose.utils.conventions import to_numpy as _to_numpy
from robustpose.utils.io import atomic_write_text

AUC_METHODS = ("trapezoid", "mmpose")


def pck_counts(dist: np.ndarray, visible: np.ndarray, norm: np.ndarray, thr: float,
               threshold_test: str = "<") -> tuple[np.ndarray, np.ndarray]:
    """(hits (K,), visible count (K,)) of ``dist / norm < thr`` (or ``<=``) over visible
    instances. dist, visible: (N, K); norm: (N,) px."""
    scaled = dist / norm[:, None]
    hit = (scaled < thr) if threshold_test == "<" else (scaled <= thr)
    return ((hit & visible).sum(axis=0).astype(np.float64),
            visible.sum(axis=0).astype(np.float64))


def per_joint_pck(dist: np.ndarray, visible: np.ndarray, norm: np.ndarray, thr: float,
                  threshold_test: str = "<") -> np.ndarray:
    """(K,) fraction of visible instances with ``dist / norm < thr`` (NaN for unseen joints).

    dist, visible: (N, K); norm: (N,) px.
    """
    hits, count = pck_counts(dist, visible, norm, thr, threshold_test)
    return np.divide(hits, count, out=np.full(dist.shape[1], np.nan), where=count > 0)


def box_pck_inputs(pred: np.ndarray, gt: np.ndarray, boxes: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one box normalisation: (dist (N, K) px, visible (N, K), norm (N,) px) with
    ``norm = max(box w, box h)``; a keypoint of a box without positive size counts nowhere.
    pred: (N, K, >=2) px; gt: (N, K, 3) px with visibility; boxes: (N, 4) xywh px."""
    visible = gt[:, :, 2] > 0
    dist = np.linalg.norm(pred[:, :, :2] - gt[:, :, :2], axis=2)
    box_norm = np.maximum(boxes[:, 2], boxes[:, 3])
    return dist, visible & (box_norm[:, None] > 0), np.where(box_norm > 0, box_norm, 1.0)


class BoxPCK:
    """Streaming box-normalised PCK@thr (the metric protocol: ``accumulate``, ``stats``,
    ``reset``): per-joint hits and visible counts summed over batches.

    ``stats()`` -> ``{'PCK': mean over joints seen | None, 'PCK_per_joint': [(K) | None]}``;
    with no visible keypoint at all (empty input included) ``PCK`` is None (absent, never
    0), as :func:`pck_auc_epe` gives."""

    def __init__(self, num_joints: int, thr: float = 0.1) -> None:
        self.num_joints, self.thr = int(num_joints), float(thr)
        self.reset()

    def reset(self) -> None:
        self.hits = np.zeros(self.num_joints)
        self.seen = np.zeros(self.num_joints)

    def accumulate(self, pred: Any, gt: Any, boxes: Any) -> None:
        """pred (N, K, >=2) px; gt (N, K, 3) px + visibility; boxes (N, 4) xywh px."""
        pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
        if len(pred) == 0:
            return
        hits, seen = pck_counts(*box_pck_inputs(pred, gt, np.asarray(boxes, np.float64)),
                                self.thr)
        self.hits += hits
        self.seen += seen

    def stats(self) -> dict[str, Any]:
        per = np.divide(self.hits, self.seen, out=np.full(self.num_joints, np.nan),
                        where=self.seen > 0)
        mean = _mean_over_joints(per)
        return {"PCK": None if np.isnan(mean) else mean,
                "PCK_per_joint": [None if np.isnan(v) else float(v) for v in per]}


def _mean_over_joints(values: np.ndarray) -> float:
    """Mean over the joints with a visible instance; NaN when none has one (absent,
    never 0: people with no visible keypoint have no accuracy to report)."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def pck_auc_epe(pred: np.ndarray, gt: np.ndarray, boxes: np.ndarray, thr: float = 0.2,
                auc_max: float = 30.0, auc_method: str = "trapezoid",
                threshold_test: str = "<") -> dict[str, Any]:
    """PCK@thr (box-normalised), AUC over 0..auc_max px, EPE (px).

    pred: (N, K, >=2) px; gt: (N, K, 3) px with visibility; boxes: (N, 4) xywh px.
    """
    if auc_method not in AUC_METHODS:
        raise ValueError(f"auc_method must be one of {AUC_METHODS}, got {auc_method!r}")
    visible = gt[:, :, 2] > 0
    dist, box_visible, box_norm = box_pck_inputs(pred, gt, boxes)
    per_joint = per_joint_pck(dist, box_visible, box_norm, thr, threshold_test)
    ones = np.ones(len(pred))
    if auc_method == "trapezoid":  # the RHD authors' EvalUtil: <=, linspace(0, max, 20), trapz
        thresholds = np.linspace(0.0, auc_max, 20)
        curve = np.array([_mean_over_joints(per_joint_pck(dist, visible, ones, t, "<="))
                          for t in thresholds])
        auc = float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(thresholds)) / auc_max)
    else:  # mmpose keypoint_auc(norm_factor=auc_max, num_thrs=20): <, mean of the 20 values
        thresholds = auc_max * np.arange(20) / 20.0
        curve = np.array([_mean_over_joints(per_joint_pck(dist, visible, ones, t, "<"))
                          for t in thresholds])
        auc = float(curve.mean())
    if not visible.any():  # no visible keypoint: no accuracy (absent, never 0 or NaN)
        pck = auc = epe = None
    else:
        pck, epe = _mean_over_joints(per_joint), float(dist[visible].mean())
        pck = None if np.isnan(pck) else pck  # every visible box of zero size
    return {"PCK": pck, "AUC": auc, "EPE": epe,
            "PCK_per_joint": [None if np.isnan(v) else float(v) for v in per_joint],
            "pck_thr": thr, "auc_max_px": auc_max, "auc_method": auc_method,
            "threshold_test": threshold_test, "num_instances": int(len(pred)),
            "num_visible": int(visible.sum())}


def load_pck_ground_truth(annotation_file: str | Path) -> dict[str, Any]:
    """People of a COCO-format file (e.g. RHD hands) with keypoints and a box.

    Returns ``keypoints`` (M, K, 3), ``boxes`` (M, 4), ``image_ids``, ``ann_ids``, ``names``.
    """
    path = Path(annotation_file)
    data = read_json(path, "annotation file")
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise ValueError(f"{path}: not a COCO annotation file (needs images, annotations, categories)")
    cats = [c for c in data["categories"] if isinstance(c, dict) and c.get("keypoints")]
    if not cats:
        raise ValueError(f"{path}: no category with a 'keypoints' list")
    k = len(cats[0]["keypoints"])
    kps, boxes, image_ids, ann_ids = [], [], [], []
    for i, ann in enumerate(data["annotations"]):
        if ann.get("category_id") != cats[0]["id"] or ann.get("iscrowd", 0) or "keypoints" not in ann:
            continue
        where = f"annotation {ann.get('id', i)} (image_id {ann.get('image_id')})"
        kps.append(finite_numbers(ann["keypoints"], path, where, "keypoints", 3 * k).reshape(k, 3))
        boxes.append(finite_numbers(ann.get("bbox"), path, where, "bbox", 4))
        image_ids.append(ann.get("image_id")), ann_ids.append(ann.get("id", i))
    if not kps:
        raise ValueError(f"{path}: no annotation with keypoints")
    return {"keypoints": np.stack(kps), "boxes": np.stack(boxes), "image_ids": image_ids,
            "ann_ids": ann_ids, "names": list(cats[0]["keypoints"])}


def _box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter + 1e-12)


def match_instances(gt: Mapping[str, Any], image_ids: Sequence[Any], boxes: np.ndarray | None,
                    ann_ids: Sequence[Any] | None, source: str) -> np.ndarray:
    """Ground-truth row of every prediction: by annotation id, by the only person of the
    image, or by the highest box IoU among the image's people."""
    by_ann = {a: r for r, a in enumerate(gt["ann_ids"])}
    by_image: dict[Any, list[int]] = {}
    for r, img in enumerate(gt["image_ids"]):
        by_image.setdefault(img, []).append(r)
    rows = []
    for i, img in enumerate(image_ids):
        if ann_ids is not None:
            if ann_ids[i] not in by_ann:
                raise ValueError(f"{source}: prediction {i}: annotation id {ann_ids[i]!r} unknown")
            rows.append(by_ann[ann_ids[i]])
            continue
        cand = by_image.get(img)
        if not cand:
            raise ValueError(f"{source}: prediction {i}: image id {img!r} has no annotated person")
        if len(cand) == 1:
            rows.append(cand[0])
        elif boxes is None:
            raise ValueError(f"{source}: prediction {i}: image {img!r} has {len(cand)} people; "
                             "give 'bbox' or 'ann_id' to match them")
        else:
            ious = _box_iou(boxes[i], gt["boxes"][cand])
            rows.append(cand[int(np.argmax(ious))])
    return np.asarray(rows, dtype=np.int64)


class PCKMetric:
    """PCK (box-normalised), AUC over 0..30 px and EPE against a COCO-format file.

    Args:
        annotation_file: COCO-format keypoint json (one box per instance, e.g. RHD).
        thr: PCK threshold as a fraction of max(box w, h) (0.2).
        auc_max: AUC range in px (30); auc_method: 'trapezoid' or 'mmpose' (module doc).
        threshold_test: the PCK test, '<' (mmpose, default) or '<='; the AUC test is
            fixed by ``auc_method``.
    """

    def __init__(self, annotation_file: str | Path, thr: float = 0.2, auc_max: float = 30.0,
                 auc_method: str = "trapezoid", threshold_test: str = "<"):
        if auc_method not in AUC_METHODS:
            raise ValueError(f"auc_method must be one of {AUC_METHODS}, got {auc_method!r}")
        if threshold_test not in ("<", "<="):
            raise ValueError(f"threshold_test must be '<' or '<=', got {threshold_test!r}")
        self.path = Path(annotation_file)
        self.gt = load_pck_ground_truth(self.path)
        self.thr, self.auc_max, self.auc_method = float(thr), float(auc_max), auc_method
        self.threshold_test = threshold_test
        self.reset()

    @property
    def conventions(self) -> dict[str, Any]:
        return {"metric": "pck_auc_epe", "pck_thr": self.thr, "pck_norm": "max(box w, h)",
                "auc_max_px": self.auc_max, "auc_method": self.auc_method,
                "threshold_test": self.threshold_test}

    def reset(self) -> None:
        self._rows: list[np.ndarray] = []
        self._pred: list[np.ndarray] = []

    def accumulate(self, keypoints: Any, meta: Mapping[str, Any]) -> None:
        """Add (N, K, 2|3) predictions in image px; meta: ``image_id`` and ``bbox`` (N, 4)
        or ``ann_id`` to find each prediction's ground truth."""
        kps = _to_numpy(keypoints).astype(np.float64)
        k = len(self.gt["names"])
        if kps.ndim != 3 or kps.shape[1] != k or kps.shape[2] < 2:
            raise ValueError(f"predictions for {self.path}: keypoints must be (N, {k}, 2|3), "
                             f"got {tuple(kps.shape)}")
        ids = [i.item() if hasattr(i, "item") else i for i in _to_numpy(meta["image_id"]).reshape(-1)]
        check_finite_array(kps[:, :, :2], f"predictions for {self.path}", "keypoints", np.array(ids))
        boxes = _to_numpy(meta["bbox"]).astype(np.float64).reshape(-1, 4) if meta.get("bbox") is not None else None
        ann = meta.get("ann_id")
        ann_ids = [a.item() if hasattr(a, "item") else a for a in _to_numpy(ann).reshape(-1)] if ann is not None else None
        self._rows.append(match_instances(self.gt, ids, boxes, ann_ids, f"predictions for {self.path}"))
        self._pred.append(kps[:, :, :2])

    def stats(self) -> dict[str, Any]:
        """``PCK``, ``AUC`` (fractions), ``EPE`` (px), per-joint PCK and the settings."""
        if not self._pred:
            raise ValueError(f"predictions for {self.path}: nothing accumulated")
        rows = np.concatenate(self._rows)
        return pck_auc_epe(np.concatenate(self._pred), self.gt["keypoints"][rows],
                           self.gt["boxes"][rows], self.thr, self.auc_max, self.auc_method,
                           self.threshold_test)

    def predictions(self) -> list[dict]:
        """COCO-style results: image_id, ann_id, keypoints (flat x, y, 1)."""
        out = []
        for rows, pred in zip(self._rows, self._pred):
            for r, p in zip(rows, pred):
                flat = np.concatenate([p, np.ones((len(p), 1))], axis=1).reshape(-1)
                out.append({"image_id": self.gt["image_ids"][r], "ann_id": self.gt["ann_ids"][r],
                            "keypoints": [float(v) for v in flat]})
        return out

    def write_predictions(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.predictions()))
