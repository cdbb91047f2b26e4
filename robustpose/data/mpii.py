"""MPII in the HRNet json layout: a list of ``{image, center, scale, joints, joints_vis}``.

Conventions of HRNet's ``MPIIDataset._get_db``: ``scale`` is one number (person height /
200); the centre moves down by ``15 * scale`` px and the scale grows by 1.25; then centre
and joints move from MATLAB's 1-based to 0-based pixels (minus 1). Records therefore hold
0-based image coordinates; add 1.0 to predictions before comparing them with the official
``gt_valid.mat`` (as HRNet does).
Head sizes (the PCKh normaliser, pixels): the entry's ``head_size`` field, or
``0.6 * ||headbox_br - headbox_tl||`` from ``gt_valid.mat``'s ``headboxes_src`` when
``gt_mat`` is given (that file lists persons in the same order as ``valid.json``).
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .images import resolve_under_root
from .records import PersonRecord, read_json
from .transforms import center_scale_to_box

__all__ = ["load_mpii_records", "head_sizes_from_mat", "MPII_HEAD_SIZE_FACTOR"]

#: SC_BIAS of the official evaluation: head size = 0.6 x head-box diagonal.
MPII_HEAD_SIZE_FACTOR = 0.6
MPII_NUM_JOINTS = 16


def head_sizes_from_mat(gt_mat: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Head sizes (N,) and joint visibility (N, 16) or None from an official ``gt_*.mat``.

    Reads ``headboxes_src`` (2 x 2 x N: top-left / bottom-right, x / y) and, when present,
    ``jnt_missing`` (16 x N) with ``scipy.io.loadmat``.
    """
    from scipy.io import loadmat

    path = Path(gt_mat)
    if not path.exists():
        raise FileNotFoundError(f"{path}: MPII ground-truth .mat file not found")
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for non-.mat input
        raise ValueError(f"{path}: not a readable .mat file ({exc})") from None
    if "headboxes_src" not in mat:
        raise ValueError(f"{path}: no 'headboxes_src' array (not an MPII gt_*.mat file?)")
    boxes = np.asarray(mat["headboxes_src"], dtype=np.float64)
    if boxes.ndim != 3 or boxes.shape[:2] != (2, 2):
        raise ValueError(f"{path}: headboxes_src has shape {boxes.shape}, expected 2 x 2 x N")
    sizes = MPII_HEAD_SIZE_FACTOR * np.linalg.norm(boxes[1] - boxes[0], axis=0)
    visible = None
    if "jnt_missing" in mat:
        visible = (1 - np.asarray(mat["jnt_missing"], dtype=np.float64)).T
    return sizes, visible


def _image_id(name: str) -> Any:
    stem = PurePosixPath(name).stem
    return int(stem) if stem.isdigit() else name


def load_mpii_records(annotation_file: str | os.PathLike, image_root: str | os.PathLike,
                      gt_mat: str | os.PathLike | None = None) -> list[PersonRecord]:
    """Person records of an HRNet-layout MPII json (train/valid/test).

    Each record: 0-based ``keypoints`` (16, 3) with ``joints_vis`` as visibility (None for
    the test split, which has no joints), HRNet's adjusted ``center``/``scale``, ``bbox`` =
    the square crop window (padding included), ``score`` 1, ``area`` = window area,
    ``image_id`` = the image name's number (so every person of an image shares it), and
    ``extra['head_size']`` (pixels, None when unknown), ``extra['image_name']``,
    ``extra['index']`` (position in the file). With ``gt_mat``, ``head_size`` comes from
    its head boxes and ``extra['eval_visible']`` from its ``jnt_missing``.
    """
    source = str(annotation_file)
    entries = read_json(annotation_file)
    if not isinstance(entries, list):
        raise ValueError(f"{source}: expected a json list of MPII person entries")
    if not entries:
        raise ValueError(f"{source}: no person entries (empty dataset)")
    head_sizes = eval_visible = None
    if gt_mat is not None:
        head_sizes, eval_visible = head_sizes_from_mat(gt_mat)
        if len(head_sizes) != len(entries):
            raise ValueError(f"{gt_mat}: {len(head_sizes)} head boxes but {source} has "
                             f"{len(entries)} persons (the .mat must match the json order)")
    root = Path(image_root)
    records = []
    for i, entry in enumerate(entries):
        where = f"{source}: entry {i}"
        if not isinstance(entry, dict) or not {"image", "center", "scale"} <= entry.keys():
            raise ValueError(f"{where} lacks 'image', 'center' or 'scale'")
        path = resolve_under_root(root, entry["image"], source)
        center = np.asarray(entry["center"], dtype=np.float64).reshape(-1)
        s = float(np.asarray(entry["scale"], dtype=np.float64).reshape(-1)[0])
        if center.shape != (2,) or not np.isfinite(center).all() or not np.isfinite(s) or s <= 0:
            raise ValueError(f"{where}: center/scale must be finite (2 numbers, one > 0)")
        scale = np.array([s, s], dtype=np.float64)
        if center[0] != -1:
            center[1] = center[1] + 15 * scale[1]
            scale = scale * 1.25
        center = center - 1
        keypoints = None
        if "joints" in entry:
            joints = np.asarray(entry["joints"], dtype=np.float64)
            vis = np.asarray(entry.get("joints_vis", np.ones(len(joints))), dtype=np.float64)
            if joints.ndim != 2 or joints.shape[0] != MPII_NUM_JOINTS or joints.shape[1] < 2 \
                    or vis.shape != (MPII_NUM_JOINTS,):
                raise ValueError(f"{where} has joints of shape {joints.shape} / joints_vis "
                                 f"{vis.shape}, expected {MPII_NUM_JOINTS} joints")
            if not np.isfinite(joints).all():
                raise ValueError(f"{where}: joints contain NaN or inf")
            keypoints = np.zeros((MPII_NUM_JOINTS, 3), dtype=np.float64)
            keypoints[:, :2] = joints[:, :2] - 1
            keypoints[:, 2] = vis
        head = entry.get("head_size")
        if head_sizes is not None:
            head = float(head_sizes[i])
        extra = {"source": "mpii", "index": i, "image_name": entry["image"],
                 "head_size": None if head is None else float(head)}
        if eval_visible is not None:
            extra["eval_visible"] = eval_visible[i]
        box = center_scale_to_box(center, scale)
        records.append(PersonRecord(_image_id(entry["image"]), path, box, 1.0, keypoints,
                                    float(box[2] * box[3]), center.astype(np.float32),
                                    scale.astype(np.float32), extra))
    return records
