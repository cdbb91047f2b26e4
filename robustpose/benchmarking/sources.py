"""Datasets a benchmark runs on: person records + keypoint spec + a metric factory.

Every name, layout, keypoint set and metric below is an entry of the dataset registry
(:mod:`robustpose.data.registry`, which training reads too); records come from its one
factory :func:`~robustpose.data.load_dataset`, metrics from
:func:`~robustpose.evaluation.build_dataset_metric`.

=============  ===========================================================  ========
``dataset``    default files under ``--data-root``                          metric
=============  ===========================================================  ========
synth          the SynthPose validation split (generated once into a cache) OKS AP
coco           annotations/person_keypoints_val2017.json, images val2017/   OKS AP
ochuman        ochuman_coco_format_val_range_0.00_1.00.json, images/        OKS AP
crowdpose      json/crowdpose_val.json (or crowdpose_val.json), images/     OKS AP
coco-format    annotations.json, images/ (any COCO-format keypoint set)     OKS AP
mpii           annot/valid.json (HRNet layout), images/                     PCKh@0.5
=============  ===========================================================  ========

``--annotations`` overrides the annotation file, ``--data-root`` the root and
``--detections`` swaps ground-truth boxes for detector boxes (COCO results json).
``metric_options`` (``score_mode``, ``nms_mode``, ``keypoint_score_thr``, ``nms_thr``:
:data:`METRIC_OPTIONS`) reach the OKS AP metric; PCKh has none of them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from robustpose.data.registry import (find_dataset_files, get_dataset_info, list_datasets,
                                      load_dataset)

#: the dataset names of the registry (robustpose.data.list_datasets(), which the CLI reads)
DATASETS = tuple(list_datasets())
#: the OKS AP metric's person-score / NMS settings a run may choose (mmpose CocoMetric names)
#: and the GT area rule (``area_rule``: json | bbox | crowdpose)
METRIC_OPTIONS = ("score_mode", "nms_mode", "keypoint_score_thr", "nms_thr", "area_rule")


@dataclass
class DataSource:
    """What a benchmark needs from a dataset."""

    name: str                      # store key, e.g. 'synth-val' or 'coco-format:coco_val_mini'
    records: list                  # PersonRecords, grouped by image
    spec: Any                      # KeypointSpec
    image_root: Path
    annotation_file: Path
    metric_name: str               # 'AP' or 'PCKh'
    make_metric: Callable[[], Any]
    boxes: str                     # 'ground truth' or 'detector: <file>'
    conventions: dict = field(default_factory=dict)
    metric_scale: float = 100.0    # metric value x scale = percent (AP is a fraction)
    dropped: list = field(default_factory=list)  # labelled people left out at load, and why


def _write_if_changed(out: Path, text: str) -> Path:
    from robustpose.utils.io import atomic_write_text

    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        atomic_write_text(out, text)
    return out


def _subset_annotations(ann_file: Path, max_images: int, subset_dir: Any) -> Path:
    """A copy of a COCO annotation file with only its first ``max_images`` images (by id)."""
    import json

    from robustpose.data.records import read_json

    if max_images < 1:
        raise ValueError(f"max_images must be >= 1, got {max_images}")
    data = read_json(ann_file)
    ids = [img["id"] for img in data.get("images", []) if isinstance(img, dict) and "id" in img]
    if len(set(ids)) != len(ids):  # named here: the loader would name the subset file
        twice = next(i for n, i in enumerate(ids) if i in ids[:n])
        raise ValueError(f"duplicate image id {twice} in {ann_file}")
    keep = sorted(ids)[:max_images]
    kept = set(keep)
    # an entry without an id stays: the loader refuses it with its own message
    subset = dict(data, images=[i for i in data["images"]
                                if not isinstance(i, dict) or "id" not in i or i["id"] in kept],
                  annotations=[a for a in data.get("annotations", [])
                               if a.get("image_id") in kept])
    out_dir = Path(subset_dir) if subset_dir is not None else Path(ann_file).parent
    return _write_if_changed(out_dir / f"{Path(ann_file).stem}.first{max_images}.json",
                             json.dumps(subset))


def _subset_detections(det_file: Path, ann_file: Path, subset_file: Path) -> Path:
    """A copy of a detections json without the boxes of the images ``subset_file`` left out.

    Only boxes of images that are in ``ann_file`` but not in the subset are dropped: an
    entry naming an image of neither (or a malformed entry) stays, so the loader still
    refuses it with its one-line message."""
    import json

    from robustpose.data.records import read_json

    dets = read_json(det_file, "detections file")
    if not isinstance(dets, list):
        raise ValueError(f"{det_file}: detections must be a COCO results list")
    every = {img.get("id") for img in read_json(ann_file).get("images", [])}
    kept = {img.get("id") for img in read_json(subset_file).get("images", [])}
    dropped = every - kept

    def keep(det: Any) -> bool:
        return not (isinstance(det, dict) and det.get("image_id") in dropped)

    subset = [d for d in dets if keep(d)]
    stem = subset_file.name[:-len(".json")]  # '<annotations>.firstN'
    return _write_if_changed(subset_file.with_name(f"{stem}.dets-{Path(det_file).stem}.json"),
                             json.dumps(subset))


def resolve_source(dataset: str = "synth", data_root: str | os.PathLike | None = None,
                   annotations: str | os.PathLike | None = None,
                   detections: str | os.PathLike | None = None, *,
                   input_size: tuple[int, int] = (192, 256), padding: float = 1.25,
                   max_images: int | None = None, subset_dir: str | os.PathLike | None = None,
                   metric_options: dict[str, Any] | None = None,
                   spec: str | None = None) -> DataSource:
    """Load the records of ``dataset`` for a model with ``input_size`` (w, h) and ``padding``.

    ``spec``: the keypoint preset (``--spec``, e.g. ``onehand10k``) for a COCO-format set;
    default: :func:`robustpose.data.spec_for_annotations` picks it from the json.

    ``max_images`` keeps the first N images (by id) of a COCO-format set: their annotations
    (and, with ``detections``, those images' boxes) are written to ``subset_dir`` so the
    metric scores exactly those images.
    ``metric_options``: keyword arguments of :class:`~robustpose.evaluation.CocoKeypointMetric`
    among :data:`METRIC_OPTIONS` (``None`` values mean the default); refused for ``mpii``.
    """
    info = get_dataset_info(dataset)  # unknown: one line naming the choices
    options = {k: v for k, v in (metric_options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(METRIC_OPTIONS))
    if unknown:
        raise ValueError(f"unknown metric option {unknown[0]!r}; choose from "
                         f"{', '.join(METRIC_OPTIONS)}")
    if info.area_rule is not None:  # the set's own GT area (CrowdPose: 0.53 * w * h)
        options.setdefault("area_rule", info.area_rule)
    if info.metric != "AP" and options:
        raise ValueError(f"{', '.join(sorted(options))}: OKS AP options; dataset {dataset} is "
                         f"scored by {info.metric}, which has no person score or NMS")
    ann_file, image_root = find_dataset_files(dataset, data_root, annotations)
    if info.generate is not None and annotations is None:
        name = f"{dataset}-val"  # the fixed generated split, wherever it is cached
    else:
        name = f"{dataset}:{(Path(data_root) if data_root is not None else ann_file.parent).resolve().name}"
    aspect = input_size[0] / input_size[1]
    if info.format == "mpii":
        if spec not in (None, "mpii"):
            raise ValueError(f"--spec {spec}: dataset mpii uses the mpii keypoint set")
        return _mpii_source(info, ann_file, image_root, name, aspect, padding, max_images)
    det_file = detections
    if max_images is not None:
        full = ann_file
        ann_file = _subset_annotations(ann_file, int(max_images), subset_dir)
        name += f"[:{int(max_images)}]"
        if detections is not None:  # the boxes of the images left out go too
            det_file = _subset_detections(Path(detections), full, ann_file)

    dropped: list = []
    loaded = load_dataset(dataset, annotations=ann_file, images=image_root, spec=spec,
                          detections=det_file, aspect_ratio=aspect, padding=padding,
                          dropped=dropped)
    spec = loaded.spec
    records = sorted(loaded.records, key=lambda r: str(r.image_id))  # one image's people together
    boxes = f"detector: {Path(detections).name}" if detections is not None else info.boxes
    if detections is not None:
        name += f"+det:{Path(detections).name}"

    def make_metric() -> Any:
        from robustpose.evaluation import build_dataset_metric

        return build_dataset_metric(info.metric, annotation_file=ann_file, sigmas=spec.sigmas,
                                    **options)

    return DataSource(name, records, spec, Path(image_root), Path(ann_file), info.metric,
                      make_metric, boxes, dropped=dropped)


def _mpii_source(info: Any, ann_file: Path, image_root: Path, name: str, aspect: float,
                 padding: float, max_images: int | None) -> DataSource:
    loaded = load_dataset(info.name, annotations=ann_file, images=image_root,
                          aspect_ratio=aspect, padding=padding)
    records = sorted(loaded.records, key=lambda r: str(r.image_id))
    if max_images is not None:
        if int(max_images) < 1:
            raise ValueError(f"max_images must be >= 1, got {max_images}")
        keep = set(sorted({str(r.image_id) for r in records})[:int(max_images)])
        records = [r for r in records if str(r.image_id) in keep]
        name += f"[:{int(max_images)}]"  # other people: another dataset key (as COCO's)
    spec = loaded.spec

    def make_metric() -> Any:
        from robustpose.evaluation import build_dataset_metric

        # a person whose image cannot be read counts as missed (never silently dropped)
        return build_dataset_metric(info.metric, records=records, missing="miss")

    return DataSource(name, records, spec, Path(image_root), Path(ann_file), info.metric,
                      make_metric, info.boxes, metric_scale=1.0)
