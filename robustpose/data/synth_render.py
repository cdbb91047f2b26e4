"""SynthPose rendering: textured, anti-aliased figures and cluttered backgrounds (cv2 + numpy).

A figure is drawn part by part, far parts first, into a small canvas around it; every
drawn pixel also gets a part id, so visibility is read off the final id map instead of
being guessed.

Left and right must be learnable, but not from a colour tied to one anatomical side: a
horizontal flip (the standard training augmentation, and the flip test) would turn such
a cue into its opposite. As in real photos, the side follows from which way the figure
faces, and facing is drawn to be readable: a face (eyes, nose, mouth) or the back of the
hair, a V neckline and button placket on the shirt front only, feet pointing forward,
knees bending backward.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robustpose.data.synth_body import KEYPOINT_POINTS, Body3D, Placement, project, to_image

SHIFT = 4  # cv2 sub-pixel bits
_ONE = 1 << SHIFT

SKIN = np.array([(255, 224, 196), (241, 194, 167), (224, 172, 140), (198, 134, 99),
                 (161, 102, 68), (118, 74, 49), (87, 56, 38)], dtype=np.float32)
HAIR = np.array([(20, 15, 10), (60, 40, 25), (110, 75, 40), (200, 170, 110),
                 (150, 150, 150), (140, 60, 25)], dtype=np.float32)

# part name -> id in the id map (1..15); 0 is background / foreground clutter.
PART_IDS = {"torso": 1, "neck": 2, "head": 3, "l_upper_arm": 4, "r_upper_arm": 5,
            "l_forearm": 6, "r_forearm": 7, "l_hand": 8, "r_hand": 9, "l_thigh": 10,
            "r_thigh": 11, "l_shin": 12, "r_shin": 13, "l_foot": 14, "r_foot": 15}
#: for each COCO keypoint, the parts a visible keypoint lies on.
KEYPOINT_PARTS = (
    (3,), (3,), (3,), (3,), (3,), (1, 4), (1, 5), (4, 6), (5, 7), (6, 8), (7, 9),
    (1, 10), (1, 11), (10, 12), (11, 13), (12, 14), (13, 15))
PERSON_STRIDE = 32  # id map value = PERSON_STRIDE * (person index + 1) + part id


def _fix(p: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(p, dtype=np.float64) * _ONE).astype(np.int32)


def draw_capsule(mask: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> None:
    """A tapered limb: quad from ``a`` (radius ``ra`` px) to ``b`` (``rb``), round ends."""
    d = b - a
    n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6)
    quad = np.stack([a + n * ra, b + n * rb, b - n * rb, a - n * ra])
    cv2.fillConvexPoly(mask, _fix(quad), 255, cv2.LINE_AA, SHIFT)
    for c, r in ((a, ra), (b, rb)):
        cv2.circle(mask, tuple(int(v) for v in _fix(c)), max(int(r * _ONE), 1), 255, -1,
                   cv2.LINE_AA, SHIFT)


def draw_ellipse(mask: np.ndarray, c: np.ndarray, ax: float, ay: float, angle_deg: float) -> None:
    cv2.ellipse(mask, tuple(int(v) for v in _fix(c)), (max(int(ax * _ONE), 1), max(int(ay * _ONE), 1)),
                float(angle_deg), 0, 360, 255, -1, cv2.LINE_AA, SHIFT)


def texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray) -> np.ndarray:
    """A garment or clutter texture, float32 h x w x 3 in 0..255: solid, stripes, checks, mottled."""
    base = np.asarray(base, dtype=np.float32)
    kind = rng.choice(["solid", "stripes", "check", "mottle", "plaid"], p=[0.3, 0.25, 0.15, 0.15, 0.15])
    out = np.broadcast_to(base, (h, w, 3)).copy()
    if kind == "solid":
        return out
    other = np.clip(base * rng.uniform(0.4, 0.8) + rng.uniform(0, 120, 3), 0, 255).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "mottle":
        small = rng.random((max(h // 6, 2), max(w // 6, 2))).astype(np.float32)
        t = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        period = rng.uniform(4.0, 14.0)
        ang = rng.uniform(0, np.pi)
        u = xx * np.cos(ang) + yy * np.sin(ang)
        t = (np.sin(2 * np.pi * u / period) > 0).astype(np.float32)
        if kind != "stripes":
            v = -xx * np.sin(ang) + yy * np.cos(ang)
            t2 = (np.sin(2 * np.pi * v / period) > 0).astype(np.float32)
            t = np.abs(t - t2) if kind == "check" else np.maximum(t, t2) * 0.6
    t = np.clip(t, 0, 1)[..., None]
    return out * (1 - t) + other * t


@dataclass
class Appearance:
    skin: np.ndarray
    hair: np.ndarray
    shirt: np.ndarray  # base colours, RGB 0..255
    pants: np.ndarray
    shoes: np.ndarray
    long_sleeves: bool
    long_pants: bool
    seed: int  # texture seed

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Appearance":
        skin = SKIN[rng.integers(len(SKIN))] * rng.uniform(0.9, 1.1, 3)
        hair = HAIR[rng.integers(len(HAIR))] * rng.uniform(0.8, 1.2, 3)
        return cls(skin=np.clip(skin, 0, 255), hair=np.clip(hair, 0, 255),
                   shirt=rng.uniform(0, 255, 3), pants=rng.uniform(0, 230, 3),
                   shoes=rng.uniform(0, 90, 3), long_sleeves=bool(rng.random() < 0.5),
                   long_pants=bool(rng.random() < 0.7), seed=int(rng.integers(2**31)))


def _parts(body: Body3D, app: Appearance) -> list[tuple[str, str, str, str, float, float, str]]:
    """(part, from-point, to-point, material, radius at from, radius at to, side)."""
    b = body.props.build
    sleeve = "shirt" if app.long_sleeves else "skin"
    shin = "pants" if app.long_pants else "skin"
    out = [("neck", "neck", "head", "skin", 0.028 * b, 0.028 * b, "")]
    for s in "lr":
        out += [(f"{s}_upper_arm", f"{s}_shoulder", f"{s}_elbow", "shirt", 0.036 * b, 0.029 * b, s),
                (f"{s}_forearm", f"{s}_elbow", f"{s}_wrist", sleeve, 0.028 * b, 0.02 * b, s),
                (f"{s}_hand", f"{s}_wrist", f"{s}_hand", "skin", 0.02 * b, 0.022 * b, s),
                (f"{s}_thigh", f"{s}_hip", f"{s}_knee", "pants", 0.052 * b, 0.038 * b, s),
                (f"{s}_shin", f"{s}_knee", f"{s}_ankle", shin, 0.037 * b, 0.025 * b, s),
                (f"{s}_foot", f"{s}_ankle", f"{s}_toe", "shoes", 0.026 * b, 0.022 * b, s)]
    return out


def render_person(body: Body3D, app: Appearance, place: Placement, image_hw: tuple[int, int]):
    """Draw one figure into a canvas around it.

    Returns ``(roi, colour, alpha, part_ids, keypoints_xy, face_hidden)``: ``roi`` =
    (x0, y0, x1, y1) in image px (clipped), ``colour`` float32 h x w x 3, ``alpha`` float32
    h x w in [0, 1], ``part_ids`` uint8 h x w, ``keypoints_xy`` (17, 2) image px and
    ``face_hidden`` (17,) bool: face points on the far side of the head.
    """
    xy, depth = project(body, place.yaw)
    pts = to_image(xy, place)
    scale = place.scale
    all_pts = np.stack(list(pts.values()))
    pad = 0.09 * body.props.build * scale + 3
    x0, y0 = np.floor(all_pts.min(0) - pad).astype(int)
    x1, y1 = np.ceil(all_pts.max(0) + pad).astype(int)
    H, W = image_hw
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    kp = np.stack([pts[n] for n in KEYPOINT_POINTS])
    r = body.props.head_r
    face_hidden = np.zeros(17, dtype=bool)
    for i, (name, thr) in enumerate((("nose", 0.15), ("l_eye", 0.2), ("r_eye", 0.2),
                                     ("l_ear", -0.35), ("r_ear", -0.35))):
        face_hidden[i] = depth[name] - depth["head"] <= thr * r
    if x1 <= x0 or y1 <= y0:
        return (x0, y0, x1, y1), None, None, None, kp, face_hidden
    h, w = y1 - y0, x1 - x0
    off = np.array([x0, y0], dtype=float)
    loc = {k: v - off for k, v in pts.items()}
    rng = np.random.default_rng(app.seed)
    tex = {"shirt": texture(rng, h, w, app.shirt), "pants": texture(rng, h, w, app.pants),
           "skin": np.broadcast_to(app.skin.astype(np.float32), (h, w, 3)),
           "hair": texture(rng, h, w, app.hair) if rng.random() < 0.3
           else np.broadcast_to(app.hair.astype(np.float32), (h, w, 3)),
           "shoes": np.broadcast_to(app.shoes.astype(np.float32), (h, w, 3))}
    colour = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    ids = np.zeros((h, w), np.uint8)
    mask = np.zeros((h, w), np.uint8)

    def paint(part_id: int, fill, shade: float = 1.0, draw=None) -> None:
        mask[:] = 0
        draw(mask)
        a = mask.astype(np.float32)[..., None] / 255.0
        col = fill if isinstance(fill, np.ndarray) and fill.ndim == 3 else np.asarray(fill, np.float32)
        colour[:] = colour * (1 - a) + (col * shade) * a
        alpha[:] = np.maximum(alpha, a[..., 0])
        ids[mask >= 128] = part_id

    # Torso: a quad along the spine, as wide as the projected shoulders/hips or the body depth.
    b = body.props.build
    sm, hm = 0.5 * (loc["l_shoulder"] + loc["r_shoulder"]), 0.5 * (loc["l_hip"] + loc["r_hip"])
    axis = sm - hm
    axis_n = axis / max(float(np.hypot(*axis)), 1e-6)
    normal = np.array([-axis_n[1], axis_n[0]])
    thick = 0.075 * b * scale
    top = max(0.5 * abs(float((loc["l_shoulder"] - loc["r_shoulder"]) @ normal)) + 0.02 * b * scale, thick)
    bot = max(0.5 * abs(float((loc["l_hip"] - loc["r_hip"]) @ normal)) + 0.035 * b * scale, thick)
    t_top, t_bot = sm + axis_n * 0.025 * scale, hm - axis_n * 0.03 * scale
    torso_quad = np.stack([t_top + normal * top, t_top - normal * top,
                           t_bot - normal * bot, t_bot + normal * bot])

    items = []  # (depth, order, callable)
    torso_depth = np.mean([depth[k] for k in ("l_shoulder", "r_shoulder", "l_hip", "r_hip")]) - 0.03
    def torso() -> None:
        paint(PART_IDS["torso"], tex["shirt"], 1.0,
              lambda m: cv2.fillConvexPoly(m, _fix(torso_quad), 255, cv2.LINE_AA, SHIFT))
        if depth["chest_front"] - depth["chest"] > 0.2 * 0.07:  # the shirt front faces us
            vee = np.stack([loc["v_l"], loc["v_r"], loc["v_bottom"]])
            paint(PART_IDS["torso"], tex["skin"], 1.0,
                  lambda m: cv2.fillConvexPoly(m, _fix(vee), 255, cv2.LINE_AA, SHIFT))
            dark = np.asarray(app.shirt, np.float32) * 0.45
            paint(PART_IDS["torso"], dark, 1.0,
                  lambda m: draw_capsule(m, loc["v_bottom"], loc["placket_end"], 0.006 * scale + 0.4,
                                         0.006 * scale + 0.4))

    items.append((torso_depth, 0, torso))
    for k, (part, a_name, b_name, mat, ra, rb, side) in enumerate(_parts(body, app)):
        dpt = 0.5 * (depth[a_name] + depth[b_name]) - (0.02 if part == "neck" else 0.0)
        args = (loc[a_name], loc[b_name], ra * scale, rb * scale)
        items.append((dpt, k + 1, (lambda pid=PART_IDS[part], m=mat, ar=args:
                                   paint(pid, tex[m], 1.0, lambda mm: draw_capsule(mm, *ar)))))
    items.append((depth["head"] + 0.01, 99, lambda: _paint_head(paint, loc, depth, body, tex, scale)))
    for _d, _o, fn in sorted(items, key=lambda t: (t[0], t[1])):
        fn()
    return (x0, y0, x1, y1), colour, alpha, ids, kp, face_hidden


def _paint_head(paint, loc, depth, body: Body3D, tex, scale: float) -> None:
    """Skin, hair (behind or over it), then the face features that face the camera."""
    hid = PART_IDS["head"]
    r = body.props.head_r * scale
    up = loc["head"] - loc["neck"]
    ang = float(np.degrees(np.arctan2(up[1], up[0]))) + 90.0
    skin = lambda: paint(hid, tex["skin"], 1.0, lambda m: draw_ellipse(m, loc["head"], 0.86 * r, r, ang))  # noqa: E731
    hair = lambda: paint(hid, tex["hair"], 1.0, lambda m: draw_ellipse(m, loc["hair"], 0.9 * r, 0.86 * r, ang))  # noqa: E731
    rel = lambda n: (depth[n] - depth["head"]) / body.props.head_r  # noqa: E731
    if rel("hair") < -0.15:
        hair(); skin()  # noqa: E702
    else:
        skin(); hair()  # noqa: E702
    body_skin = np.asarray(tex["skin"][0, 0], np.float32)
    dark = body_skin * 0.7
    for ear in ("l_ear", "r_ear"):
        if rel(ear) > -0.35:
            paint(hid, dark, 1.0, lambda m, e=ear: draw_ellipse(m, loc[e], 0.17 * r, 0.27 * r, ang))
    for eye in ("l_eye", "r_eye"):
        if rel(eye) > 0.2:
            paint(hid, np.array([245, 245, 240], np.float32), 1.0,
                  lambda m, e=eye: draw_ellipse(m, loc[e], 0.2 * r, 0.13 * r, ang))
            paint(hid, np.array([30, 25, 20], np.float32), 1.0,
                  lambda m, e=eye: cv2.circle(m, tuple(int(v) for v in _fix(loc[e])),
                                              max(int(0.1 * r * _ONE), 1), 255, -1, cv2.LINE_AA, SHIFT))
    if rel("nose") > 0.15:
        paint(hid, body_skin * 0.55, 1.0,
              lambda m: cv2.circle(m, tuple(int(v) for v in _fix(loc["nose"])),
                                   max(int(0.11 * r * _ONE), 1), 255, -1, cv2.LINE_AA, SHIFT))
    if rel("mouth") > 0.3:
        paint(hid, np.array([150, 40, 40], np.float32), 1.0,
              lambda m: draw_ellipse(m, loc["mouth"], 0.22 * r, 0.06 * r, ang))
