"""COCO-format keypoint sets (COCO, OCHuman, CrowdPose, RHD hands, any custom set).

Ground-truth boxes follow HRNet's ``_load_coco_keypoint_annotation_kernal``: crowd
annotations are skipped, boxes are clipped to the image (``clean_bbox``) and dropped when
empty or of zero area, and persons whose keypoints are all zero are dropped. COCOeval
ignores those persons for keypoints anyway (``ignore = num_keypoints == 0``); pass
``keep_unlabeled=True`` to keep them (keypoints all zero, target weight 0).
Detector boxes (COCO results json) keep the raw box and score; ``score >= det_score_thr``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..geometry import box_to_center_scale
from .images import resolve_under_root
from .records import PersonRecord, finite_box, read_json
from .specs import KeypointSpec, _PRESETS, spec_from_category

__all__ = ["load_coco_records", "guess_spec"]


#: Name variants of the same keypoint across releases (CrowdPose's json says "head").
_ALIASES = {"head": "top_head"}


def guess_spec(category: dict, sigmas: Sequence[float] | None = None,
               source: str = "annotation file") -> KeypointSpec:
    """The preset whose keypoint names equal the category's, else one built from it."""
    names = [str(n) for n in category.get("keypoints") or []]
    canonical = [_ALIASES.get(n, n) for n in names]
    for key, make in _PRESETS.items():
        preset = make()
        if preset.keypoint_names == canonical and key != "ochuman":
            if sigmas is not None:
                return KeypointSpec(preset.name, preset.keypoint_names, preset.flip_pairs,
                                    sigmas, preset.skeleton, preset.upper_body_ids)
            return preset
    try:
        return spec_from_category(category, sigmas)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def _keypoint_category(data: dict, source: str, category_id: int | None) -> dict:
    cats = data.get("categories") or []
    with_kpts = [c for c in cats if c.get("keypoints")]
    if category_id is not None:
        match = [c for c in cats if c.get("id") == category_id]
        if not match:
            raise ValueError(f"{source}: no category with id {category_id}")
        return match[0]
    if not with_kpts:
        raise ValueError(f"{source}: no category lists 'keypoints' names (not a keypoint file?)")
    persons = [c for c in with_kpts if c.get("name") == "person"]
    return (persons or with_kpts)[0]


def _parse_keypoints(raw: Any, k: int, source: str, ann_id: Any) -> np.ndarray:
    """Flat [x, y, v] * K (COCO) or nested K x 3 (e.g. RHD conversions) -> (K, 3)."""
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: annotation {ann_id}: keypoints are not numbers") from None
    if arr.ndim == 2 and arr.shape[1] == 3:
        count = arr.shape[0]
    elif arr.ndim == 1 and arr.size % 3 == 0:
        count = arr.size // 3
    else:
        raise ValueError(f"{source}: annotation {ann_id}: keypoints have shape {arr.shape}, "
                         f"expected {3 * k} numbers (x, y, v for {k} keypoints)")
    if count != k:
        raise ValueError(f"{source}: annotation {ann_id} has {count} keypoints but its "
                         f"category has {k}")
    arr = arr.reshape(k, 3)
    if not np.isfinite(arr).all():
        raise ValueError(f"{source}: annotation {ann_id}: keypoints contain NaN or inf")
    return arr


def _clean_bbox(box: np.ndarray, width: float, height: float) -> np.ndarray | None:
    """HRNet's box sanitising: clip to the image; None when nothing is left."""
    x, y, w, h = box
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1, x1 + max(0.0, w - 1))
    y2 = min(height - 1, y1 + max(0.0, h - 1))
    if x2 >= x1 and y2 >= y1:
        return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)
    return None


