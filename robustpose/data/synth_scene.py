"""SynthPose scenes: background clutter, 1-4 placed figures, foreground occluders, labels.

Visibility follows COCO: 2 = visible, 1 = inside the image but hidden (by another
person, a foreground object or the figure's own limbs), 0 = not labelled, with
coordinates (0, 0): outside the image (truncation) or a face point on the far side of
the head (a face seen from behind has no eyes or nose to click on).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robustpose.data.synth_body import (Placement, Proportions, extent, pose_body, project,
                                        sample_angles, sample_rotation, sample_yaw, to_image)
from robustpose.data.synth_render import (KEYPOINT_PARTS, PERSON_STRIDE, SHIFT, Appearance,
                                          _fix, draw_capsule, render_person, texture)

OCCLUDER_ID = 255


@dataclass
class PersonLabel:
    """One rendered person: keypoints (17, 3) image px + visibility, bbox xywh, area px."""

    keypoints: np.ndarray
    bbox: tuple[float, float, float, float]
    area: float
    pose: str
    yaw_deg: float

    @property
    def num_keypoints(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(float(v) for v in rng.uniform(0, 255, 3))


def render_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Float32 h x w x 3 (0..255): gradient or wall/floor, mottling, shapes, limb-like sticks."""
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    if rng.random() < 0.5:
        img = c1 * (1 - t) + c2 * t
    else:
        horizon = rng.uniform(0.3, 0.8)
        img = np.where(t < horizon, c1, c2)
    img = np.broadcast_to(img, (h, w, 3)).astype(np.float32).copy()
    small = rng.normal(0, 1, (max(h // 16, 2), max(w // 16, 2), 3)).astype(np.float32)
    img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(0, 25)
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(6, 20))):
        col = _random_colour(rng)
        kind = rng.integers(4)
        x, y = rng.uniform(-0.1 * w, 1.1 * w), rng.uniform(-0.1 * h, 1.1 * h)
        size = rng.uniform(0.05, 0.4) * min(h, w)
        if kind == 0:
            p1 = _fix([x, y])
            p2 = _fix([x + size * rng.uniform(0.3, 2), y + size * rng.uniform(0.3, 2)])
            cv2.rectangle(canvas, tuple(int(v) for v in p1), tuple(int(v) for v in p2), col, -1, cv2.LINE_AA, SHIFT)
        elif kind == 1:
            cv2.ellipse(canvas, tuple(int(v) for v in _fix([x, y])),
                        (int(size * 16 * rng.uniform(0.3, 1)), int(size * 16 * rng.uniform(0.3, 1))),
                        float(rng.uniform(0, 180)), 0, 360, col, -1, cv2.LINE_AA, SHIFT)
        elif kind == 2:
            pts = np.array([x, y]) + rng.uniform(-size, size, (int(rng.integers(3, 7)), 2))
            hull = cv2.convexHull(_fix(pts).reshape(-1, 1, 2))
            cv2.fillConvexPoly(canvas, hull, col, cv2.LINE_AA, SHIFT)
        else:
            p2 = np.array([x, y]) + rng.uniform(-2 * size, 2 * size, 2)
            cv2.line(canvas, tuple(int(v) for v in _fix([x, y])), tuple(int(v) for v in _fix(p2)),
                     col, int(rng.integers(1, 5)), cv2.LINE_AA, SHIFT)
    img = canvas.astype(np.float32)
    mask = np.zeros((h, w), np.uint8)
    # Textured patches and limb-like distractors (skin or cloth coloured, sometimes jointed).
    for _ in range(int(rng.integers(0, 3))):
        mask[:] = 0
        pts = np.array([rng.uniform(0, w), rng.uniform(0, h)]) + rng.uniform(-0.3, 0.3, (5, 2)) * min(h, w)
        cv2.fillConvexPoly(mask, cv2.convexHull(_fix(pts).reshape(-1, 1, 2)), 255, cv2.LINE_AA, SHIFT)
        a = mask.astype(np.float32)[..., None] / 255
        img = img * (1 - a) + texture(rng, h, w, rng.uniform(0, 255, 3)) * a
    for _ in range(int(rng.integers(2, 7))):
        mask[:] = 0
        length = rng.uniform(0.08, 0.3) * h
        r0 = rng.uniform(2, 7)
        a0 = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        ang = rng.uniform(0, 2 * np.pi)
        a1 = a0 + length * np.array([np.cos(ang), np.sin(ang)])
        draw_capsule(mask, a0, a1, r0, r0 * rng.uniform(0.6, 1.0))
        if rng.random() < 0.5:
            ang += rng.uniform(-2, 2)
            draw_capsule(mask, a1, a1 + length * 0.9 * np.array([np.cos(ang), np.sin(ang)]),
                         r0 * 0.8, r0 * 0.6)
        col = Appearance.sample(rng).skin if rng.random() < 0.5 else rng.uniform(0, 255, 3)
        a = mask.astype(np.float32)[..., None] / 255
        img = img * (1 - a) + col.astype(np.float32) * a
    return img


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    area = lambda r: float(np.prod(r[2:] - r[:2]))  # noqa: E731
    return inter / max(area(a) + area(b) - inter, 1e-6)


def _place_people(rng: np.random.Generator, h: int, w: int):
    count = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.3, 0.2, 0.15]))
    people, boxes = [], []
    for k in range(count):
        for _attempt in range(8):
            props = Proportions.sample(rng)
            pose, ang = sample_angles(rng)
            body = pose_body(props, ang)
            yaw = sample_yaw(rng)
            height = rng.uniform(0.5, 0.95) if count == 1 else rng.uniform(0.35, 0.8)
            place = Placement(yaw=yaw, rotation=sample_rotation(rng), scale=float(height * h),
                              center=(float(rng.uniform(0.1, 0.9) * w), float(rng.uniform(0.3, 0.7) * h)))
            lo, hi = extent(to_image(project(body, yaw)[0], place), 0.0)
            box = np.concatenate([lo, hi])
            if all(_iou(box, other) < 0.4 for other in boxes):
                people.append((place.scale, k, body, place, pose, Appearance.sample(rng)))
                boxes.append(box)
                break
    people.sort(key=lambda p: (p[0], p[1]))  # bigger (nearer) figures are drawn last
    return people


