"""Target poses for targeted attacks.

The study does not say how it chose targets. The default here: each crop's target is
*another person's* ground-truth pose from the same evaluation set, taken in that
person's own crop frame and used as it is in this crop's frame (both crops are the
box-normalised top-down frames, so the pose keeps its place and size relative to the
box). The partner is a seeded derangement of the set (no crop targets itself); a joint
unlabelled in the partner's pose gets weight 0. Target success is PCK of the attacked
prediction against this target pose (in crop pixels).
"""
from __future__ import annotations

from typing import Any

import numpy as np


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """(n,) seeded permutation with no fixed point (n >= 2): partner[i] != i."""
    if n < 2:
        raise ValueError(f"a targeted attack needs at least 2 people for partner poses, got {n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    # a cyclic shift of a random order: i -> the next one in the order, never itself
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def pose_targets(joints: np.ndarray, codec: Any) -> dict[str, np.ndarray]:
    """Encode target poses: joints (N, K, 3) crop px (x, y, visible) -> ``target``
    (the codec's output: (N, K, h, w) heatmaps or (N, K, 2) coordinates) and
    ``target_weight`` (N, K)."""
    joints = np.asarray(joints, dtype=np.float64)
    encoded = [codec.encode(j) for j in joints]
    target = np.stack([e["target"] for e in encoded]).astype(np.float32)
    weight = np.stack([np.asarray(e["target_weight"]).reshape(-1) for e in encoded])
    return {"target": target, "target_weight": weight.astype(np.float32)}


def shuffled_pose_targets(joints: np.ndarray, codec: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """The default targets for a set of crops: partner poses (:func:`derangement`),
    encoded by ``codec``; adds ``partner`` (N,) and ``target_joints`` (N, K, 3) crop px."""
    joints = np.asarray(joints, dtype=np.float64)
    partner = derangement(len(joints), seed)
    chosen = joints[partner]
    out = pose_targets(chosen, codec)
    out.update(partner=partner, target_joints=chosen)
    return out
