"""COCO OKS AP through pycocotools, with HRNet's rescoring and OKS-NMS in front of it
(or mmpose CocoMetric's other ``score_mode`` / ``nms_mode`` choices).

``CocoKeypointMetric`` is the metric object of a top-down run (openpifpaf-like interface:
``accumulate`` / ``stats`` / ``write_predictions``); ``evaluate_coco_results`` scores an
existing COCO results list (what ``robustpose evaluate --format coco`` does). Both end in
the official ``COCOeval(gt, dt, 'keypoints')`` with ``params.kpt_oks_sigmas`` set to the
dataset's sigmas, so CrowdPose (14), RHD (21) or any K work. The data-set conventions
pycocotools leaves to the caller (the OKS area rule, CrowdPose's crowd-index AP(E/M/H),
annotation ids it can match) live in :mod:`robustpose.evaluation.coco_conventions`.
"""
from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from robustpose.evaluation.coco_conventions import (AREA_RULES, CROWD_INDEX_EDGES,
                                                   apply_area_rule, crowd_index_subsets,
                                                   renumber_annotations, resolve_sigmas)
from robustpose.evaluation.oks_nms import (NMS_MODES, SCORE_MODES, areas_from_scale,
                                           oks_nms, person_scores)
from robustpose.evaluation.results_io import (as_list_of_dicts, check_finite_array,
                                              finite_numbers, read_json)
from robustpose.utils.conventions import to_numpy as _to_numpy
from robustpose.utils.io import atomic_write_text

#: pycocotools ``COCOeval.stats`` order for iouType 'keypoints'.
COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


@dataclass
class CocoGroundTruth:
    """A validated COCO keypoint annotation file, ready for pycocotools."""
    path: Path
    dataset: dict          # cleaned copy: num_keypoints / iscrowd filled, area by area_rule,
    #                        annotation ids renumbered 1..N (pycocotools cannot match id 0)
    category_id: int       # the keypoint category
    keypoint_names: list[str]
    sigmas: np.ndarray     # (K,)
    image_ids: set
    area_rule: str = "json"            # how each GT area (the OKS scale) was made
    annotation_ids: list = field(default_factory=list)  # the user's id of internal id i + 1
    crowd_subsets: dict | None = None  # AP(E/M/H) image ids, when images carry crowdIndex

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)


def load_coco_ground_truth(annotation_file: str | Path,
                           sigmas: Sequence[float] | None = None,
                           area_rule: str | None = None) -> CocoGroundTruth:
    """Read and validate a COCO keypoint annotation file.

    Checks: JSON object with images/annotations/categories; one category with keypoints;
    every annotation's keypoint list is 3*K long and finite (nested K x 3 lists, as in
    RHD, are flattened). Fills ``num_keypoints``
    (count of v > 0; set to 0 when no v > 0, so COCOeval ignores the person) and ``iscrowd`` (0) where missing, as pycocotools needs both; sets
    ``area`` by ``area_rule`` (``'json'``, ``'bbox'``, ``'crowdpose'``; None: the set's own
    rule, see :func:`~robustpose.evaluation.coco_conventions.apply_area_rule`); renumbers
    the annotation ids 1..N (the user's ids stay in ``annotation_ids``).
    """
    path = Path(annotation_file)
    data = read_json(path, "annotation file")
    if isinstance(data, list):
        raise ValueError(f"{path}: a JSON list, not a COCO annotation file (MPII HRNet layout? "
                         "use --format mpii / PCKhMetric)")
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise ValueError(f"{path}: not a COCO annotation file (needs images, annotations, categories)")
    kp_cats = [c for c in data["categories"] if isinstance(c, dict) and c.get("keypoints")]
    if not kp_cats:
        raise ValueError(f"{path}: no category with a 'keypoints' list")
    cat = kp_cats[0]
    names = [str(n) for n in cat["keypoints"]]
    k = len(names)
    dataset = {key: value for key, value in data.items() if key != "annotations"}
    anns = []
    for i, ann in enumerate(data["annotations"]):
        where = f"annotation {ann.get('id', i)} (image_id {ann.get('image_id')})"
        if ann.get("category_id") != cat["id"]:
            continue
        ann = dict(ann)
        if "keypoints" in ann:
            kps = finite_numbers(ann["keypoints"], path, where, "keypoints", length=3 * k)
            ann["keypoints"] = kps.tolist()  # flat x, y, v (RHD nests them as K x 3)
            ann.setdefault("num_keypoints", int((kps[2::3] > 0).sum()))
            if not (kps[2::3] > 0).any():
                # no visible keypoint: COCOeval's ignore rule (num_keypoints == 0), whatever
                # count the file declares; else its box rule scores any prediction inside
                # the box as OKS 1 (AP 100 on an unlabelled person)
                ann["num_keypoints"] = 0
        else:
            ann.setdefault("num_keypoints", 0)
        ann.setdefault("iscrowd", 0)
        if "area" not in ann and "bbox" not in ann:
            raise ValueError(f"{path}: {where}: has neither 'area' nor 'bbox'")
        anns.append(ann)
    rule = apply_area_rule(anns, names, area_rule, path)
    dataset["annotations"] = anns
    dataset["categories"] = [cat]
    if not dataset["images"]:
        raise ValueError(f"{path}: no images")
    return CocoGroundTruth(path=path, dataset=dataset, category_id=cat["id"],
                           keypoint_names=names,
                           sigmas=resolve_sigmas(names, sigmas, path, cat, data),
                           image_ids={img["id"] for img in dataset["images"]},
                           area_rule=rule, annotation_ids=renumber_annotations(anns),
                           crowd_subsets=crowd_index_subsets(dataset["images"]))


