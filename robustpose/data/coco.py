"""COCO-format keypoint sets (COCO, OCHuman, CrowdPose, RHD hands, any custom set).

Ground-truth boxes follow HRNet's ``_load_coco_keypoint_annotation_kernal``: crowd
annotations are skipped, boxes are clipped to the image (``clean_bbox``) and dropped when
empty or of zero area, and persons with no visible keypoint (every v = 0, whatever their
coordinates or declared ``num_keypoints`` say) are dropped. A box with a
negative or zero width/height in the json (HRNet would crop 0 x 0 pixels from it) is
skipped with one warning line naming the annotation ids; duplicate image ids are refused. COCOeval
ignores those persons for keypoints anyway (``ignore = num_keypoints == 0``, and the
metric counts ``num_keypoints`` from the v's; docs/evaluation.md); pass
``keep_unlabeled=True`` to keep them (keypoints all zero, target weight 0).
Detector boxes (COCO results json) keep the raw box and score; ``score >= det_score_thr``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..geometry import box_to_center_scale
from .images import ImageReadError, resolve_under_root
from .records import PersonRecord, finite_box, read_json
from .specs import KEYPOINT_ALIASES, KeypointSpec, resolve_spec

__all__ = ["load_coco_records", "guess_spec", "spec_for_annotations", "check_image_size"]

_ALIASES = KEYPOINT_ALIASES  # the old private name


def guess_spec(category: dict, sigmas: Sequence[float] | None = None,
               source: str = "annotation file", *, spec: str | KeypointSpec | None = None,
               known_name: str | None = None) -> KeypointSpec:
    """The spec of a json category: :func:`~robustpose.data.specs.resolve_spec` (a preset
    matched by names in order, the set's ``known_name`` where names are shared, else one
    built from the category + ``sigmas``)."""
    return resolve_spec(category, spec, sigmas, known_name, source)


def dataset_description(data: Any) -> str | None:
    """The json's ``info.description`` (mmpose conversions say "RHD", "OneHand10K", ...)."""
    info = data.get("info") if isinstance(data, dict) else None
    desc = info.get("description") if isinstance(info, dict) else None
    return str(desc) if desc is not None else None


