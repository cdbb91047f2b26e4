"""Data-set conventions of COCO-format keypoint evaluation that pycocotools leaves to the caller.

- **Area rule** (the OKS scale ``s^2`` of each ground-truth person, and its APm/APl range):
  ``'json'``: the annotation's ``area`` (COCO: the segmentation area); ``'bbox'``: ``w * h``
  of the GT box; ``'crowdpose'``: ``0.53 * w * h`` of the GT box, what CrowdPose's own
  crowdposetools ``computeOks`` uses (and xtcocotools / faster-coco-eval with
  ``use_area=False``, as mmpose configures CrowdPose and ExLPose). CrowdPose annotations
  carry no ``area``: filling ``w * h`` instead makes every OKS more forgiving.
- **Crowd-index subsets**: CrowdPose images carry a ``crowdIndex``; crowdposetools reports
  AP on three image subsets, split as its ``split(first=0.2, second=0.8)`` does (easy
  ``< 0.2``, medium ``0.2 <= ci < 0.8``, hard ``>= 0.8``; the paper's text says 0.1 for the
  first edge, every released evaluator uses 0.2).
- **Annotation ids**: COCOeval marks "unmatched" with id 0, so a ground-truth annotation
  whose id is 0 can never be matched (nor can duplicated or non-integer ids be told apart);
  the evaluated copy is renumbered 1..N in file order and the user's ids kept beside it.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: the area rules a user can choose (``area_rule`` / ``--area-rule``)
AREA_RULES = ("json", "bbox", "crowdpose")
#: crowdposetools' ``tmparea = bbox_w * bbox_h * 0.53``
CROWDPOSE_AREA_FACTOR = 0.53
#: crowdposetools' ``get_type_result(first=0.2, second=0.8)`` edges of ``crowdIndex``
CROWD_INDEX_EDGES = (0.2, 0.8)
#: stats keys of the three crowd-index subsets (CrowdPose's AP(E) / AP(M) / AP(H))
CROWD_STAT_NAMES = ("AP(E)", "AP(M)", "AP(H)")

#: besides the spec's aliases: converted sets also call CrowdPose's ``top_head`` this
_EXTRA_HEAD_ALIASES = {"head_top": "top_head"}

_warned: set[str] = set()


def warn_once(message: str) -> None:
    """One ``robustpose: warning: ...`` line on stderr, once per message per process
    (a training run builds its metric at every validation)."""
    if message not in _warned:
        _warned.add(message)
        print(f"robustpose: warning: {message}", file=sys.stderr)


def is_crowdpose_layout(names: Sequence[str]) -> bool:
    """True for CrowdPose's 14 keypoint names in CrowdPose's order (ExLPose uses them too)."""
    from robustpose.data.specs import CROWDPOSE_NAMES, KEYPOINT_ALIASES  # the preset's order

    aliases = {**KEYPOINT_ALIASES, **_EXTRA_HEAD_ALIASES}
    return [aliases.get(str(n), str(n)) for n in names] == list(CROWDPOSE_NAMES)


def _box_area(ann: dict, source: Any, where: str) -> float:
    box = ann.get("bbox")
    try:
        w, h = float(box[2]), float(box[3])
    except (TypeError, ValueError, IndexError, KeyError):
        raise ValueError(f"{source}: {where}: needs a 'bbox' [x, y, w, h] for its area") from None
    if not (math.isfinite(w) and math.isfinite(h)):
        raise ValueError(f"{source}: {where}: bbox width/height are not finite")
    return w * h


def apply_area_rule(annotations: list[dict], names: Sequence[str], area_rule: str | None,
                    source: Any) -> str:
    """Set every annotation's ``area`` (in place) by the set's rule; returns the rule used.

    ``area_rule`` None picks it: CrowdPose's keypoint names -> ``'crowdpose'``; every
    annotation has an ``area`` -> ``'json'``; otherwise ``'json'`` where an ``area`` is
    given and ``w * h`` elsewhere (``'bbox'`` when none has one), with one warning line
    naming the rule. ``'json'`` given explicitly fills missing areas the same way.
    """
    if area_rule is not None and area_rule not in AREA_RULES:
        raise ValueError(f"area_rule must be one of {', '.join(AREA_RULES)}, got {area_rule!r}")
    missing = [a for a in annotations if "area" not in a]
    rule = area_rule
    if rule is None:
        if is_crowdpose_layout(names):
            rule = "crowdpose"
        elif not missing:
            rule = "json"
        else:
            rule = "bbox" if len(missing) == len(annotations) else "json"
            held = "no annotation carries" if rule == "bbox" else \
                f"{len(missing)} of {len(annotations)} annotations carry no"
            warn_once(f"{source}: {held} 'area' and the set has no known area convention; "
                      f"OKS uses w*h of the GT box{' there' if rule == 'json' else ''} "
                      f"(area_rule {rule!r}); choose with area_rule / --area-rule "
                      f"{'|'.join(AREA_RULES)}")
    elif rule == "json" and missing:
        warn_once(f"{source}: area_rule 'json' but {len(missing)} of {len(annotations)} "
                  "annotations carry no 'area'; those use w*h of the GT box")
    for i, ann in enumerate(annotations):
        where = f"annotation {ann.get('id', i)} (image_id {ann.get('image_id')})"
        if rule == "crowdpose":
            ann["area"] = CROWDPOSE_AREA_FACTOR * _box_area(ann, source, where)
        elif rule == "bbox" or "area" not in ann:
            ann["area"] = _box_area(ann, source, where)
    return rule


def renumber_annotations(annotations: list[dict]) -> list[Any]:
    """Give the annotations ids 1..N in order (in place); returns the user's ids, in order
    (``None`` where an annotation had none): internal id ``i`` is user id ``result[i - 1]``."""
    original = []
    for i, ann in enumerate(annotations):
        original.append(ann.get("id"))
        ann["id"] = i + 1
    return original


def crowd_index_subsets(images: list[dict]) -> dict[str, list] | None:
    """Image ids of CrowdPose's easy / medium / hard subsets, keyed by
    :data:`CROWD_STAT_NAMES`; None unless every image carries a finite ``crowdIndex``."""
    values = []
    for img in images:
        ci = img.get("crowdIndex")
        if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not math.isfinite(ci):
            return None
        values.append((img["id"], float(ci)))
    if not values:
        return None
    first, second = CROWD_INDEX_EDGES
    easy = [i for i, ci in values if ci < first]
    medium = [i for i, ci in values if first <= ci < second]
    hard = [i for i, ci in values if ci >= second]
    return dict(zip(CROWD_STAT_NAMES, (easy, medium, hard)))


def resolve_sigmas(names: Sequence[str], sigmas: Sequence[float] | None,
                   source: str | Path, category: dict | None = None,
                   dataset: dict | None = None) -> np.ndarray:
    """Per-keypoint OKS sigmas: the given list, else those of the spec the loader's
    :func:`robustpose.data.spec_for_annotations` picks for ``category`` of the json
    ``dataset`` (a preset matched by names in order; where presets share the names, the
    json's ``info.description``; never from the keypoint count alone), else a one-line
    error naming --spec / --sigmas."""
    k = len(names)
    if sigmas is not None:
        arr = np.asarray(list(sigmas), dtype=np.float64).reshape(-1)
        if len(arr) != k:
            raise ValueError(f"{source}: {len(arr)} sigmas given for {k} keypoints")
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"{source}: sigmas must be positive finite numbers")
        return arr
    from robustpose.data import spec_for_annotations

    cat = dict(category or {}, keypoints=list(names))
    spec = spec_for_annotations(dataset or {}, source=str(source), category=cat)
    return np.asarray(spec.sigmas, dtype=np.float64)