def load_coco_records(annotation_file: str | os.PathLike, image_root: str | os.PathLike,
                      spec: KeypointSpec | None = None,
                      detections: str | os.PathLike | list | None = None,
                      det_score_thr: float = 0.0, *, aspect_ratio: float,
                      padding: float = 1.25, sigmas: Sequence[float] | None = None,
                      keep_unlabeled: bool = False,
                      category_id: int | None = None) -> tuple[list[PersonRecord], KeypointSpec]:
    """Person records of a COCO-format keypoint file, with GT or detector boxes.

    - ``spec``: the keypoint layout; default: the preset whose names match the json
      category (COCO / CrowdPose / RHD), else built from the category + ``sigmas``.
    - ``detections``: a COCO results json (path or loaded list) of person boxes
      ``{image_id, category_id, bbox, score}``; records then carry ``keypoints=None``.
    - ``aspect_ratio`` (required): the model's input width / height (192/256 for 256x192,
      ``InferenceSetting.aspect_ratio``): boxes widen to it, so records made for one input
      shape crop differently from another's. ``padding``: the box enlargement (1.25).

    Records are ordered by image id (as ``COCO.getImgIds``) then annotation order; detector
    records keep the file's order. Raises one-line ``ValueError``/``FileNotFoundError``
    naming the file for: unreadable json, keypoint count not matching the category, file
    names leaving ``image_root``, detections of unknown images, no records at all.
    """
    source = str(annotation_file)
    try:
        ratio_ok = bool(np.isfinite(float(aspect_ratio)) and float(aspect_ratio) > 0)
    except (TypeError, ValueError):
        ratio_ok = False
    if not ratio_ok:
        raise ValueError(f"{source}: aspect_ratio must be a positive number (input width / "
                         f"height), got {aspect_ratio!r}")
    data = read_json(annotation_file)
    if not isinstance(data, dict) or "images" not in data:
        raise ValueError(f"{source}: not a COCO keypoint file (no 'images' list)")
    category = _keypoint_category(data, source, category_id)
    if spec is None:
        spec = guess_spec(category, sigmas, source)
    k = spec.num_keypoints
    n_names = len(category.get("keypoints") or [])
    if n_names and n_names != k:
        raise ValueError(f"{source}: category {category.get('name')!r} has {n_names} keypoints "
                         f"but spec {spec.name!r} has {k}")
    cat_id = category.get("id")
    root = Path(image_root)

    images: dict[Any, dict] = {}
    for img in data["images"]:
        if "id" not in img or "file_name" not in img:
            raise ValueError(f"{source}: image entry {img!r:.80} lacks 'id' or 'file_name'")
        images[img["id"]] = img
    paths = {i: resolve_under_root(root, img["file_name"], source) for i, img in images.items()}

    def make(img_id: Any, box: np.ndarray, score: float, kpts: np.ndarray | None, area: float,
             extra: dict) -> PersonRecord:
        img = images[img_id]
        center, scale = box_to_center_scale(box, aspect_ratio, padding)
        extra.setdefault("image_size", (img.get("width"), img.get("height")))
        return PersonRecord(img_id, paths[img_id], box, float(score), kpts, float(area),
                            center, scale, extra)

    records: list[PersonRecord] = []
    if detections is not None:
        det_source = str(detections) if not isinstance(detections, list) else "detections"
        dets = read_json(detections, "detections file") if not isinstance(detections, list) \
            else detections
        if not isinstance(dets, list):
            raise ValueError(f"{det_source}: detections must be a COCO results list")
        for i, det in enumerate(dets):
            if not isinstance(det, dict) or not {"image_id", "bbox", "score"} <= det.keys():
                raise ValueError(f"{det_source}: entry {i} lacks image_id/bbox/score")
            if cat_id is not None and det.get("category_id", cat_id) != cat_id:
                continue
            score = float(det["score"])
            if not np.isfinite(score):
                raise ValueError(f"{det_source}: entry {i} has a non-finite score")
            if score < det_score_thr:
                continue
            if det["image_id"] not in images:
                raise ValueError(f"{det_source}: entry {i} refers to image_id {det['image_id']} "
                                 f"which is not in {source}")
            box = finite_box(det["bbox"], f"{det_source}: entry {i}")
            records.append(make(det["image_id"], box, score, None, box[2] * box[3],
                                {"source": "det", "det_index": i}))
        if not records:
            raise ValueError(f"{det_source}: no person boxes with score >= {det_score_thr} "
                             f"(empty dataset)")
        return records, spec

    by_image: dict[Any, list[dict]] = {i: [] for i in images}
    for ann in data.get("annotations") or []:
        if cat_id is not None and ann.get("category_id", cat_id) != cat_id:
            continue
        if ann.get("image_id") not in by_image:
            raise ValueError(f"{source}: annotation {ann.get('id')} refers to unknown image_id "
                             f"{ann.get('image_id')}")
        by_image[ann["image_id"]].append(ann)
    for img_id in sorted(images):
        img = images[img_id]
        width, height = float(img.get("width", np.inf)), float(img.get("height", np.inf))
        for ann in by_image[img_id]:
            if ann.get("iscrowd", 0):
                continue
            ann_src = f"{source}: annotation {ann.get('id')}"
            kpts = _parse_keypoints(ann.get("keypoints", []), k, source, ann.get("id"))
            box = _clean_bbox(finite_box(ann.get("bbox"), ann_src), width, height)
            area = float(ann.get("area", 0.0 if box is None else box[2] * box[3]))
            if box is None or area <= 0:
                continue
            if kpts.max() == 0 and not keep_unlabeled:
                continue
            records.append(make(img_id, box, 1.0, kpts, area,
                                {"source": "gt", "ann_id": ann.get("id"),
                                 "num_keypoints": int((kpts[:, 2] > 0).sum())}))
    if not records:
        raise ValueError(f"{source}: no person with keypoints (empty dataset)")
    return records, spec