def _foreground_occluders(rng: np.random.Generator, img: np.ndarray, ids: np.ndarray) -> None:
    h, w = ids.shape
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        mask[:] = 0
        if rng.random() < 0.5:  # a pole
            x = rng.uniform(0, w)
            half = rng.uniform(2, 8)
            quad = np.array([[x - half, -5], [x + half, -5], [x + half + rng.uniform(-20, 20), h + 5],
                             [x - half, h + 5]])
            cv2.fillConvexPoly(mask, _fix(quad), 255, cv2.LINE_AA, SHIFT)
        else:  # a box in the lower part of the image
            x, y = rng.uniform(0, w), rng.uniform(0.5, 1.0) * h
            bw, bh = rng.uniform(0.1, 0.3) * w, rng.uniform(0.1, 0.3) * h
            quad = np.array([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]])
            cv2.fillConvexPoly(mask, _fix(quad), 255, cv2.LINE_AA, SHIFT)
        a = mask.astype(np.float32)[..., None] / 255
        img[:] = img * (1 - a) + texture(rng, h, w, rng.uniform(0, 255, 3)) * a
        ids[mask >= 128] = OCCLUDER_ID


def keypoint_visibility(ids: np.ndarray, person: int, xy: np.ndarray, face_hidden: np.ndarray) -> np.ndarray:
    """COCO (17, 3) keypoints of person ``person`` (0-based) from the final id map."""
    h, w = ids.shape
    out = np.zeros((len(xy), 3), np.float32)
    base = PERSON_STRIDE * (person + 1)
    for k, (x, y) in enumerate(xy):
        if face_hidden[k] or not (0 <= x <= w - 1 and 0 <= y <= h - 1):
            continue
        px, py = int(round(x)), int(round(y))
        allowed = [base + p for p in KEYPOINT_PARTS[k]]
        centre = int(ids[py, px])
        near = ids[max(py - 1, 0):py + 2, max(px - 1, 0):px + 2]
        visible = centre in allowed or (centre == 0 and np.isin(near, allowed).any())
        out[k] = (x, y, 2.0 if visible else 1.0)
    return out


def render_scene(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, list[PersonLabel]]:
    """One SynthPose image (uint8 RGB height x width x 3) and its labelled people."""
    background = render_background(rng, height, width)
    people = [(body, place, pose, app) for _s, _k, body, place, pose, app in _place_people(rng, height, width)]
    image, labels, _ids = compose(background, people, rng if rng.random() < 0.2 else None)
    return image, [label for label in labels if label is not None]


def compose(background: np.ndarray, people: list, occluder_rng: np.random.Generator | None = None
            ) -> tuple[np.ndarray, list[PersonLabel | None], np.ndarray]:
    """Draw ``people`` = [(Body3D, Placement, pose name, Appearance)] in order (later ones in front).

    ``occluder_rng``: when given, 1-2 foreground occluders are drawn over everything.
    Returns the uint8 image, one label per person (``None`` for a person left without
    visible pixels or labelled keypoints; those are not annotated) and the id map
    (uint8 H x W: ``PERSON_STRIDE * (person index + 1) + part id``, 255 = occluder).
    """
    img = np.array(background, dtype=np.float32)
    height, width = img.shape[:2]
    ids = np.zeros((height, width), np.uint8)
    drawn = []
    for index, (body, place, pose, app) in enumerate(people):
        (x0, y0, x1, y1), col, alpha, part_ids, kp, face_hidden = render_person(body, app, place, (height, width))
        if col is not None:
            a = alpha[..., None]
            img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - a) + col * a
            roi = ids[y0:y1, x0:x1]
            hit = part_ids > 0
            roi[hit] = PERSON_STRIDE * (index + 1) + part_ids[hit]
        drawn.append((kp, face_hidden, pose, place))
    if occluder_rng is not None:
        _foreground_occluders(occluder_rng, img, ids)
    labels: list[PersonLabel | None] = []
    for index, (kp, face_hidden, pose, place) in enumerate(drawn):
        rows, cols = np.nonzero((ids // PERSON_STRIDE) == index + 1)
        keypoints = keypoint_visibility(ids, index, kp, face_hidden)
        if len(rows) == 0 or not (keypoints[:, 2] > 0).any():
            labels.append(None)  # fully hidden or truncated: not annotated
            continue
        bbox = (float(cols.min()), float(rows.min()), float(cols.max() - cols.min() + 1),
                float(rows.max() - rows.min() + 1))
        labels.append(PersonLabel(keypoints=keypoints, bbox=bbox, area=float(len(rows)), pose=pose,
                                  yaw_deg=float(np.degrees(place.yaw))))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), labels, ids
