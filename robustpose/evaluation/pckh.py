"""MPII PCKh with the official conventions (as reimplemented by HRNet and mmpose).

- head size = 0.6 x ||head box bottom-right - top-left|| (``SC_BIAS = 0.6``), or the
  ``head_size`` field of the annotation (already the normaliser, e.g. the stacked-hourglass
  ``normalize`` values);
- a joint counts when it is annotated (``joints_vis`` > 0 / ``1 - jnt_missing``);
- hit: ``error / head_size <= thr`` (HRNet, the default) or ``< thr`` (mmpose), recorded
  as ``threshold_test`` in the stats;
- ``Mean`` excludes pelvis (6) and thorax (7) and weights every other joint by its number
  of annotated instances; ``Mean@0.1`` is computed at 0.1. HRNet's table reports
  ``Mean@0.1`` from the 0.11 bin of its 0:0.01:0.5 curve; that value is given as
  ``PCKh@0.1_hrnet_bin`` so both can be compared.

Ground truth comes from the HRNet json (joints in MATLAB 1-based pixels) or from the
official ``gt_valid.mat`` (``pos_gt_src``, ``jnt_missing``, ``headboxes_src``), both in the
1-based MATLAB frame. Predictions from the toolkit are 0-based image pixels, so
``pred_offset=1.0`` (default) adds 1 px before comparing, as HRNet (``preds + 1.0``) and
mmpose do. Use ``pred_offset=0`` for predictions already in the annotation's frame.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from robustpose.evaluation.results_io import check_finite_array, finite_numbers, read_json
from robustpose.utils.conventions import to_numpy as _to_numpy
from robustpose.utils.io import atomic_write_text

SC_BIAS = 0.6
MPII_JOINTS = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
               "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
               "right_shoulder", "left_shoulder", "left_elbow", "left_wrist")
#: HRNet's summary groups (left/right averaged), in its table order.
GROUPS = {"Head": (9,), "Shoulder": (13, 12), "Elbow": (14, 11), "Wrist": (15, 10),
          "Hip": (3, 2), "Knee": (4, 1), "Ankle": (5, 0)}
EXCLUDED_FROM_MEAN = (6, 7)  # pelvis, thorax
THRESHOLD_TESTS = ("<=", "<")


def load_mpii_ground_truth(path: str | Path) -> dict[str, Any]:
    """Read MPII ground truth.

    Returns dict with ``joints`` (N, 16, 2) MATLAB px, ``visible`` (N, 16) bool,
    ``head_size`` (N,) px (0.6 x head-box diagonal), ``images`` (N,) names or None.
    Accepts the HRNet json (needs ``head_size`` or ``headbox`` [x1, y1, x2, y2] per person)
    or the official ``gt_valid.mat``.
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return _load_gt_mat(path)
    data = read_json(path, "MPII annotation file")
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty JSON list of people (HRNet MPII layout)")
    joints, visible, heads, images = [], [], [], []
    for i, person in enumerate(data):
        where = f"person {i} ({person.get('image') if isinstance(person, dict) else '?'})"
        if not isinstance(person, dict) or "joints" not in person or "joints_vis" not in person:
            raise ValueError(f"{path}: {where}: needs 'joints' and 'joints_vis'")
        j = finite_numbers(person["joints"], path, where, "joints", length=32).reshape(16, 2)
        v = finite_numbers(person["joints_vis"], path, where, "joints_vis", length=16)
        if "head_size" in person:
            h = finite_numbers([person["head_size"]], path, where, "head_size")[0]
        elif "headbox" in person:
            box = finite_numbers(person["headbox"], path, where, "headbox", length=4)
            h = SC_BIAS * float(np.hypot(box[2] - box[0], box[3] - box[1]))
        else:
            raise ValueError(f"{path}: {where}: no 'head_size' or 'headbox' for PCKh")
        if h <= 0:
            raise ValueError(f"{path}: {where}: head size {h} is not positive")
        joints.append(j), visible.append(v > 0), heads.append(h), images.append(person.get("image"))
    return {"joints": np.stack(joints), "visible": np.stack(visible),
            "head_size": np.asarray(heads, dtype=np.float64), "images": images}


def _load_gt_mat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MPII ground-truth file not found")
    try:
        mat = loadmat(str(path))
        missing = np.asarray(mat["jnt_missing"], dtype=np.float64)      # (16, N)
        pos = np.asarray(mat["pos_gt_src"], dtype=np.float64)           # (16, 2, N)
        boxes = np.asarray(mat["headboxes_src"], dtype=np.float64)      # (2, 2, N)
    except KeyError as exc:
        raise ValueError(f"{path}: not an MPII gt_valid.mat (missing {exc})") from None
    except Exception as exc:  # scipy raises several types for non-mat files
        raise ValueError(f"{path}: cannot read as a MATLAB file ({type(exc).__name__})") from None
    head = SC_BIAS * np.linalg.norm(boxes[1] - boxes[0], axis=0)
    return {"joints": np.transpose(pos, (2, 0, 1)), "visible": (1 - missing).T > 0,
            "head_size": head, "images": [None] * pos.shape[2]}


