"""Data sets of an experiment config, keyed by ``data.type``: a dataset registry name.

``data.type`` is one of :func:`robustpose.data.list_datasets` (the benchmark's
``--dataset`` names): ``coco`` (any COCO-format keypoint file, as before), ``crowdpose``,
``ochuman``, ``coco-format``, ``mpii`` (HRNet's MPII json) or ``synth``
(robustpose.data.synth). Records load through the registry's one factory
(:func:`robustpose.data.load_dataset`), metrics through
:func:`robustpose.evaluation.build_dataset_metric`, as in the runs. Each split block
(``data.train`` / ``data.val``) names its files relative to ``data.root``; a split with
neither ``annotations`` nor ``images`` finds them by the registry layout under
``data.root``::

    data:
      type: coco
      root: /datasets/coco
      train: {annotations: annotations/person_keypoints_train2017.json, images: train2017}
      val:   {annotations: annotations/person_keypoints_val2017.json, images: val2017,
              detections: null}     # or the HRNet detector boxes json

``data.train.stylized: {root, prob}`` mixes in a user-supplied stylized copy of the
training images (robustpose.data.stylized, the AdvMix paper's Stylized rows).

For ``synth`` the split block is handed (paths resolved) to
``robustpose.data.synth.build_records(block)``, which returns ``(records, spec)``.

Every split's records are made for the experiment's crop: the boxes widen to the aspect
ratio of ``data.input_size`` (the :class:`~robustpose.codecs.InferenceSetting` of the
config), exactly as the benchmark makes them for that model. One codec
(:func:`build_codec_for`: ``data.codec``, or the training method's) makes the targets of
both splits and decodes validation.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from robustpose.config import ConfigError, resolve_path

#: split-block keys that hold paths (resolved against data.root)
PATH_KEYS = ("annotations", "images", "detections", "root")


@dataclass
class SplitData:
    """One split: the torch dataset, its keypoint spec and how to score it."""

    dataset: Any
    spec: Any
    annotation_file: Path | None
    metric_factory: Callable[[], Any] | None


def _resolved_block(config: dict, split: str) -> dict:
    block = dict(config["data"].get(split) or {})
    for key in PATH_KEYS:
        if block.get(key) is not None:
            block[key] = resolve_path(config, block[key])
    return block


def _require(block: dict, key: str, split: str, config: dict) -> Path:
    if block.get(key) is None:
        raise ConfigError(f"data.{split}.{key} is required for data.type={config['data']['type']!r}")
    path = Path(block[key])
    if not path.exists():
        raise FileNotFoundError(f"{path}: data.{split}.{key} not found "
                                f"(set data.root=... or the path in the config)")
    return path


def build_codec_for(config: dict, method: Any = None) -> Any:
    """The experiment's codec (:func:`robustpose.config.build_codec_for`) with the block
    the training method declares (``method.codec_config(config)``; ``method``: a
    TrainingMethod class or instance, default ``train.method``'s) taking precedence.
    Training, validation and ``robustpose test`` all build it here."""
    from robustpose.config import build_codec_for as config_codec
    from robustpose.training.methods import METHODS, TrainingMethod

    if method is None:
        method = METHODS.get(config["train"]["method"], TrainingMethod)
    return config_codec(config, method.codec_config(config))


def inference_setting_for(config: dict, method: Any = None) -> Any:
    """The experiment's :class:`~robustpose.codecs.InferenceSetting`, decoding with the
    defaults of the codec :func:`build_codec_for` builds (the method's declared block
    first), so the setting saved in best.pt's meta and the codec agree."""
    from robustpose.codecs import InferenceSetting
    from robustpose.training.methods import METHODS, TrainingMethod

    if method is None:
        method = METHODS.get(config["train"]["method"], TrainingMethod)
    return InferenceSetting.from_config(config, codec=method.codec_config(config))


def load_records(config: dict, split: str, progress: bool = True) -> tuple[list, Any, Path | None]:
    """``(records, spec, annotation_file)`` of a split according to ``data.type``, with
    boxes widened to the aspect ratio of ``data.input_size`` (padding 1.25)."""
    records, spec, ann, _ = _load_split(config, split, progress)
    return records, spec, ann


def _split_files(config: dict, block: dict, split: str) -> tuple[Path, Path]:
    """The split's (annotation file, image folder): the block's paths when it names them,
    else the registry layout of ``data.type`` under ``data.root`` (e.g. ``data: {type:
    coco, root: /datasets/coco}`` finds ``annotations/person_keypoints_<split>2017.json``)."""
    from robustpose.data.registry import find_dataset_files

    root = config["data"].get("root")
    if block.get("annotations") is None and block.get("images") is None and root:
        try:
            return find_dataset_files(config["data"]["type"], resolve_path(config, "."),
                                      split=split)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"data.{split}: {exc}") from None
    return (_require(block, "annotations", split, config),
            _require(block, "images", split, config))


