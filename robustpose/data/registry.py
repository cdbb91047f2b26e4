"""The dataset registry: one entry per keypoint set the toolkit reads, by name.

A :class:`DatasetInfo` says how a set's files are found under a root (per split), which
keypoint spec it uses (a preset, or :data:`FROM_JSON` for a COCO-format set whose json's
``categories`` decide), which metric scores it (``AP`` = COCO OKS AP, ``PCKh``, ``PCK``),
which GT-area rule OKS uses and where its person boxes come from. Training
(``data.type``), the runs (``--dataset``) and the CLI choices all read this one table::

    >>> get_dataset_info("crowdpose").metric, keypoint_count("crowdpose")
    ('AP', 14)
    >>> keypoint_count("coco-format", "../shared/data/rhd_mini/annotations.json")
    21

:func:`load_dataset` is the one factory that turns a name (+ files) into person records and
the keypoint spec; the metric of an entry is built by
:func:`robustpose.evaluation.build_dataset_metric` (a layer up), from ``info.metric``.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from robustpose.utils.registry import Registry

__all__ = ["DatasetInfo", "SplitLayout", "LoadedDataset", "FROM_JSON", "DATASETS_REGISTRY",
           "register_dataset", "get_dataset_info", "list_datasets", "keypoint_count",
           "find_dataset_files", "load_dataset"]

#: ``DatasetInfo.keypoints`` of a COCO-format set whose spec comes from its json categories
FROM_JSON = "from the json"
#: the record formats :func:`load_dataset` reads
FORMATS = ("coco", "mpii")
#: metric names an entry may give (the stat each one reports under the same name)
METRICS = ("AP", "PCKh", "PCK")

DATASETS_REGISTRY = Registry("dataset")


@dataclass(frozen=True)
class SplitLayout:
    """Where one split's files lie under a root: candidates tried in order (relative paths).

    ``images`` candidates are tried under the root, or under the annotation file's folder
    when only ``--annotations`` is given.
    """

    annotations: tuple[str, ...]
    images: tuple[str, ...]


@dataclass(frozen=True)
class DatasetInfo:
    """One registered keypoint set.

    - ``format``: the record reader, ``'coco'`` (COCO-format json) or ``'mpii'`` (HRNet's
      MPII json with ``center``/``scale``/``head_size``).
    - ``keypoints``: a preset name of :func:`~robustpose.data.get_spec`, or :data:`FROM_JSON`
      (the count and spec come from the annotation file; ``default_keypoints`` stands in
      while no file is at hand).
    - ``metric``: ``'AP'`` (OKS AP), ``'PCKh'`` or ``'PCK'``.
    - ``area_rule``: the GT area OKS scales by (``'json'`` | ``'bbox'`` | ``'crowdpose'``);
      ``None`` lets the metric pick the set's own rule from the json.
    - ``boxes``: the person boxes a run uses unless given detections (a description).
    - ``splits``: ``(split, SplitLayout)`` pairs; split ``'*'`` serves any split.
    - ``generate``: for a generated set (SynthPose), ``generate(root_or_None) -> folder``
      writes the validation split once and returns the folder holding the ``'*'`` layout.
    """

    name: str
    description: str
    format: str = "coco"
    keypoints: str = FROM_JSON
    metric: str = "AP"
    area_rule: str | None = None
    boxes: str = "ground truth"
    splits: tuple[tuple[str, SplitLayout], ...] = ()
    default_keypoints: str = "coco"
    generate: Callable[[Path | None], Path] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"dataset {self.name!r}: format must be one of "
                             f"{', '.join(FORMATS)}, got {self.format!r}")
        if self.metric not in METRICS:
            raise ValueError(f"dataset {self.name!r}: metric must be one of "
                             f"{', '.join(METRICS)}, got {self.metric!r}")

    @property
    def split_names(self) -> list[str]:
        return [name for name, _ in self.splits]

    def layout(self, split: str = "val") -> SplitLayout:
        """The files of ``split`` (the ``'*'`` layout when the set names no such split)."""
        table = dict(self.splits)
        found = table.get(split, table.get("*"))
        if found is None:
            raise ValueError(f"dataset {self.name!r} has no split {split!r}; choose from "
                             f"{', '.join(self.split_names) or '(none: give the files)'}")
        return found


@dataclass
class LoadedDataset:
    """What :func:`load_dataset` returns: the records of one split and how to read them."""

    info: DatasetInfo
    records: list                  # PersonRecords
    spec: Any                      # KeypointSpec
    annotation_file: Path
    image_root: Path


def register_dataset(name: str | DatasetInfo, **fields: Any) -> DatasetInfo:
    """Register a keypoint set: a :class:`DatasetInfo`, or its name and fields.

    ``register_dataset('myhands', description='...', splits=(('*', SplitLayout(
    ('annotations.json',), ('images',))),))`` makes ``--dataset myhands`` and
    ``data.type: myhands`` work. A taken name raises a one-line ``ValueError``.
    """
    info = name if isinstance(name, DatasetInfo) else DatasetInfo(name=str(name), **fields)
    if fields and isinstance(name, DatasetInfo):
        info = replace(info, **fields)
    DATASETS_REGISTRY.register(info.name, info)
    return info


def get_dataset_info(name: str) -> DatasetInfo:
    """The entry of ``name``; unknown names raise one line naming the choices."""
    return DATASETS_REGISTRY.get(name)


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered dataset names matching a shell pattern, sorted (the CLI's ``--dataset``
    choices)."""
    return DATASETS_REGISTRY.list(pattern)


