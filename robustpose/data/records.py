"""One person to crop: :class:`PersonRecord`, plus small json-reading helpers."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PersonRecord", "read_json"]


@dataclass
class PersonRecord:
    """A person instance of a top-down dataset.

    - ``image_id``: the COCO image id (int); for MPII the image name's number.
    - ``image_path``: full path of the image file (inside the image root).
    - ``bbox``: xywh box in image pixels (ground truth or detector box).
    - ``score``: box score (1.0 for ground-truth boxes).
    - ``keypoints``: (K, 3) x, y, visibility (COCO v = 0/1/2, MPII joints_vis) in image
      pixels, or ``None`` when only a detector box is known.
    - ``area``: the annotation's ``area`` (segment area, COCO) or w x h of a detector box.
    - ``center`` (2,), ``scale`` (2,): HRNet crop parameters (scale in units of 200 px,
      padding and aspect ratio included).
    - ``extra``: source-specific fields, e.g. ``ann_id``, ``head_size`` (MPII, pixels),
      ``image_size`` (w, h), ``source`` ('gt' / 'det' / 'mpii').
    """

    image_id: Any
    image_path: Path
    bbox: np.ndarray
    score: float
    keypoints: np.ndarray | None
    area: float
    center: np.ndarray
    scale: np.ndarray
    extra: dict = field(default_factory=dict)


def read_json(path: str | os.PathLike, what: str = "annotation file") -> Any:
    """Load json with one-line errors naming the file (missing, unreadable, not json)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found")
    if path.is_dir():
        raise ValueError(f"{path}: {what} is a directory, expected a json file")
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read().decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: {what} is not UTF-8 text (not a json file?)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: {what} is not valid json (line {exc.lineno}: {exc.msg})"
                         ) from None


def finite_box(box: Any, source: str) -> np.ndarray:
    """A finite float64 xywh box, or a one-line ValueError naming ``source``."""
    try:
        arr = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: bbox {box!r} is not 4 numbers") from None
    if arr.size != 4 or not all(math.isfinite(v) for v in arr):
        raise ValueError(f"{source}: bbox {box!r} is not 4 finite numbers")
    return arr