def pckh_table(pred: np.ndarray, gt: Mapping[str, Any], threshold_test: str = "<=",
               thr: float = 0.5) -> dict[str, Any]:
    """PCKh numbers (percent) of predictions (N, 16, 2) in the ground truth's frame."""
    if threshold_test not in THRESHOLD_TESTS:
        raise ValueError(f"threshold_test must be '<=' or '<', got {threshold_test!r}")
    visible = np.asarray(gt["visible"], dtype=bool)
    err = np.linalg.norm(pred[:, :, :2] - gt["joints"], axis=2) / gt["head_size"][:, None]
    count = visible.sum(axis=0).astype(np.float64)                       # (16,)
    mean_weights = count.copy()
    mean_weights[list(EXCLUDED_FROM_MEAN)] = 0.0

    def per_joint(t: float) -> np.ndarray:
        hit = (err <= t) if threshold_test == "<=" else (err < t)
        hits = (hit & visible).sum(axis=0).astype(np.float64)
        return np.divide(100.0 * hits, count, out=np.full(16, np.nan), where=count > 0)

    def mean(values: np.ndarray) -> float:
        w = mean_weights
        return float(np.sum(np.where(w > 0, values, 0.0) * w) / w.sum()) if w.sum() > 0 else float("nan")

    out: dict[str, Any] = {"threshold_test": threshold_test}
    for tag, t in (("", thr), ("@0.1", 0.1)):
        pj = per_joint(t)
        out["PCKh" + tag] = mean(pj)
        for group, idx in GROUPS.items():
            out[group + tag] = float(np.mean(pj[list(idx)]))
        for j, name in enumerate(MPII_JOINTS):
            out[f"{name}{tag}"] = float(pj[j])
    out["PCKh@0.1_hrnet_bin"] = mean(per_joint(np.arange(0, 0.5 + 0.01, 0.01)[11]))
    out["joint_counts"] = [int(c) for c in count]
    out["num_people"] = int(len(pred))
    return out


def ground_truth_from_records(records: Sequence[Any]) -> dict[str, Any]:
    """MPII ground truth from ``robustpose.data`` person records (0-based joints).

    Uses ``record.keypoints`` (16, 3), ``extra['head_size']`` (px) and, when present,
    ``extra['eval_visible']`` (from gt_valid.mat's ``jnt_missing``) for visibility.
    """
    joints, visible, heads, images = [], [], [], []
    for i, rec in enumerate(records):
        extra = getattr(rec, "extra", {}) or {}
        name = extra.get("image_name", getattr(rec, "image_id", "?"))
        kps = getattr(rec, "keypoints", None)
        if kps is None or np.asarray(kps).shape[0] != 16:
            raise ValueError(f"MPII records: record {i} ({name}) has no 16-joint keypoints")
        head = extra.get("head_size")
        if head is None or not np.isfinite(head) or head <= 0:
            raise ValueError(f"MPII records: record {i} ({name}) has no head size for PCKh "
                             "(annotation 'head_size' field or gt_valid.mat head boxes)")
        kps = np.asarray(kps, dtype=np.float64)
        vis = extra.get("eval_visible")
        joints.append(kps[:, :2])
        visible.append(np.asarray(vis, dtype=bool) if vis is not None else kps[:, 2] > 0)
        heads.append(float(head)), images.append(name)
    if not joints:
        raise ValueError("MPII records: no people to evaluate")
    return {"joints": np.stack(joints), "visible": np.stack(visible),
            "head_size": np.asarray(heads), "images": images}


