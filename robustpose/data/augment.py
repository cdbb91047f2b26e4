"""HRNet training augmentation (half body, scale, rotation, horizontal flip), seeded.

Every draw comes from one ``np.random.Generator`` seeded from ``(seed, 'augment', epoch,
index)`` (:func:`robustpose.utils.seeding.rng_from`), so an item's augmentation does not
depend on worker count, process or order. The distributions are HRNet's
(``JointsDataset.__getitem__``):

- half body: when more than ``half_body_min_joints`` keypoints are visible, with
  probability ``half_body_prob``; the upper body is chosen when a *normal* draw is < 0.5
  (HRNet uses ``np.random.randn()`` there, so about 69 % upper) and it has > 2 joints;
  the new box is the joints' extent, widened to the aspect ratio, x 1.5.
- scale: ``s * clip(N(0,1) * sf + 1, 1 - sf, 1 + sf)``.
- rotation: ``clip(N(0,1) * rf, -2 rf, 2 rf)`` degrees with probability ``rotation_prob``
  (0.6), else 0.
- flip with probability 0.5: image mirrored, ``x -> width - 1 - x``, pairs swapped.

Defaults are HRNet's COCO config (sf 0.35, rf 45, half body 0.3 / 8 joints);
:meth:`TopDownAugment.hrnet_mpii` gives the MPII config (sf 0.25, rf 30, no half body).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .specs import KeypointSpec
from .transforms import PIXEL_STD

__all__ = ["TopDownAugment", "AugmentParams"]


@dataclass
class AugmentParams:
    """The drawn augmentation of one item: crop centre/scale, rotation (deg), flip."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flip: bool
    half_body: bool


@dataclass
class TopDownAugment:
    """HRNet's training augmentation parameters (see module docstring)."""

    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip: bool = True
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8
    half_body_padding: float = 1.5

    @classmethod
    def hrnet_mpii(cls) -> "TopDownAugment":
        return cls(scale_factor=0.25, rotation_factor=30.0, half_body_prob=-1.0)

    def half_body(self, keypoints: np.ndarray, spec: KeypointSpec, aspect_ratio: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        """HRNet's ``half_body_transform``: a box around the upper or lower body joints."""
        upper_ids = set(spec.upper_body_ids)
        visible = keypoints[:, 2] > 0
        upper = [keypoints[j, :2] for j in range(len(keypoints)) if visible[j] and j in upper_ids]
        lower = [keypoints[j, :2] for j in range(len(keypoints))
                 if visible[j] and j not in upper_ids]
        if rng.standard_normal() < 0.5 and len(upper) > 2:
            selected = upper
        else:
            selected = lower if len(lower) > 2 else upper
        if len(selected) < 2:
            return None
        pts = np.asarray(selected, dtype=np.float32)
        center = pts.mean(axis=0)
        w, h = pts.max(axis=0) - pts.min(axis=0)
        if w > aspect_ratio * h:
            h = w / aspect_ratio
        elif w < aspect_ratio * h:
            w = h * aspect_ratio
        scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * self.half_body_padding
        return center.astype(np.float32), scale

    def sample(self, rng: np.random.Generator, keypoints: np.ndarray, center: np.ndarray,
               scale: np.ndarray, spec: KeypointSpec, aspect_ratio: float) -> AugmentParams:
        """Draw one item's augmentation. ``keypoints`` (K, 3) in image px (vis > 0 = labelled).

        The draws happen in a fixed order (half-body gate, half-body side, scale, rotation
        gate, rotation, flip) and are all made whether used or not, so one item's
        parameters never shift another's.
        """
        center = np.array(center, dtype=np.float32, copy=True)
        scale = np.array(scale, dtype=np.float32, copy=True)
        half_gate = rng.random()
        used_half = False
        if (spec.upper_body_ids and (keypoints[:, 2] > 0).sum() > self.half_body_min_joints
                and half_gate < self.half_body_prob):
            result = self.half_body(keypoints, spec, aspect_ratio, rng)
            if result is not None:
                center, scale = result
                used_half = True
        else:
            rng.standard_normal()  # keep the stream aligned with the half-body branch
        sf, rf = self.scale_factor, self.rotation_factor
        scale = scale * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
        rot_gate, rot_draw = rng.random(), rng.standard_normal()
        rotation = float(np.clip(rot_draw * rf, -2 * rf, 2 * rf)) if rot_gate <= self.rotation_prob \
            else 0.0
        flip = bool(self.flip and rng.random() <= self.flip_prob)
        return AugmentParams(center, scale.astype(np.float32), rotation, flip, used_half)