def _category_count(annotation_file: Path) -> int:
    """Keypoints of the json's keypoint category (``person``, else the first with names)."""
    stat = annotation_file.stat()
    return _category_count_of(str(annotation_file.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _category_count_of(annotation_file: str, mtime_ns: int, size: int) -> int:
    # keyed by the file's stat too: a run asks before and after building its dataset, and a
    # large annotation file (COCO val: 25 MB) is parsed once; an edited file is re-read
    from .coco import _keypoint_category
    from .records import read_json

    data = read_json(annotation_file)
    if not isinstance(data, dict):
        raise ValueError(f"{annotation_file}: not a COCO-format keypoint file (no categories)")
    return len(_keypoint_category(data, str(annotation_file), None)["keypoints"])


def keypoint_count(name: str, annotation_file: str | os.PathLike | None = None, *,
                   data_root: str | os.PathLike | None = None, spec: str | None = None) -> int:
    """How many keypoints a model for dataset ``name`` must predict.

    ``spec`` (a preset name, ``--spec``) decides when given. A COCO-format set reads its
    annotation file's keypoint category: ``annotation_file`` when given, else (for a
    :data:`FROM_JSON` entry) the one its layout finds under ``data_root``; without a file
    the entry's preset (or ``default_keypoints``) answers. E.g. ``keypoint_count('mpii')``
    is 16, ``keypoint_count('coco-format', 'rhd_mini/annotations.json')`` is 21.
    """
    from .specs import get_spec

    info = get_dataset_info(name)
    if spec is not None:
        return get_spec(spec).num_keypoints
    if info.format == "coco":
        path = Path(annotation_file) if annotation_file is not None else None
        if path is None and info.keypoints == FROM_JSON and data_root is not None:
            path = _first_existing(Path(data_root), info.layout("val").annotations)
        if path is not None and path.is_file():
            return _category_count(path)
    preset = info.default_keypoints if info.keypoints == FROM_JSON else info.keypoints
    return get_spec(preset).num_keypoints


def _first_existing(root: Path, candidates: tuple[str, ...]) -> Path | None:
    return next((root / rel for rel in candidates if (root / rel).exists()), None)


def _find(root: Path, candidates: tuple[str, ...], what: str, name: str) -> Path:
    found = _first_existing(root, candidates)
    if found is None:
        raise FileNotFoundError(f"{root}: no {what} for dataset {name!r} (looked for "
                                f"{', '.join(candidates)}); give --annotations / --data-root")
    return found


def find_dataset_files(name: str, data_root: str | os.PathLike | None = None,
                       annotations: str | os.PathLike | None = None,
                       images: str | os.PathLike | None = None,
                       split: str = "val") -> tuple[Path, Path]:
    """``(annotation_file, image_root)`` of ``split`` of dataset ``name``.

    Explicit ``annotations`` / ``images`` win; the rest is found by the entry's layout under
    ``data_root`` (images: under the annotation file's folder when there is no root). A
    generated set (SynthPose) with neither files nor a root holding them is written once
    into ``data_root`` or the cache. Raises one line naming what is missing.
    """
    info = get_dataset_info(name)
    root = Path(data_root) if data_root is not None else None
    if annotations is not None and images is not None:  # given: no layout needed
        ann = Path(annotations)
        if not ann.is_file():
            raise FileNotFoundError(f"{ann}: annotation file not found")
        return ann, Path(images)
    layout = info.layout(split)
    if info.generate is not None and annotations is None and (
            root is None or _first_existing(root, layout.annotations) is None):
        root = info.generate(root)  # the fixed validation split, written once
    if root is None and annotations is None:
        raise ValueError(f"dataset {name!r} needs --data-root (and/or --annotations)")
    ann = Path(annotations) if annotations is not None else \
        _find(root, layout.annotations, "annotation file", name)
    if not ann.is_file():
        raise FileNotFoundError(f"{ann}: annotation file not found")
    image_root = Path(images) if images is not None else \
        _find(root if root is not None else ann.parent, layout.images, "image folder", name)
    return ann, image_root


def load_dataset(name: str, *, annotations: str | os.PathLike | None = None,
                 images: str | os.PathLike | None = None,
                 data_root: str | os.PathLike | None = None, split: str = "val",
                 detections: Any = None, det_score_thr: float = 0.0, spec: Any = None,
                 aspect_ratio: float, padding: float = 1.25,
                 dropped: list | None = None) -> LoadedDataset:
    """The person records of one split of dataset ``name``: the one factory of training
    (``data.type``) and of the runs (``--dataset``).

    Files: :func:`find_dataset_files`. ``aspect_ratio`` (crop width / height) and
    ``padding`` make the boxes' center/scale as for the model's input. ``spec`` (a preset
    name or KeypointSpec) overrides the json's for a COCO-format set (else
    :func:`~robustpose.data.spec_for_annotations` picks it); an MPII set uses its preset.
    ``detections`` (COCO results json) replace the GT boxes of a COCO-format set;
    ``dropped`` receives the labelled people left out at load.
    """
    from .coco import load_coco_records
    from .mpii import load_mpii_records
    from .specs import KeypointSpec, get_spec

    info = get_dataset_info(name)
    ann, image_root = find_dataset_files(name, data_root, annotations, images, split)
    if info.format == "mpii":
        if detections is not None:
            raise ValueError(f"dataset {name!r}: detections are for COCO-format sets "
                             "(MPII people come with their centre and scale)")
        chosen = spec if isinstance(spec, KeypointSpec) else get_spec(spec or info.keypoints)
        return LoadedDataset(info, load_mpii_records(ann, image_root), chosen, ann, image_root)
    records, chosen = load_coco_records(ann, image_root, spec=spec, detections=detections,
                                        det_score_thr=det_score_thr, aspect_ratio=aspect_ratio,
                                        padding=padding, dropped=dropped)
    return LoadedDataset(info, records, chosen, ann, image_root)


def _synth_validation(root: Path | None) -> Path:
    from .synth import materialize, validation_split

    return materialize(validation_split(), root)


def _coco_like(*splits: tuple[str, tuple[str, ...], tuple[str, ...]]) -> tuple:
    return tuple((s, SplitLayout(tuple(a), tuple(i))) for s, a, i in splits)


_ANY_COCO_FORMAT = _coco_like(("*", ("annotations.json", "annotations/annotations.json"),
                               ("images", ".")))

for _info in (
    DatasetInfo("synth", "SynthPose validation split (generated once into a cache)",
                keypoints="coco", splits=_ANY_COCO_FORMAT, generate=_synth_validation),
    DatasetInfo("coco", "COCO 2017 person keypoints", keypoints="coco", splits=_coco_like(
        ("val", ("annotations/person_keypoints_val2017.json", "person_keypoints_val2017.json"),
         ("val2017", "images/val2017", "images")),
        ("train", ("annotations/person_keypoints_train2017.json",
                   "person_keypoints_train2017.json"),
         ("train2017", "images/train2017", "images")))),
    DatasetInfo("ochuman", "OCHuman (COCO-17 layout, COCO-format json)", keypoints="ochuman",
                splits=_coco_like(
                    ("val", ("ochuman_coco_format_val_range_0.00_1.00.json",
                             "annotations/ochuman_coco_format_val_range_0.00_1.00.json"),
                     ("images",)),
                    ("test", ("ochuman_coco_format_test_range_0.00_1.00.json",
                              "annotations/ochuman_coco_format_test_range_0.00_1.00.json"),
                     ("images",)))),
    # CrowdPose's own evaluation scales OKS by 0.53 * w * h of the GT box
    DatasetInfo("crowdpose", "CrowdPose (14 keypoints)", keypoints="crowdpose",
                area_rule="crowdpose", splits=_coco_like(*(
                    (s, (f"json/crowdpose_{s}.json", f"annotations/crowdpose_{s}.json",
                         f"crowdpose_{s}.json"), ("images",))
                    for s in ("val", "train", "trainval", "test")))),
    DatasetInfo("coco-format", "any COCO-format keypoint set (hands, custom); spec from "
                "the json's categories", splits=_ANY_COCO_FORMAT),
    DatasetInfo("mpii", "MPII Human Pose, HRNet json layout", format="mpii", keypoints="mpii",
                metric="PCKh", boxes="ground truth (MPII centre/scale)", splits=_coco_like(
                    ("val", ("annot/valid.json", "annotations/valid.json", "annotations.json"),
                     ("images",)),
                    ("train", ("annot/train.json", "annotations/train.json"), ("images",)))),
):
    register_dataset(_info)