def check_coco_results(results: Any, gt: CocoGroundTruth, source: str | Path) -> list[dict]:
    """Validate a COCO keypoint results list against ``gt``; returns cleaned deep copies.

    Errors name ``source`` and the entry: unknown image id, wrong keypoint count, NaN/inf
    coordinates or score, a category that is not the keypoint category.
    """
    results = as_list_of_dicts(results, source)
    clean = []
    for i, entry in enumerate(results):
        where = f"entry {i} (image_id {entry.get('image_id')!r})"
        if "image_id" not in entry or "keypoints" not in entry:
            raise ValueError(f"{source}: entry {i}: needs 'image_id' and 'keypoints'")
        if entry["image_id"] not in gt.image_ids:
            raise ValueError(f"{source}: {where}: image id not in {gt.path.name}")
        kps = finite_numbers(entry["keypoints"], source, where, "keypoints",
                             length=3 * gt.num_keypoints, stride=3)
        if "score" not in entry:  # COCO results carry one; a silent 1.0 would rank them all alike
            raise ValueError(f"{source}: {where}: no 'score' (a COCO results entry needs "
                             "its person score)")
        score = finite_numbers([entry["score"]], source, where, "score")[0]
        cat = entry.get("category_id", gt.category_id)
        if cat != gt.category_id:
            raise ValueError(f"{source}: {where}: category_id {cat!r} is not the keypoint "
                             f"category {gt.category_id}")
        out = {k: copy.deepcopy(v) for k, v in entry.items() if k not in ("bbox", "area", "id")}
        out.update(image_id=entry["image_id"], category_id=cat,
                   keypoints=[float(v) for v in kps], score=float(score))
        clean.append(out)
    return clean


def _quiet(verbose: bool):
    return contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())


def evaluate_coco_results(gt: CocoGroundTruth, results: list[dict],
                          verbose: bool = False) -> dict[str, float]:
    """COCOeval 'keypoints' of already-validated results; returns the 10 summary numbers,
    plus CrowdPose's ``AP(E)``, ``AP(M)``, ``AP(H)`` when the images carry ``crowdIndex``
    (AP of COCOeval restricted to each subset's images; -1 for a subset without people,
    as pycocotools reports an empty range).

    ``verbose`` lets pycocotools print its progress and summary table.
    """
    from pycocotools.cocoeval import COCOeval

    with _quiet(verbose):
        coco_gt, coco_dt = _coco_pair(gt, results)

        def run(image_ids: list | None) -> np.ndarray:
            ev = COCOeval(coco_gt, coco_dt, "keypoints")
            ev.params.useSegm = None
            ev.params.kpt_oks_sigmas = np.asarray(gt.sigmas, dtype=np.float64)
            if image_ids is not None:
                ev.params.imgIds = sorted(image_ids)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            return ev.stats

        out = {name: float(value) for name, value in zip(COCO_STAT_NAMES, run(None))}
        for name, ids in (gt.crowd_subsets or {}).items():
            # crowdposetools scores a subset by re-running COCOeval on its imgIds alone
            out[name] = float(run(ids)[0]) if ids else -1.0
    return out