class PCKhMetric:
    """MPII PCKh@0.5 / @0.1 of top-down predictions.

    Args:
        annotation_file: HRNet MPII json (with ``head_size`` or ``headbox``), the official
            gt_valid.mat, or a list of ``robustpose.data`` MPII records (the people to score,
            in the order of the dataset's ``meta['index']``).
        threshold_test: '<=' (HRNet, default) or '<' (mmpose).
        thr: main threshold (0.5).
        pred_offset: px added to predictions before comparing. Default: 1.0 for a file (the
            toolkit's 0-based predictions vs the 1-based MATLAB ground truth, HRNet's
            ``preds + 1``), 0.0 for records (already 0-based).
        missing: people without a prediction: 'error' (default), 'skip' (score the others)
            or 'miss' (count their visible joints as misses).
        allow_missing: shorthand for ``missing='skip'``.
    """

    def __init__(self, annotation_file: str | Path | Sequence[Any], threshold_test: str = "<=",
                 thr: float = 0.5, pred_offset: float | None = None, missing: str = "error",
                 allow_missing: bool = False):
        if threshold_test not in THRESHOLD_TESTS:
            raise ValueError(f"threshold_test must be '<=' or '<', got {threshold_test!r}")
        if missing not in ("error", "skip", "miss"):
            raise ValueError(f"missing must be 'error', 'skip' or 'miss', got {missing!r}")
        if isinstance(annotation_file, (str, Path)):
            self.path = Path(annotation_file)
            self.gt = load_mpii_ground_truth(self.path)
            default_offset = 1.0
        else:
            self.path = Path("<MPII records>")
            self.gt = ground_truth_from_records(list(annotation_file))
            default_offset = 0.0
        self.threshold_test, self.thr = threshold_test, float(thr)
        self.pred_offset = default_offset if pred_offset is None else float(pred_offset)
        self.missing = "skip" if allow_missing and missing == "error" else missing
        self.reset()

    @property
    def conventions(self) -> dict[str, Any]:
        return {"metric": "mpii_pckh", "threshold_test": self.threshold_test, "thr": self.thr,
                "head_size": "0.6 x head-box diagonal", "pred_offset": self.pred_offset,
                "mean_excludes": ["pelvis", "thorax"], "missing": self.missing}

    def reset(self) -> None:
        n = len(self.gt["head_size"])
        self._pred = np.full((n, 16, 3), np.nan)
        self._have = np.zeros(n, dtype=bool)
        self._next = 0

    def accumulate(self, keypoints: Any, meta: Mapping[str, Any] | None = None) -> None:
        """Add (N, 16, 2 or 3) predictions in image px (0-based, see ``pred_offset``).

        ``meta['index']`` (N,) gives each person's position in the annotation file; without
        it, predictions are taken to follow the annotation order.
        """
        kps = _to_numpy(keypoints).astype(np.float64)
        if kps.ndim != 3 or kps.shape[1] != 16 or kps.shape[2] < 2:
            raise ValueError(f"predictions for {self.path}: keypoints must be (N, 16, 2|3), "
                             f"got {tuple(kps.shape)}")
        n = len(kps)
        if meta is not None and meta.get("index") is not None:
            index = _to_numpy(meta["index"]).astype(np.int64).reshape(-1)
        else:
            index = np.arange(self._next, self._next + n)
        total = len(self._have)
        if len(index) != n or (n and (index.min() < 0 or index.max() >= total)):
            raise ValueError(f"predictions for {self.path}: person index outside 0..{total - 1}")
        check_finite_array(kps[:, :, :2], f"predictions for {self.path}", "keypoints", index)
        if self._have[index].any() or len(set(index.tolist())) != n:
            raise ValueError(f"predictions for {self.path}: person {int(index[0])} predicted twice")
        pred = np.zeros((n, 16, 3))
        cols = min(kps.shape[2], 3)
        pred[:, :, :cols] = kps[:, :, :cols]
        pred[:, :, :2] += self.pred_offset
        self._pred[index], self._have[index] = pred, True
        self._next = int(index.max()) + 1 if n else self._next

    def stats(self) -> dict[str, Any]:
        """``PCKh`` (Mean@0.5), ``PCKh@0.1``, HRNet groups and the 16 joints (percent)."""
        have = self._have
        if not have.all() and self.missing == "error":
            first = int(np.flatnonzero(~have)[0])
            raise ValueError(f"predictions for {self.path}: {int((~have).sum())} of {len(have)} "
                             f"people have no prediction (first: person {first}, "
                             f"{self.gt['images'][first]})")
        if self.missing == "miss":  # a missing person's joints can never be hits
            pred = np.where(have[:, None, None], self._pred, np.inf)
            rows = np.ones_like(have)
        else:
            pred, rows = self._pred, have
        gt = {k: (np.asarray(v)[rows] if k != "images" else None) for k, v in self.gt.items()}
        out = pckh_table(pred[rows], gt, self.threshold_test, self.thr)
        out["num_missing"] = int((~have).sum())
        return out

    def predictions(self) -> list[dict]:
        """HRNet-style results (annotation frame): image, index, joints (16 x 3)."""
        return [{"index": int(i), "image": self.gt["images"][i],
                 "joints": self._pred[i].tolist()} for i in np.flatnonzero(self._have)]

    def write_predictions(self, path: str | Path) -> None:
        """Write :meth:`predictions` as JSON (coordinates already offset by ``pred_offset``)."""
        atomic_write_text(path, json.dumps(self.predictions()))
