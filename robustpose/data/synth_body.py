"""SynthPose figures: a 3-D stick body, a joint-angle prior, and its 2-D projection.

Body frame (units of stature, about 1.0 from ankle to the top of the head): ``x`` is the
person's *left*, ``y`` is up, ``z`` points out of the chest. A figure facing the camera
(yaw 0) therefore shows its left side on the image's right, as in COCO. The camera is
orthographic; yaw turns the body about ``y`` before projection, and the projected figure
is then scaled, rotated in the image plane and placed.

Everything random comes from the ``np.random.Generator`` passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robustpose.data.specs import COCO_NAMES
from robustpose.data.specs import COCO_SKELETON as _COCO_SKELETON_0

#: COCO keypoint order (17) and skeleton (1-based like the official annotation files).
COCO_KEYPOINTS = tuple(COCO_NAMES)
COCO_SKELETON = tuple((a + 1, b + 1) for a, b in _COCO_SKELETON_0)
POSE_CLASSES = ("stand", "walk", "run", "raise", "sit", "bend", "free")
_POSE_WEIGHTS = np.array([0.16, 0.18, 0.14, 0.16, 0.12, 0.12, 0.12])


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@dataclass
class Proportions:
    """Segment lengths and radii in stature units."""

    torso: float
    neck: float
    head_r: float
    shoulder_hw: float
    hip_hw: float
    upper_arm: float
    forearm: float
    hand: float
    thigh: float
    shin: float
    foot: float
    build: float  # multiplies every limb radius

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Proportions":
        j = lambda v, r=0.08: float(v * rng.uniform(1 - r, 1 + r))  # noqa: E731
        return cls(torso=j(0.30), neck=j(0.045, 0.2), head_r=j(0.066, 0.12),
                   shoulder_hw=j(0.12, 0.15), hip_hw=j(0.085, 0.15), upper_arm=j(0.17),
                   forearm=j(0.15), hand=j(0.06, 0.15), thigh=j(0.245), shin=j(0.24),
                   foot=j(0.075, 0.15), build=float(rng.uniform(0.8, 1.3)))


@dataclass
class Angles:
    """Joint angles in radians. Limbs: (flexion forward, abduction outward, bend, twist)."""

    pitch: float = 0.0  # torso bend forward
    roll: float = 0.0  # torso side lean
    head_yaw: float = 0.0
    head_pitch: float = 0.0
    arms: dict = field(default_factory=dict)  # side ('l'/'r') -> (flex, abd, elbow, twist)
    legs: dict = field(default_factory=dict)  # side -> (flex, abd, knee, twist)


def sample_angles(rng: np.random.Generator, pose: str | None = None) -> tuple[str, Angles]:
    """Draw a pose class (or use ``pose``) and its joint angles from the prior."""
    if pose is None:
        pose = POSE_CLASSES[int(rng.choice(len(POSE_CLASSES), p=_POSE_WEIGHTS))]
    d = np.deg2rad
    u = lambda lo, hi: float(d(rng.uniform(lo, hi)))  # noqa: E731
    n = lambda sd: float(d(rng.normal(0.0, sd)))  # noqa: E731
    a = Angles(roll=n(4), head_yaw=n(20), head_pitch=n(10))
    arm = lambda f, ab, e: (f + n(8), ab + n(5), e, n(30))  # noqa: E731
    leg = lambda f, ab, k: (f + n(4), ab + n(3), k, 0.0)  # noqa: E731
    first = "l" if rng.random() < 0.5 else "r"
    other = "r" if first == "l" else "l"
    if pose == "stand":
        a.pitch = n(5)
        for s in "lr":
            a.arms[s] = arm(n(10), u(5, 25), u(0, 35))
            a.legs[s] = leg(n(5), u(0, 12), u(0, 12))
    elif pose in ("walk", "run"):
        big = pose == "run"
        swing = u(30, 60) if big else u(12, 30)
        a.pitch = u(5, 20) if big else n(4)
        a.legs[first] = leg(swing, u(0, 6), u(20, 60) if big else u(0, 15))
        a.legs[other] = leg(-swing * rng.uniform(0.5, 1.0), u(0, 6),
                            u(60, 115) if big else u(5, 40))
        arm_swing = swing * rng.uniform(0.6, 1.2)
        elbow = (lambda: u(70, 110)) if big else (lambda: u(10, 45))
        a.arms[first] = arm(-arm_swing, u(5, 20), elbow())
        a.arms[other] = arm(arm_swing, u(5, 20), elbow())
    elif pose == "raise":
        a.pitch = n(6)
        both = rng.random() < 0.6
        for s in "lr":
            if both or s == first:
                a.arms[s] = (n(25), u(70, 175), u(0, 100), n(60))
            else:
                a.arms[s] = arm(n(20), u(5, 40), u(0, 90))
            a.legs[s] = leg(n(6), u(0, 18), u(0, 15))
    elif pose == "sit":
        a.pitch = u(-10, 20)
        for s in "lr":
            a.legs[s] = leg(u(65, 100), u(0, 20), u(65, 110))
            a.arms[s] = arm(u(10, 60), u(0, 20), u(20, 90))
    elif pose == "bend":
        a.pitch = u(35, 95)
        a.head_pitch = -0.5 * a.pitch + n(10)
        for s in "lr":
            a.arms[s] = arm(-a.pitch + n(15), u(0, 20), u(0, 40))
            a.legs[s] = leg(u(-5, 15), u(0, 10), u(0, 25))
    elif pose == "free":
        a.pitch = u(-15, 45)
        for s in "lr":
            a.arms[s] = (u(-60, 120), u(0, 160), u(0, 130), n(60))
            a.legs[s] = (u(-40, 100), u(0, 45), u(0, 120), 0.0)
    else:
        raise ValueError(f"unknown SynthPose pose class {pose!r}; choose from {POSE_CLASSES}")
    return pose, a


def _limb_dir(flex: float, abd: float, side: float) -> np.ndarray:
    """Unit direction of a limb hanging down, flexed forward and abducted outward."""
    return np.array([side * np.sin(abd), -np.cos(abd) * np.cos(flex), np.cos(abd) * np.sin(flex)])


def _bend(direction: np.ndarray, bend: float, twist: float, toward: np.ndarray) -> np.ndarray:
    """Rotate ``direction`` by ``bend`` toward ``toward`` (after twisting that about it)."""
    b = toward - direction * float(direction @ toward)
    if np.linalg.norm(b) < 1e-3:
        b = np.array([0.0, 1.0, 0.0]) - direction * direction[1]
    b /= np.linalg.norm(b)
    b = np.cos(twist) * b + np.sin(twist) * np.cross(direction, b)
    return np.cos(bend) * direction + np.sin(bend) * b


@dataclass
class Body3D:
    """Named 3-D points (body frame) of one figure plus its head orientation."""

    points: dict[str, np.ndarray]
    head_rot: np.ndarray  # 3x3, head frame -> body frame
    props: Proportions


def pose_body(props: Proportions, ang: Angles) -> Body3D:
    """Forward kinematics: joint angles -> 3-D points in the body frame (pelvis at 0)."""
    p: dict[str, np.ndarray] = {}
    r_torso = _rot_z(ang.roll) @ _rot_x(ang.pitch)
    p["pelvis"] = np.zeros(3)
    p["neck"] = r_torso @ np.array([0.0, props.torso, 0.0])
    for s, side in (("l", 1.0), ("r", -1.0)):
        p[f"{s}_hip"] = np.array([side * props.hip_hw, 0.0, 0.0])
        p[f"{s}_shoulder"] = r_torso @ np.array([side * props.shoulder_hw, props.torso - 0.02, 0.0])
        flex, abd, elbow, twist = ang.arms[s]
        d1 = r_torso @ _limb_dir(flex, abd, side)
        d2 = _bend(d1, elbow, twist, r_torso @ np.array([0.0, 0.0, 1.0]))
        p[f"{s}_elbow"] = p[f"{s}_shoulder"] + props.upper_arm * d1
        p[f"{s}_wrist"] = p[f"{s}_elbow"] + props.forearm * d2
        p[f"{s}_hand"] = p[f"{s}_wrist"] + props.hand * d2
        flex, abd, knee, twist = ang.legs[s]
        d1 = _limb_dir(flex, abd, side)
        d2 = _bend(d1, knee, twist, np.array([0.0, 0.0, -1.0]))
        p[f"{s}_knee"] = p[f"{s}_hip"] + props.thigh * d1
        p[f"{s}_ankle"] = p[f"{s}_knee"] + props.shin * d2
        toe = np.array([0.0, -0.25, 1.0]) + 0.3 * d2
        p[f"{s}_toe"] = p[f"{s}_ankle"] + props.foot * toe / np.linalg.norm(toe)
    # Shirt-front landmarks (a V neckline and a button placket): a facing cue that
    # survives mirroring, unlike any colour cue tied to one anatomical side.
    t = props.torso
    front = {"chest": (0.0, t - 0.06, 0.0), "chest_front": (0.0, t - 0.06, 0.07),
             "v_l": (0.045, t - 0.005, 0.06), "v_r": (-0.045, t - 0.005, 0.06),
             "v_bottom": (0.0, t - 0.09, 0.075), "placket_end": (0.0, 0.03, 0.075)}
    for name, v in front.items():
        p[name] = r_torso @ np.array(v)
    head_rot = r_torso @ _rot_y(ang.head_yaw) @ _rot_x(ang.head_pitch)
    p["head"] = p["neck"] + r_torso @ np.array([0.0, props.neck + props.head_r, 0.0])
    r = props.head_r
    face = {"nose": (0.0, -0.15, 1.02), "l_eye": (0.36, 0.12, 0.86),
            "r_eye": (-0.36, 0.12, 0.86), "l_ear": (0.97, 0.0, -0.08),
            "r_ear": (-0.97, 0.0, -0.08), "hair": (0.0, 0.22, -0.33),
            "mouth": (0.0, -0.5, 0.86)}
    for name, v in face.items():
        p[name] = p["head"] + head_rot @ (r * np.array(v))
    return Body3D(points=p, head_rot=head_rot, props=props)


#: keypoint index -> name of the 3-D point it sits on.
KEYPOINT_POINTS = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder",
                   "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip",
                   "l_knee", "r_knee", "l_ankle", "r_ankle")


@dataclass
class Placement:
    """Yaw (rad), image-plane rotation (rad), pixels per stature unit, centre (px)."""

    yaw: float
    rotation: float
    scale: float
    center: tuple[float, float]


def sample_yaw(rng: np.random.Generator) -> float:
    """Mostly frontal or from behind, often oblique, sometimes in profile."""
    r = rng.random()
    if r < 0.4:
        deg = rng.normal(0.0, 20.0)
    elif r < 0.6:
        deg = 180.0 + rng.normal(0.0, 20.0)
    else:
        deg = rng.uniform(-180.0, 180.0)
    return float(np.deg2rad(deg))


def sample_rotation(rng: np.random.Generator) -> float:
    """Image-plane rotation: small, with an occasional strong tilt."""
    deg = rng.uniform(-80.0, 80.0) if rng.random() < 0.08 else np.clip(rng.normal(0, 8), -25, 25)
    return float(np.deg2rad(deg))


def project(body: Body3D, yaw: float) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Project to the canonical image plane: (x right, y down) in stature units, + depths.

    Returns 2-D points centred on their bounding box and each point's depth toward
    the camera (larger = nearer).
    """
    rot = _rot_y(yaw)
    xy, depth = {}, {}
    for name, v in body.points.items():
        w = rot @ v
        xy[name] = np.array([w[0], -w[1]])
        depth[name] = float(w[2])
    pts = np.stack(list(xy.values()))
    mid = 0.5 * (pts.min(0) + pts.max(0))
    return {k: v - mid for k, v in xy.items()}, depth


def to_image(xy: dict[str, np.ndarray], place: Placement) -> dict[str, np.ndarray]:
    """Canonical 2-D points -> image pixels (scale, rotate, translate)."""
    c, s = np.cos(place.rotation), np.sin(place.rotation)
    m = place.scale * np.array([[c, -s], [s, c]])
    ctr = np.asarray(place.center, dtype=float)
    return {k: m @ v + ctr for k, v in xy.items()}


def extent(xy: dict[str, np.ndarray], pad: float) -> tuple[np.ndarray, np.ndarray]:
    """Min and max corner of the points, padded by ``pad`` (same units)."""
    pts = np.stack(list(xy.values()))
    return pts.min(0) - pad, pts.max(0) + pad