def _coco_pair(gt: CocoGroundTruth, results: list[dict]) -> tuple[Any, Any]:
    """pycocotools COCO objects of the ground truth and the results (stdout not captured)."""
    from pycocotools.coco import COCO

    coco_gt = COCO()
    coco_gt.dataset = copy.deepcopy(gt.dataset)
    coco_gt.createIndex()
    if results:
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
    else:  # loadRes cannot take an empty list; no detections -> AP 0
        coco_dt = COCO()
        coco_dt.dataset = {"images": list(gt.dataset["images"]), "annotations": [],
                           "categories": copy.deepcopy(gt.dataset["categories"])}
        coco_dt.createIndex()
    return coco_gt, coco_dt


def _choose(name: str, value: Any, alias: str, implied: Any, default: Any) -> Any:
    """``value`` (the mmpose name) or what the older ``alias`` implies, never two answers."""
    if value is not None and implied is not None and value != implied:
        raise ValueError(f"CocoKeypointMetric: {name}={value!r} contradicts {alias}; "
                         f"give {name} only")
    return value if value is not None else (implied if implied is not None else default)


class CocoKeypointMetric:
    """OKS AP of top-down predictions against a COCO-format annotation file.

    The person-score and NMS settings carry mmpose CocoMetric's names; the defaults are
    HRNet's protocol (the AdvMix COCO-C numbers).

    Args:
        annotation_file: COCO keypoint json (COCO, OCHuman, CrowdPose, RHD, ...).
        sigmas: per-keypoint OKS sigmas; default from the preset matching the category's
            keypoint names, else COCO-17.
        score_mode: the person score COCOeval ranks by: ``'bbox_keypoint'`` (default, HRNet:
            box score x mean of the keypoint scores ``> keypoint_score_thr``), ``'keypoint'``
            (plain mean of the K keypoint scores) or ``'bbox'`` (box score only).
        nms_mode: ``'oks_nms'`` (default: HRNet's greedy OKS-NMS per image) or ``'none'``.
        keypoint_score_thr: threshold of the ``bbox_keypoint`` mean (0.2).
        nms_thr: NMS drops a person whose OKS with a better one is ``> nms_thr`` (0.9).
        area_source: 'scale' (HRNet: NMS area = ``prod(scale * 200)``) or 'meta' (``meta['area']``).
        area_rule: the GT area COCOeval scales OKS by: ``'json'`` (the json's ``area``),
            ``'bbox'`` (``w * h`` of the GT box) or ``'crowdpose'`` (``0.53 * w * h``, as
            crowdposetools); None: CrowdPose's keypoint names -> crowdpose, else the json's
            ``area`` (``w * h`` where it has none, with one warning line).
        verbose: let pycocotools print.
        use_nms, vis_thr, rescore: the older names, still accepted: ``use_nms=False`` is
            ``nms_mode='none'``, ``vis_thr`` is ``keypoint_score_thr``, ``rescore=False``
            is ``score_mode='bbox'``. Giving both names with different answers is an error.
    """

    def __init__(self, annotation_file: str | Path, sigmas: Sequence[float] | None = None,
                 use_nms: bool | None = None, nms_thr: float = 0.9,
                 vis_thr: float | None = None, rescore: bool | None = None,
                 area_source: str = "scale", verbose: bool = False, *,
                 score_mode: str | None = None, nms_mode: str | None = None,
                 keypoint_score_thr: float | None = None, area_rule: str | None = None):
        if area_rule is not None and area_rule not in AREA_RULES:
            raise ValueError(f"CocoKeypointMetric: area_rule must be one of "
                             f"{', '.join(AREA_RULES)}, got {area_rule!r}")
        if area_source not in ("scale", "meta"):
            raise ValueError(f"area_source must be 'scale' or 'meta', got {area_source!r}")
        self.score_mode = _choose("score_mode", score_mode, f"rescore={rescore!r}",
                                  None if rescore is None else
                                  ("bbox_keypoint" if rescore else "bbox"), "bbox_keypoint")
        self.nms_mode = _choose("nms_mode", nms_mode, f"use_nms={use_nms!r}",
                                None if use_nms is None else ("oks_nms" if use_nms else "none"),
                                "oks_nms")
        if self.score_mode not in SCORE_MODES:
            raise ValueError(f"CocoKeypointMetric: score_mode must be one of "
                             f"{', '.join(SCORE_MODES)}, got {self.score_mode!r}")
        if self.nms_mode not in NMS_MODES:
            raise ValueError(f"CocoKeypointMetric: nms_mode must be one of "
                             f"{', '.join(NMS_MODES)}, got {self.nms_mode!r}")
        thr = _choose("keypoint_score_thr", keypoint_score_thr, f"vis_thr={vis_thr!r}",
                      vis_thr, 0.2)
        for what, number in (("keypoint_score_thr", thr), ("nms_thr", nms_thr)):
            if isinstance(number, bool) or not isinstance(number, (int, float, np.number)) \
                    or not np.isfinite(number):
                raise ValueError(f"CocoKeypointMetric: {what} must be a finite number, "
                                 f"got {number!r}")
        for what, number in (("keypoint_score_thr", thr), ("nms_thr", nms_thr)):
            # keypoint scores and OKS lie in [0, 1]: a threshold of 5 keeps no keypoint,
            # an nms_thr of 2 suppresses nothing while the card says oks_nms
            if not 0.0 <= float(number) <= 1.0:
                raise ValueError(f"CocoKeypointMetric: {what} must be in [0, 1], "
                                 f"got {number!r}")
        self.keypoint_score_thr, self.nms_thr = float(thr), float(nms_thr)
        self.gt = load_coco_ground_truth(annotation_file, sigmas, area_rule)
        self.area_source, self.verbose = area_source, verbose
        self.reset()

    # the older attribute names, read-only
    @property
    def use_nms(self) -> bool:
        return self.nms_mode == "oks_nms"

    @property
    def vis_thr(self) -> float:
        return self.keypoint_score_thr

    @property
    def rescore(self) -> bool:
        return self.score_mode == "bbox_keypoint"

    @property
    def conventions(self) -> dict[str, Any]:
        """The post-processing and ground-truth settings, for the results store and
        ``run.json``: person score, NMS, the GT area rule (and the crowd-index edges of
        AP(E/M/H) when the set has them)."""
        out = {"metric": "coco_oks_ap", "score_mode": self.score_mode,
               "keypoint_score_thr": self.keypoint_score_thr, "nms_mode": self.nms_mode,
               "nms_thr": self.nms_thr, "nms_area": self.area_source,
               "area_rule": self.gt.area_rule, "sigmas": [float(s) for s in self.gt.sigmas]}
        if self.gt.crowd_subsets is not None:
            out["crowd_index_edges"] = list(CROWD_INDEX_EDGES)
        return out

    def reset(self) -> None:
        self._keypoints: list[np.ndarray] = []
        self._image_ids: list[Any] = []
        self._box_scores: list[np.ndarray] = []
        self._areas: list[np.ndarray] = []
        self._centers: list[np.ndarray] = []
        self._scales: list[np.ndarray] = []
        self._cached: list[dict] | None = None  # predictions() after the last accumulate

    def accumulate(self, keypoints: Any, meta: Mapping[str, Any]) -> None:
        """Add a batch of people.

        Args:
            keypoints: (N, K, 3) x, y, score in image px (numpy or torch).
            meta: arrays of length N: ``image_id``, ``score`` (box score), and ``scale``
                (N, 2) and/or ``area`` (N,); ``center`` (N, 2) is kept in the results.
        """
        kps = _to_numpy(keypoints).astype(np.float64)
        if kps.ndim != 3 or kps.shape[2] < 3 or kps.shape[1] != self.gt.num_keypoints:
            raise ValueError(f"predictions for {self.gt.path}: keypoints must be (N, "
                             f"{self.gt.num_keypoints}, 3), got {tuple(kps.shape)}")
        n = len(kps)
        ids = [i.item() if hasattr(i, "item") else i for i in _to_numpy(meta["image_id"]).reshape(-1)]
        if len(ids) != n:
            raise ValueError(f"predictions for {self.gt.path}: {len(ids)} image ids for {n} people")
        unknown = [i for i in ids if i not in self.gt.image_ids]
        if unknown:
            raise ValueError(f"predictions for {self.gt.path}: image id {unknown[0]!r} is not in "
                             f"the annotation file ({len(unknown)} unknown)")
        check_finite_array(kps[:, :, :3], f"predictions for {self.gt.path}", "keypoints", np.array(ids))
        box = _to_numpy(meta.get("score", np.ones(n))).astype(np.float64).reshape(-1)
        scale = meta.get("scale")
        area = meta.get("area")
        if self.area_source == "scale" and scale is not None:
            area_arr = areas_from_scale(_to_numpy(scale))
        elif area is not None:
            area_arr = _to_numpy(area).astype(np.float64).reshape(-1)
        else:
            raise ValueError(f"predictions for {self.gt.path}: meta needs 'scale' or 'area'")
        center = _to_numpy(meta["center"]).reshape(n, 2) if meta.get("center") is not None else np.zeros((n, 2))
        scale_arr = _to_numpy(scale).reshape(n, 2) if scale is not None else np.zeros((n, 2))
        self._keypoints.append(kps[:, :, :3])
        self._image_ids.extend(ids)
        self._box_scores.append(box)
        self._areas.append(area_arr)
        self._centers.append(center.astype(np.float64))
        self._scales.append(scale_arr.astype(np.float64))
        self._cached = None

    def predictions(self) -> list[dict]:
        """Scored (``score_mode``) and, with ``nms_mode='oks_nms'``, OKS-NMS'ed predictions in
        COCO results format (what gets evaluated).
        Computed once per accumulated state (stats and write_predictions share it)."""
        if self._cached is None:
            self._cached = self._postprocess()
        return self._cached

    def _postprocess(self) -> list[dict]:
        if not self._keypoints:
            return []
        kps = np.concatenate(self._keypoints)
        box = np.concatenate(self._box_scores)
        areas = np.concatenate(self._areas)
        centers, scales = np.concatenate(self._centers), np.concatenate(self._scales)
        scores = person_scores(kps, box, self.score_mode, self.keypoint_score_thr)
        by_image: dict[Any, list[int]] = {}
        for idx, image_id in enumerate(self._image_ids):
            by_image.setdefault(image_id, []).append(idx)
        results = []
        for image_id, idxs in by_image.items():
            idxs_arr = np.asarray(idxs)
            keep = (oks_nms(kps[idxs_arr], scores[idxs_arr], areas[idxs_arr], self.gt.sigmas,
                            self.nms_thr) if self.nms_mode == "oks_nms" else range(len(idxs_arr)))
            for j in keep:
                i = int(idxs_arr[j])
                results.append({"image_id": image_id, "category_id": self.gt.category_id,
                                "keypoints": [float(v) for v in kps[i].reshape(-1)],
                                "score": float(scores[i]), "box_score": float(box[i]),
                                "center": [float(v) for v in centers[i]],
                                "scale": [float(v) for v in scales[i]]})
        return results

    def stats(self) -> dict[str, float]:
        """AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl (fractions, pycocotools), and
        AP(E), AP(M), AP(H) on a set whose images carry ``crowdIndex`` (CrowdPose)."""
        preds = self.predictions()
        out = evaluate_coco_results(self.gt, preds, verbose=self.verbose)
        out["num_predictions"] = float(len(preds))
        out["num_people"] = float(len(self._image_ids))
        return out

    def write_predictions(self, path: str | Path) -> None:
        """Write :meth:`predictions` as a COCO keypoint results json (atomically)."""
        import json
        atomic_write_text(path, json.dumps(self.predictions()))
