"""Contact sheets of SynthPose images, optionally with their keypoint labels drawn on.

    from robustpose.data.synth import validation_split
    from robustpose.data.synth_preview import contact_sheet, save_png
    save_png("sheet.png", contact_sheet(validation_split(), range(8), labels=True))

Label colours: person's left = blue, right = orange, centre (nose) = yellow; a filled dot
is visible (v=2), a hollow one hidden (v=1); unlabelled points (v=0) are not drawn. The
box is the annotation's bbox.
"""
from __future__ import annotations

import os
from typing import Iterable

import cv2
import numpy as np

from robustpose.data.synth_body import COCO_KEYPOINTS, COCO_SKELETON

_LEFT, _RIGHT, _MID = (40, 110, 255), (255, 140, 0), (255, 230, 0)


def draw_labels(image: np.ndarray, annotations: list[dict]) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB) with skeletons, keypoints and boxes drawn."""
    out = image.copy()
    for ann in annotations:
        kp = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
        for a, b in COCO_SKELETON:
            if kp[a - 1, 2] > 0 and kp[b - 1, 2] > 0:
                cv2.line(out, (int(round(kp[a - 1, 0])), int(round(kp[a - 1, 1]))),
                         (int(round(kp[b - 1, 0])), int(round(kp[b - 1, 1]))), (0, 220, 0), 1, cv2.LINE_AA)
        for k, (x, y, v) in enumerate(kp):
            if v <= 0:
                continue
            name = COCO_KEYPOINTS[k]
            colour = _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MID
            cv2.circle(out, (int(round(x)), int(round(y))), 2, colour, -1 if v == 2 else 1, cv2.LINE_AA)
        x, y, w, h = ann["bbox"]
        cv2.rectangle(out, (int(x), int(y)), (int(x + w - 1), int(y + h - 1)), (255, 255, 255), 1)
    return out


def contact_sheet(dataset, indices: Iterable[int], columns: int = 4, labels: bool = False,
                  gap: int = 2) -> np.ndarray:
    """Tiles of ``dataset[i]`` images (uint8 RGB), ``columns`` per row, labels optional."""
    tiles = []
    for i in indices:
        image, anns = dataset[i]
        tiles.append(draw_labels(image, anns) if labels else image)
    if not tiles:
        raise ValueError("contact_sheet needs at least one index")
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), 255, np.uint8)
    for n, tile in enumerate(tiles):
        r, c = divmod(n, columns)
        sheet[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return sheet


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 RGB image as PNG (atomically)."""
    from robustpose.utils.io import atomic_write_bytes

    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover
        raise ValueError(f"{path}: could not encode PNG")
    atomic_write_bytes(path, data.tobytes())