def _load_split(config: dict, split: str, progress: bool = True) -> tuple[list, Any, Path | None, dict]:
    """:func:`load_records` plus the split block with its paths resolved (for synth, the
    ``images`` folder it was materialised into).

    ``data.type`` is a name of the dataset registry (:func:`robustpose.data.list_datasets`,
    the benchmark's ``--dataset`` names): COCO-format and MPII sets load through its one
    factory :func:`robustpose.data.load_dataset`; ``synth`` generates the split the block
    describes (``split``, ``num_images``, ``seed``, ...)."""
    from robustpose.data import get_spec
    from robustpose.data.registry import get_dataset_info, load_dataset

    setting = inference_setting_for(config)
    kind = config["data"]["type"]
    info = get_dataset_info(kind)
    block = _resolved_block(config, split)
    spec_name = config["data"].get("spec")
    if kind == "synth":
        synth = importlib.import_module("robustpose.data.synth")
        result = synth.build_records(block, aspect_ratio=setting.aspect_ratio,
                                     padding=setting.padding, progress=progress)
        records, spec = result if isinstance(result, tuple) else (result, None)
        if spec is None:
            spec = get_spec(spec_name or info.keypoints)
        ann = block.get("annotations")
        return records, spec, Path(ann) if ann is not None else None, block
    ann, images = _split_files(config, block, split)
    block.update(annotations=ann, images=images)
    detections = None
    if split == "val" and info.format == "coco" and block.get("detections") is not None:
        detections = _require(block, "detections", split, config)
    loaded = load_dataset(kind, annotations=ann, images=images, split=split,
                          spec=spec_name or None, detections=detections,
                          det_score_thr=float(block.get("det_score_thr", 0.0)),
                          aspect_ratio=setting.aspect_ratio, padding=setting.padding)
    return loaded.records, loaded.spec, ann, block


def build_augment(config: dict) -> Any:
    """``data.augment`` as a :class:`robustpose.data.TopDownAugment` (HRNet's draws)."""
    from robustpose.data import TopDownAugment
    block = dict(config["data"]["augment"] or {})
    try:
        return TopDownAugment(**block)
    except TypeError as exc:
        fields = ", ".join(TopDownAugment.__dataclass_fields__)
        raise ConfigError(f"data.augment: {exc}; known keys: {fields}") from None


def build_metric_factory(config: dict, spec: Any, annotation_file: Path | None,
                         records: list) -> Callable[[], Any] | None:
    """A callable returning a fresh metric for the val split: ``val.metric`` (``AP`` /
    ``PCKh`` / ``PCK``; the older ``coco`` / ``pckh`` still read), by default the dataset
    entry's, built by :func:`robustpose.evaluation.build_dataset_metric` as the runs build
    theirs, with ``val.metric_args`` (same option names as the benchmark's, e.g.
    ``score_mode``, ``nms_mode``, ``area_rule``) and the entry's area rule."""
    from robustpose import evaluation
    from robustpose.data.registry import get_dataset_info

    info = get_dataset_info(config["data"]["type"])
    kind = config["val"]["metric"] or info.metric
    name = evaluation.METRIC_ALIASES.get(str(kind))
    if name is None:
        raise ConfigError(f"val.metric must be one of AP, PCKh, PCK (or coco, pckh), "
                          f"got {kind!r}")
    if annotation_file is None:
        return None
    args = dict(config["val"].get("metric_args") or {})
    if name == "AP":
        args.setdefault("sigmas", getattr(spec, "sigmas", None))
        if info.area_rule is not None:
            args.setdefault("area_rule", info.area_rule)
    # PCKh reads the HRNet json itself here (its 1-px offset); the benchmark scores records
    return lambda: evaluation.build_dataset_metric(name, annotation_file=annotation_file,
                                                   **args)


def stylized_block(config: dict, split: str) -> Any:
    """``data.<split>.stylized`` checked (robustpose.data.stylized.parse_block: keys, prob,
    ``root`` resolved like every data path and an existing folder) before any record is
    loaded; a training option, refused on the val split. ``None`` when unset."""
    from robustpose.data.stylized import parse_block

    block = (config["data"].get(split) or {}).get("stylized")
    if block is None:
        return None
    if split != "train":
        raise ConfigError(f"data.{split}.stylized: a stylized copy is a training option "
                          f"(data.train.stylized)")
    return parse_block(block, resolve=lambda root: resolve_path(config, root))


def build_split(config: dict, split: str, train: bool, progress: bool = True,
                codec: Any = None) -> SplitData:
    """The TopDownDataset of ``split`` ('train' or 'val') with its metric factory.

    ``codec``: the experiment's codec (the trainer builds one for both splits, see
    :func:`build_codec_for`); ``None`` builds the config's.
    """
    from robustpose.data import TopDownDataset
    from robustpose.utils.seeding import derive_seed

    stylized = stylized_block(config, split)  # a wrong root fails before loading
    records, spec, ann, block = _load_split(config, split, progress)
    if not records:
        raise ValueError(f"{ann or split}: no person records with keypoints in data.{split}")
    if stylized is not None:  # over the split's image folder; every file checked
        stylized = stylized.build(block["images"], records)
    data = config["data"]
    codec = codec if codec is not None else build_codec_for(config)
    dataset = TopDownDataset(records, spec, input_size=tuple(data["input_size"]),
                             heatmap_size=tuple(data["heatmap_size"]), sigma=float(data["sigma"]),
                             train=train, augment=build_augment(config) if train else None,
                             seed=derive_seed(config["seed"], "data", split), skip_unreadable=True,
                             codec=codec, stylized=stylized)
    factory = None if train else build_metric_factory(config, spec, ann, records)
    return SplitData(dataset=dataset, spec=spec, annotation_file=ann, metric_factory=factory)
