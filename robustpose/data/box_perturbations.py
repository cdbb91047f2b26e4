"""Box perturbations: noise on the person box a top-down model crops from, not on the pixels.

A top-down model sees the crop its box defines, so a box that moves moves the crop: the
keypoints of the same person in the same image change. Users meet this as the
frame-to-frame keypoint jitter of a video (mmpose issue #3257 reports keypoints that move
by 20-50 px between frames of a still person; a tracker's or detector's box moves by a few
percent of its size per frame) and as sensitivity to box size and padding. Four families,
each at severities 1..5 (the numbers are fractions of the box's own width / height):

==============  =====================================================================  ==============================
name            what moves (per person, one seeded draw)                               severity 1..5
==============  =====================================================================  ==============================
``box_shift``   the centre, by ``f x (w, h)`` in a uniformly random direction           f = 0.05 .. 0.25
``box_scale``   both sides by a factor ``(1 + m) ** +-1`` (up or down, fair coin)       m = 0.10 .. 0.50
``box_aspect``  width x ``(1 + a) ** +-1``, height / the same (area kept)              a = 0.10 .. 0.50
``box_jitter``  each of the four edges by ``N(0, sigma)`` of its side (detector noise)  sigma = 0.02 .. 0.10
==============  =====================================================================  ==============================

Where the numbers come from: training augmentation sets what a model has seen. HRNet's
COCO configs scale crops by up to +-35 % (``SCALE_FACTOR: 0.35``), mmpose 0.x's
``TopDownGetRandomScaleRotation`` by up to +-50 % and mmpose 1.x's ``RandomBBoxTransform``
shifts the centre by up to 16 % of the box (``shift_factor=0.16``). So ``box_shift`` and
``box_scale`` step from well inside those ranges (severity 1-2) to past them (4-5).
``box_jitter`` (severity 3: 6 % of a side per edge) moves a 400 px tall person's box edges
by ~24 px, the 20-50 px of the reported video jitter at severities 2-5. ``box_aspect`` has
no training counterpart (augmentation keeps the aspect); it is what a box padded
differently on two axes (ONNX vs SDK preprocessing) looks like.

The perturbed box goes through the same crop rule as the clean one: the crop's centre
moves with the box centre and its scale by the ratio of the aspect-corrected box sizes
(:func:`robustpose.geometry.box_to_center_scale`'s rule; the padding factor cancels), so
ground-truth and detector boxes, any padding and any crop aspect are perturbed alike. The
record's ``bbox`` (what metrics normalise by) stays the original; the perturbed box is in
``extra['perturbed_bbox']``. Every draw comes from ``np.random.default_rng(derive_seed(seed,
name, severity, image id, annotation id))`` (a detector box without an annotation id uses
its index among the image's records), so a person's box moves the same way in every run
and every model, and independently of the other people.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from robustpose.corruptions.selection import BOX_PERTURBATIONS
from robustpose.geometry import box_to_center_scale
from robustpose.utils.seeding import derive_seed

#: magnitude per severity 1..5 (fractions of the box's width / height; see the module doc)
BOX_MAGNITUDES: dict[str, tuple[float, ...]] = {
    "box_shift": (0.05, 0.10, 0.15, 0.20, 0.25),
    "box_scale": (0.10, 0.20, 0.30, 0.40, 0.50),
    "box_aspect": (0.10, 0.20, 0.30, 0.40, 0.50),
    "box_jitter": (0.02, 0.04, 0.06, 0.08, 0.10),
}
assert tuple(BOX_MAGNITUDES) == BOX_PERTURBATIONS  # one list of names (the grammar's)


def is_box_perturbation(name: str) -> bool:
    """True for ``box_shift`` / ``box_scale`` / ``box_aspect`` / ``box_jitter``."""
    return name in BOX_MAGNITUDES


def magnitude(name: str, severity: int) -> float:
    """The documented magnitude of ``name`` at ``severity`` 1..5 (one-line ValueError else)."""
    if name not in BOX_MAGNITUDES:
        raise ValueError(f"unknown box perturbation {name!r}; use {', '.join(BOX_MAGNITUDES)}")
    if not 1 <= int(severity) <= 5:
        raise ValueError(f"{name}: severity must lie in 1..5, got {severity!r}")
    return BOX_MAGNITUDES[name][int(severity) - 1]


def perturb_box(box_xywh: Sequence[float], name: str, severity: int,
                rng: np.random.Generator) -> np.ndarray:
    """One perturbed copy of ``box_xywh`` (image px) -> xywh (image px, float64).

    The draws per call: ``box_shift`` one angle; ``box_scale`` / ``box_aspect`` one sign;
    ``box_jitter`` four normals (x1, y1, x2, y2), each edge moved by sigma x its side. A
    side never shrinks below 1 px (a jittered edge crossing the other keeps 1 px).
    """
    m = magnitude(name, severity)
    x, y, w, h = (float(v) for v in box_xywh[:4])
    cx, cy = x + w / 2, y + h / 2
    if name == "box_shift":
        angle = rng.uniform(0.0, 2.0 * np.pi)
        cx, cy = cx + m * w * np.cos(angle), cy + m * h * np.sin(angle)
    elif name == "box_scale":
        factor = (1.0 + m) ** (1 if rng.random() < 0.5 else -1)
        w, h = w * factor, h * factor
    elif name == "box_aspect":
        factor = (1.0 + m) ** (1 if rng.random() < 0.5 else -1)
        w, h = w * factor, h / factor
    else:  # box_jitter: the four edges independently, as a detector's box noise
        dx1, dy1, dx2, dy2 = rng.normal(0.0, m, size=4) * np.array([w, h, w, h])
        x1, y1 = x + dx1, y + dy1
        x2, y2 = max(x + w + dx2, x1 + 1.0), max(y + h + dy2, y1 + 1.0)
        return np.array([x1, y1, x2 - x1, y2 - y1], np.float64)
    return np.array([cx - w / 2, cy - h / 2, w, h], np.float64)


def perturbed_center_scale(center: Sequence[float], scale: Sequence[float],
                           box_xywh: Sequence[float], new_box_xywh: Sequence[float],
                           aspect_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """The crop (center, scale) of ``new_box_xywh`` given the clean crop of ``box_xywh``.

    center' = center + (box centre shift); scale' = scale x size(new) / size(old), sizes
    aspect-corrected to ``aspect_ratio`` (crop w / h) as the crop rule does, so the
    record's padding (and any rule that made its clean crop) carries over unchanged.
    Returns float32 (2,) arrays like :func:`robustpose.geometry.box_to_center_scale`.
    """
    old_c, old_s = box_to_center_scale(box_xywh, aspect_ratio, padding=1.0)
    new_c, new_s = box_to_center_scale(new_box_xywh, aspect_ratio, padding=1.0)
    center = np.asarray(center, np.float64) + (new_c.astype(np.float64) - old_c)
    ratio = new_s.astype(np.float64) / np.maximum(old_s.astype(np.float64), 1e-12)
    return center.astype(np.float32), (np.asarray(scale, np.float64) * ratio).astype(np.float32)


def person_seed(seed: int, name: str, severity: int, record: Any, index_in_image: int) -> int:
    """``derive_seed(seed, name, severity, image id, annotation id)`` of one person; a
    record without ``extra['ann_id']`` (a detector box) uses ``'det<index in its image>'``."""
    ann = (getattr(record, "extra", None) or {}).get("ann_id")
    return derive_seed(int(seed), name, int(severity), str(record.image_id),
                       str(ann) if ann is not None else f"det{index_in_image}")


def perturb_records(records: Sequence[Any], name: str, severity: int, seed: int,
                    aspect_ratio: float) -> list[Any]:
    """Copies of ``records`` (:class:`~robustpose.data.PersonRecord`) whose crops follow
    perturbed boxes; ``bbox``, keypoints and the image untouched, the perturbed box in
    ``extra['perturbed_bbox']`` (xywh image px)."""
    magnitude(name, severity)  # refuse a bad name / severity before any copy
    out, counts = [], {}
    for record in records:
        index = counts.get(record.image_id, 0)
        counts[record.image_id] = index + 1
        rng = np.random.default_rng(person_seed(seed, name, severity, record, index))
        new_box = perturb_box(record.bbox, name, severity, rng)
        center, scale = perturbed_center_scale(record.center, record.scale, record.bbox,
                                               new_box, aspect_ratio)
        extra = {**record.extra, "perturbed_bbox": [float(v) for v in new_box],
                 "box_perturbation": f"{name}/{int(severity)}"}
        out.append(dataclasses.replace(record, center=center, scale=scale, extra=extra))
    return out


def reframe_points(points: np.ndarray, from_center: np.ndarray, from_scale: np.ndarray,
                   to_center: np.ndarray, to_scale: np.ndarray,
                   frame_size: Sequence[float]) -> np.ndarray:
    """Points in one crop's output frame -> the same image points in another crop's frame.

    ``points`` (N, K, 2) in a ``frame_size`` (w, h) grid (heatmap px) of the crops
    ``from_center`` / ``from_scale`` (N, 2); returns them in the grid of the crops
    ``to_center`` / ``to_scale``. Rotation-free crops are axis-aligned scalings, so this is
    the exact composition of :func:`robustpose.codecs.heatmaps_to_image_coords`'s
    back-projection with the forward crop map (x_img = c - s*200/2 + x * s*200 / w).
    Used by the stability run: a box-perturbed crop's maxima are compared with the clean
    crop's in the clean crop's heatmap px, i.e. in image coordinates at the clean scale.
    """
    from robustpose.utils.conventions import PIXEL_STD

    pts = np.asarray(points, np.float64)
    half = np.asarray(frame_size, np.float64) / 2
    # HRNet's affine maps the crop centre to the frame centre and zooms by the crop width
    # over the frame width on both axes (the crop keeps frame_size's aspect)
    zoom_from = (np.asarray(from_scale, np.float64)[:, 0] * PIXEL_STD / (2 * half[0]))
    zoom_to = (np.asarray(to_scale, np.float64)[:, 0] * PIXEL_STD / (2 * half[0]))
    image = np.asarray(from_center, np.float64)[:, None, :] + (pts - half) * zoom_from[:, None, None]
    return (image - np.asarray(to_center, np.float64)[:, None, :]) / zoom_to[:, None, None] + half