def spec_for_annotations(data: dict, spec: str | KeypointSpec | None = None,
                         sigmas: Sequence[float] | None = None, source: str = "annotation file",
                         category: dict | None = None,
                         category_id: int | None = None) -> KeypointSpec:
    """The keypoint spec of a loaded COCO-format json: its keypoint category (``category``,
    else by ``category_id``, else ``person``, else the first with keypoints) resolved by
    :func:`~robustpose.data.specs.resolve_spec` with the json's ``info.description`` as
    the set's known name. ``load_coco_records``, ``robustpose evaluate`` and the benchmark
    all resolve through here."""
    if category is None:
        category = _keypoint_category(data, source, category_id)
    return resolve_spec(category, spec, sigmas, dataset_description(data), source)


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
                      spec: KeypointSpec | str | None = None,
                      detections: str | os.PathLike | list | None = None,
                      det_score_thr: float = 0.0, *, aspect_ratio: float,
                      padding: float = 1.25, sigmas: Sequence[float] | None = None,
                      keep_unlabeled: bool = False,
                      category_id: int | None = None,
                      dropped: list | None = None) -> tuple[list[PersonRecord], KeypointSpec]:
    """Person records of a COCO-format keypoint file, with GT or detector boxes.

    - ``spec``: the keypoint layout, a KeypointSpec or a preset name (``--spec``); default:
      :func:`spec_for_annotations` (the preset whose names match the json category in
      order; where several presets share the names, as the 21 hand names do, the json's
      ``info.description`` must name one; else built from the category + ``sigmas``).
    - ``detections``: a COCO results json (path or loaded list) of person boxes
      ``{image_id, category_id, bbox, score}``; records then carry ``keypoints=None``.
    - ``aspect_ratio`` (required): the model's input width / height (192/256 for 256x192,
      ``InferenceSetting.aspect_ratio``): boxes widen to it, so records made for one input
      shape crop differently from another's. ``padding``: the box enlargement (1.25).
    - ``dropped``: a list that receives ``{ann_id, image_id, problem}`` for each labelled
      person left out for a box with no positive width and height (a run records them:
      the metric still counts that person, as a miss).

    Records are ordered by image id (as ``COCO.getImgIds``) then annotation order; detector
    records keep the file's order. Raises one-line ``ValueError``/``FileNotFoundError``
    naming the file for: unreadable json, keypoint count not matching the category, file
    names leaving ``image_root``, duplicate image ids, detections of unknown images, no
    records at all.
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
    if not isinstance(spec, KeypointSpec):
        spec = spec_for_annotations(data, spec, sigmas, source, category=category)
    k = spec.num_keypoints
    n_names = len(category.get("keypoints") or [])
    if n_names and n_names != k:
        raise ValueError(f"{source}: category {category.get('name')!r} has {n_names} keypoints "
                         f"but spec {spec.name!r} has {k}")
    cat_id = category.get("id")
    root = Path(image_root)

    images: dict[Any, dict] = {}
    entry_of: dict[Any, int] = {}
    for index, img in enumerate(data["images"]):
        if "id" not in img or "file_name" not in img:
            raise ValueError(f"{source}: image entry {img!r:.80} lacks 'id' or 'file_name'")
        if img["id"] in images:
            raise ValueError(f"duplicate image id {img['id']} in {source} (image entries "
                             f"{entry_of[img['id']]} and {index})")
        images[img["id"]], entry_of[img["id"]] = img, index
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
        bad_dets: list[int] = []
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
            if box[2] <= 0 or box[3] <= 0:  # a 0 x 0 crop would score as a silent miss
                bad_dets.append(i)
                continue
            records.append(make(det["image_id"], box, score, None, box[2] * box[3],
                                {"source": "det", "det_index": i}))
        if bad_dets:
            shown = ", ".join(map(str, bad_dets[:5])) + (" ..." if len(bad_dets) > 5 else "")
            _warn(f"{det_source}: skipped {len(bad_dets)} detection(s) whose bbox has a "
                  f"negative or zero width/height (entry {shown})")
        if not records:
            raise ValueError(f"{det_source}: no person boxes with score >= {det_score_thr} "
                             f"and a positive size (empty dataset)")
        return records, spec

    by_image: dict[Any, list[dict]] = {i: [] for i in images}
    for ann in data.get("annotations") or []:
        if cat_id is not None and ann.get("category_id", cat_id) != cat_id:
            continue
        if ann.get("image_id") not in by_image:
            raise ValueError(f"{source}: annotation {ann.get('id')} refers to unknown image_id "
                             f"{ann.get('image_id')}")
        by_image[ann["image_id"]].append(ann)
    bad_boxes: list[Any] = []  # annotation ids whose box has no positive width and height
    for img_id in sorted(images):
        img = images[img_id]
        width, height = float(img.get("width", np.inf)), float(img.get("height", np.inf))
        for ann in by_image[img_id]:
            if ann.get("iscrowd", 0):
                continue
            ann_src = f"{source}: annotation {ann.get('id')}"
            kpts = _parse_keypoints(ann.get("keypoints", []), k, source, ann.get("id"))
            raw_box = finite_box(ann.get("bbox"), ann_src)
            if raw_box[2] <= 0 or raw_box[3] <= 0:  # HRNet would crop 0 x 0 pixels
                bad_boxes.append(ann.get("id"))
                if dropped is not None and (kpts[:, 2] > 0).any():
                    dropped.append({"ann_id": ann.get("id"), "image_id": img_id,
                                    "problem": f"bbox {list(raw_box)} has no positive width "
                                               "and height (a missed person for the metric)"})
                continue
            box = _clean_bbox(raw_box, width, height)
            # no 'area': CrowdPose's rule (0.53 * w * h, as its evaluator), else w * h
            area = float(ann.get("area", 0.0 if box is None else box[2] * box[3] *
                                 (0.53 if spec.name == "crowdpose" else 1.0)))
            if box is None or area <= 0:
                continue
            if not (kpts[:, 2] > 0).any() and not keep_unlabeled:
                continue  # no visible keypoint: nothing to score (the metric ignores it too)
            records.append(make(img_id, box, 1.0, kpts, area,
                                {"source": "gt", "ann_id": ann.get("id"),
                                 "num_keypoints": int((kpts[:, 2] > 0).sum())}))
    if bad_boxes:
        shown = ", ".join(str(i) for i in bad_boxes[:5]) + (" ..." if len(bad_boxes) > 5 else "")
        _warn(f"{source}: skipped {len(bad_boxes)} annotation(s) whose bbox has a negative or "
              f"zero width/height (annotation id {shown}); they count as missed people")
    if not records:
        raise ValueError(f"{source}: no person with keypoints (empty dataset)")
    return records, spec


def _warn(message: str) -> None:
    """One ``robustpose: warning: ...`` line on stderr (data problems the run survives)."""
    print(f"robustpose: warning: {message}", file=sys.stderr)


def check_image_size(image: np.ndarray, record: PersonRecord) -> None:
    """Refuse an image whose size is not the width x height its annotation file states (a
    resized copy, or a wrong entry: boxes are clipped to the stated size, so either way
    every box and keypoint is off). Raises :class:`ImageReadError` naming the file, so a
    benchmark skips and records it like any unreadable image."""
    stated = (record.extra or {}).get("image_size") or (None, None)
    try:
        want_w, want_h = (int(v) for v in stated)
    except (TypeError, ValueError):  # the json states no size: nothing to compare with
        return
    height, width = image.shape[:2]
    if (width, height) != (want_w, want_h):
        raise ImageReadError(record.image_path, f"image is {width}x{height} but its "
                             f"annotation file states {want_w}x{want_h} (a resized copy, "
                             "or a wrong width/height entry?)")
