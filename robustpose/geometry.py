"""Top-down geometry with the HRNet conventions (center/scale, affine warp, pixel_std 200).

Torch-free (numpy + OpenCV) and below both ``codecs`` and ``data`` in the package layers:
the crop that makes a training target and the back-projection of a prediction share it.

``center`` is the box centre in image pixels; ``scale`` (2,) is the crop size in units of
``PIXEL_STD = 200`` px, already widened to the input aspect ratio and padded by 1.25.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from robustpose.utils.conventions import PIXEL_STD

__all__ = ["PIXEL_STD", "box_to_center_scale", "center_scale_to_box", "get_affine_transform",
           "affine_transform_points", "crop_image", "fliplr_keypoints"]


def box_to_center_scale(box_xywh: Sequence[float], aspect_ratio: float,
                        padding: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """HRNet's ``_xywh2cs``: centre = box centre; the short side grows to ``aspect_ratio``
    (= input width / height); scale = size / 200 x ``padding``.

    Returns ``center`` (2,) and ``scale`` (2,), float32 as in HRNet.
    """
    x, y, w, h = (float(v) for v in box_xywh[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32)
    if center[0] != -1:
        scale = scale * padding
    return center, scale.astype(np.float32)


def center_scale_to_box(center: Sequence[float], scale: Sequence[float]) -> np.ndarray:
    """The crop window as an xywh box in image pixels (includes the padding)."""
    w, h = float(scale[0]) * PIXEL_STD, float(scale[1]) * PIXEL_STD
    return np.array([center[0] - w / 2, center[1] - h / 2, w, h], dtype=np.float64)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    direction = a - b
    return b + np.array([-direction[1], direction[0]], dtype=np.float32)


def get_affine_transform(center: Sequence[float], scale: Sequence[float], rot: float,
                         output_size: Sequence[int], inv: bool = False,
                         shift: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """2x3 affine matrix mapping image pixels into an ``output_size`` (w, h) crop.

    As HRNet: three point pairs (the centre, a point half a crop-width above it rotated by
    ``rot`` degrees, and a third point at a right angle), solved with
    ``cv2.getAffineTransform``. Only ``scale[0]`` (the width) sets the zoom, so the crop
    keeps ``output_size``'s aspect ratio. ``inv=True`` gives the crop -> image matrix.
    """
    # dtypes as HRNet: scale in float32, the direction and sums in float64, points stored
    # in float32 (so the matrices agree with HRNet's to the last bit for float32 inputs)
    center = np.asarray(center)
    scale_px = np.asarray(scale, dtype=np.float32) * np.float32(PIXEL_STD)
    shift = np.asarray(shift, dtype=np.float32)
    src_w = float(scale_px[0])
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    rot_rad = np.pi * rot / 180.0
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    src_dir = np.array([-(src_w * -0.5) * sn, src_w * -0.5 * cs], dtype=np.float64)
    dst_dir = np.array([0.0, dst_w * -0.5], dtype=np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center + scale_px * shift
    src[1] = center + src_dir + scale_px * shift
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def affine_transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` to points (..., 2); returns float64 (..., 2)."""
    pts = np.asarray(points, dtype=np.float64)[..., :2]
    return pts @ matrix[:, :2].T.astype(np.float64) + matrix[:, 2].astype(np.float64)


def crop_image(image: np.ndarray, center: Sequence[float], scale: Sequence[float],
               output_size: Sequence[int], rot: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The top-down crop: ``cv2.warpAffine`` with bilinear interpolation, black border.

    Returns the crop (h x w x C, same dtype) and the 2x3 image -> crop matrix.
    """
    matrix = get_affine_transform(center, scale, rot, output_size)
    crop = cv2.warpAffine(image, matrix, (int(output_size[0]), int(output_size[1])),
                          flags=cv2.INTER_LINEAR)
    return crop, matrix


def fliplr_keypoints(keypoints: np.ndarray, image_width: int,
                     flip_pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Mirror (K, 3) keypoints of an image of width ``image_width`` and swap left/right.

    HRNet's ``fliplr_joints``: ``x -> width - 1 - x``; invisible keypoints are zeroed.
    """
    out = np.array(keypoints, dtype=np.float64, copy=True)
    out[:, 0] = image_width - out[:, 0] - 1
    for a, b in flip_pairs:
        out[[a, b]] = out[[b, a]]
    out[:, :2] *= (out[:, 2:3] > 0)
    return out
