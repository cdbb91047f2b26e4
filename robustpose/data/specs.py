"""Keypoint set descriptions: names, flip pairs, OKS sigmas, skeleton, body halves.

Presets for COCO (and OCHuman, which uses the COCO-17 layout), MPII, CrowdPose and the
21-keypoint hand sets (RHD, OneHand10K, FreiHAND, COCO-WholeBody hand);
:func:`spec_from_category` builds one for any COCO-format set from its json
``categories`` entry plus a user sigma list, and :func:`resolve_spec` is the one rule
that picks a preset for a json category (the loader, ``robustpose evaluate`` and the
benchmark all use it).

Sources (read for facts; the values are the published ones): COCO sigmas = pycocotools
``Params``; CrowdPose = crowdposetools / mmpose ``configs/_base_/datasets/crowdpose.py``;
hand keypoint orders = mmpose ``configs/_base_/datasets/{rhd2d,onehand10k,freihand2d,
coco_wholebody_hand}.py`` and the mmpose test jsons of those sets; COCO-WholeBody hand
sigmas = COCO-WholeBody ``evaluation/myeval_wholebody.py`` (mmpose
``coco_wholebody.py`` entries 91-111, ``coco_wholebody_hand.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from robustpose.utils.conventions import COCO_SIGMAS

__all__ = ["KeypointSpec", "get_spec", "spec_from_category", "resolve_spec", "preset_for_names",
           "SPEC_NAMES", "KEYPOINT_ALIASES"]


@dataclass
class KeypointSpec:
    """One keypoint layout.

    ``flip_pairs`` and ``skeleton`` use 0-based keypoint indices. ``sigmas`` (K,) are the
    per-keypoint OKS constants (COCO convention: the value *before* the factor 2 that
    COCOeval applies). ``upper_body_ids`` drives HRNet's half-body augmentation (the rest
    are the lower body); empty means the augmentation never fires.
    """

    name: str
    keypoint_names: list[str]
    flip_pairs: list[tuple[int, int]]
    sigmas: np.ndarray
    skeleton: list[tuple[int, int]]
    upper_body_ids: tuple[int, ...] = ()
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = len(self.keypoint_names)
        self.sigmas = np.asarray(self.sigmas, dtype=np.float64).reshape(-1)
        if self.sigmas.shape != (k,):
            raise ValueError(f"spec {self.name!r}: {self.sigmas.size} sigmas for {k} keypoints")
        for a, b in list(self.flip_pairs) + list(self.skeleton):
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"spec {self.name!r}: index pair ({a}, {b}) outside 0..{k - 1}")
        self.flip_pairs = [(int(a), int(b)) for a, b in self.flip_pairs]
        self.skeleton = [(int(a), int(b)) for a, b in self.skeleton]

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def flip_permutation(self) -> np.ndarray:
        """Index array ``perm`` with ``flipped[:, k] = original[:, perm[k]]`` (pairs swapped)."""
        perm = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


COCO_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]
# The COCO json skeleton, converted to 0-based indices.
COCO_SKELETON = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
                 (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4),
                 (3, 5), (4, 6)]
COCO_FLIP = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]

MPII_NAMES = [
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
    "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
]
# MPII has no official OKS sigmas; these are mmpose's values "adapted from COCO".
MPII_SIGMAS = [0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026,
               0.062, 0.072, 0.179, 0.179, 0.072, 0.062]
MPII_SKELETON = [(0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
                 (8, 12), (12, 11), (11, 10), (8, 13), (13, 14), (14, 15)]
MPII_FLIP = [(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)]

CROWDPOSE_NAMES = [
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "top_head", "neck",
]
CROWDPOSE_SIGMAS = [0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087,
                    0.089, 0.089, 0.079, 0.079]
CROWDPOSE_SKELETON = [(10, 8), (8, 6), (11, 9), (9, 7), (6, 7), (0, 6), (1, 7), (0, 1),
                      (0, 2), (1, 3), (2, 4), (3, 5), (12, 13), (1, 13), (0, 13)]
CROWDPOSE_FLIP = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)]

_FINGERS = ["thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger"]
#: The 21 hand names every hand set's json uses (mmpose conversions): wrist, then each
#: finger's joints 1..4. The names do not say which end of the finger joint 1 is.
HAND_NAMES = ["wrist"] + [f"{f}{i}" for f in _FINGERS for i in range(1, 5)]
RHD_NAMES = list(HAND_NAMES)
# COCO-WholeBody hand sigmas, palm -> tip (wrist, then per finger MCP/CMC, PIP, DIP, tip):
# COCO-WholeBody evaluation/myeval_wholebody.py, = mmpose coco_wholebody_hand.py.
_WB_HAND = [0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
            0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.020, 0.019, 0.022, 0.031]
# RHD lists each finger tip first (finger1 = tip, finger4 = base next to the wrist; RHD's
# own README order, checked on rhd_mini). RHD has no OKS sigmas: the default is the
# COCO-WholeBody hand sigmas mapped by joint, i.e. each finger's four values reversed.
RHD_SIGMAS = [_WB_HAND[0]] + [s for f in range(5) for s in _WB_HAND[1 + 4 * f:5 + 4 * f][::-1]]
RHD_SKELETON = [(a, b) for f in range(5)
                for a, b in [(0, 4 + 4 * f), (4 + 4 * f, 3 + 4 * f), (3 + 4 * f, 2 + 4 * f),
                             (2 + 4 * f, 1 + 4 * f)]]
# OneHand10K, FreiHAND and COCO-WholeBody hand list each finger palm first (finger1 = the
# joint next to the wrist, finger4 = tip; mmpose skeletons join the wrist to finger1).
# Only COCO-WholeBody publishes OKS sigmas; OneHand10K and FreiHAND (mmpose: sigmas=[],
# scored by PCK/AUC/EPE) default to them, in the same palm-first order.
PALM_FIRST_SKELETON = [(a, b) for f in range(5)
                       for a, b in [(0, 1 + 4 * f), (1 + 4 * f, 2 + 4 * f),
                                    (2 + 4 * f, 3 + 4 * f), (3 + 4 * f, 4 + 4 * f)]]

#: Which end of a finger each hand preset lists first (for messages and docs).
FINGER_ORDER = {"rhd": "tip first", "onehand10k": "palm first", "freihand": "palm first",
                "coco_wholebody_hand": "palm first"}


def _coco(name: str) -> KeypointSpec:
    return KeypointSpec(name, list(COCO_NAMES), list(COCO_FLIP), COCO_SIGMAS.copy(),
                        list(COCO_SKELETON), upper_body_ids=tuple(range(11)))


def _hand(name: str) -> KeypointSpec:
    """A palm-first hand preset (no flip pairs: one hand, flipping keeps its joints)."""
    return KeypointSpec(name, list(HAND_NAMES), [], _WB_HAND, list(PALM_FIRST_SKELETON))


_PRESETS = {
    "coco": lambda: _coco("coco"),
    "ochuman": lambda: _coco("ochuman"),
    "mpii": lambda: KeypointSpec("mpii", list(MPII_NAMES), list(MPII_FLIP), MPII_SIGMAS,
                                 list(MPII_SKELETON), upper_body_ids=tuple(range(7, 16))),
    "crowdpose": lambda: KeypointSpec(
        "crowdpose", list(CROWDPOSE_NAMES), list(CROWDPOSE_FLIP), CROWDPOSE_SIGMAS,
        list(CROWDPOSE_SKELETON), upper_body_ids=(0, 1, 2, 3, 4, 5, 12, 13)),
    "rhd": lambda: KeypointSpec("rhd", list(RHD_NAMES), [], RHD_SIGMAS, list(RHD_SKELETON)),
    "onehand10k": lambda: _hand("onehand10k"),
    "freihand": lambda: _hand("freihand"),
    "coco_wholebody_hand": lambda: _hand("coco_wholebody_hand"),
}
SPEC_NAMES = tuple(_PRESETS)


def _preset_key(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def get_spec(name: str, sigmas: Sequence[float] | None = None) -> KeypointSpec:
    """Preset spec by name (:data:`SPEC_NAMES`: ``coco``, ``ochuman``, ``mpii``,
    ``crowdpose``, ``rhd``, ``onehand10k``, ``freihand``, ``coco_wholebody_hand``;
    ``-`` may stand for ``_``).

    ``sigmas`` (K values) replaces the preset's OKS sigmas (e.g. your own for RHD).
    """
    key = _preset_key(name)
    if key not in _PRESETS:
        raise ValueError(f"unknown keypoint set {name!r}; choose from {', '.join(SPEC_NAMES)} "
                         "or build one with spec_from_category")
    spec = _PRESETS[key]()
    if sigmas is not None:
        spec = KeypointSpec(spec.name, spec.keypoint_names, spec.flip_pairs, sigmas,
                            spec.skeleton, spec.upper_body_ids)
    return spec


_SIDE_PREFIXES = (("left_", "right_"), ("l_", "r_"), ("left", "right"))


def _guess_flip_pairs(names: list[str]) -> list[tuple[int, int]]:
    """Pair ``left_*`` with ``right_*`` (and ``l_``/``r_``) keypoint names."""
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, n in enumerate(names):
        for left, right in _SIDE_PREFIXES:
            if n.startswith(left):
                j = index.get(right + n[len(left):])
                if j is not None:
                    pairs.append((i, j))
                break
    return pairs


def spec_from_category(category: dict, sigmas: Sequence[float] | None = None,
                       name: str | None = None,
                       flip_pairs: Sequence[tuple[int, int]] | None = None) -> KeypointSpec:
    """A spec from a COCO json ``categories`` entry (``keypoints`` names, 1-based ``skeleton``).

    ``sigmas``: K OKS sigmas; when omitted the category's own ``sigmas`` field is used if it
    has one, else an error (OKS needs them). ``flip_pairs`` default: ``left_*``/``right_*``
    name matching.
    """
    names = [str(n) for n in category.get("keypoints") or []]
    label = name or str(category.get("name", "custom"))
    if not names:
        raise ValueError(f"category {label!r} has no 'keypoints' names")
    if sigmas is None:
        sigmas = category.get("sigmas")
    if sigmas is None:
        raise ValueError(f"category {label!r} ({len(names)} keypoints) has no OKS sigmas: "
                         f"pass {len(names)} sigmas")
    if len(sigmas) != len(names):
        raise ValueError(f"category {label!r}: {len(sigmas)} sigmas for {len(names)} keypoints")
    skeleton = [(int(a) - 1, int(b) - 1) for a, b in category.get("skeleton") or []]
    pairs = list(flip_pairs) if flip_pairs is not None else _guess_flip_pairs(names)
    return KeypointSpec(label, names, pairs, np.asarray(sigmas, dtype=np.float64), skeleton)


#: Name variants of the same keypoint across releases (CrowdPose's json says "head").
KEYPOINT_ALIASES = {"head": "top_head"}

#: ``info.description`` of the mmpose conversions (e.g. "RHD", "OneHand10K", "FreiHand"),
#: lower-cased with everything but letters and digits removed -> preset.
_KNOWN_NAMES = {"rhd": "rhd", "rhd2d": "rhd", "renderedhandpose": "rhd",
                "onehand10k": "onehand10k", "freihand": "freihand", "freihand2d": "freihand",
                "cocowholebodyhand": "coco_wholebody_hand"}


def _canonical(names: Sequence[str]) -> list[str]:
    return [KEYPOINT_ALIASES.get(str(n), str(n)) for n in names]


def _same_convention(a: KeypointSpec, b: KeypointSpec) -> bool:
    """Two presets that score and flip identically (COCO and OCHuman, the palm-first hands)."""
    return (a.keypoint_names == b.keypoint_names and np.array_equal(a.sigmas, b.sigmas)
            and sorted(a.flip_pairs) == sorted(b.flip_pairs))


def _candidates(names: Sequence[str]) -> list[KeypointSpec]:
    canonical = _canonical(names)
    return [make() for make in _PRESETS.values() if make().keypoint_names == canonical]


def preset_for_names(names: Sequence[str]) -> KeypointSpec | None:
    """The preset whose keypoint names (in order, after :data:`KEYPOINT_ALIASES`) equal
    ``names``, or None when none does or when several do that score differently (the 21
    hand names: RHD lists finger tips first, OneHand10K / FreiHAND / COCO-WholeBody palm
    first, so the same names carry reversed sigmas). Presets that score the same (COCO and
    OCHuman) count as one; the first listed in :data:`SPEC_NAMES` is returned."""
    found = _candidates(names)
    if found and all(_same_convention(found[0], other) for other in found[1:]):
        return found[0]
    return None


def _with_sigmas(spec: KeypointSpec, sigmas: Sequence[float] | None, source: str) -> KeypointSpec:
    if sigmas is None:
        return spec
    if len(sigmas) != spec.num_keypoints:
        raise ValueError(f"{source}: {len(sigmas)} sigmas given for {spec.num_keypoints} "
                         "keypoints")
    return KeypointSpec(spec.name, spec.keypoint_names, spec.flip_pairs, sigmas,
                        spec.skeleton, spec.upper_body_ids)


def resolve_spec(category: dict, spec: str | KeypointSpec | None = None,
                 sigmas: Sequence[float] | None = None, known_name: str | None = None,
                 source: str = "annotation file") -> KeypointSpec:
    """The keypoint spec of a COCO-format json ``category`` (never from the count alone).

    1. ``spec`` (a preset name, ``--spec``, or a KeypointSpec): used as given; its keypoint
       count must equal the category's.
    2. Else the presets whose names equal the category's in order (aliases applied, e.g.
       CrowdPose's ``head``). One convention -> that preset. Several that score
       differently (the 21 hand names, RHD tip first vs the palm-first sets) -> the set's
       ``known_name`` (the json's ``info.description``, e.g. "RHD", "OneHand10K") picks
       one of them when it names one; a user ``sigmas`` list (or the category's own
       ``sigmas``) builds the spec from the category instead; otherwise refused.
    3. No preset: built from the category and ``sigmas`` (or its ``sigmas`` field).

    ``sigmas`` (K values) replace the preset's. Raises a one-line ``ValueError`` naming
    ``source`` and the way out (``--spec`` / ``--sigmas``).
    """
    names = [str(n) for n in category.get("keypoints") or []]
    k, label = len(names), str(category.get("name", "custom"))
    if spec is not None:
        chosen = spec if isinstance(spec, KeypointSpec) else get_spec(spec)
        if k and chosen.num_keypoints != k:
            raise ValueError(f"{source}: category {label!r} has {k} keypoints but spec "
                             f"{chosen.name!r} has {chosen.num_keypoints}")
        return _with_sigmas(chosen, sigmas, source)
    found = _candidates(names)
    unique = preset_for_names(names)
    if unique is not None:
        return _with_sigmas(unique, sigmas, source)
    if found:
        key = _KNOWN_NAMES.get("".join(ch for ch in str(known_name or "").lower()
                                       if ch.isalnum()))
        named = [c for c in found if c.name == key]
        if named:
            return _with_sigmas(named[0], sigmas, source)
        if sigmas is None and category.get("sigmas") is None:
            kinds = ", ".join(f"{c.name} ({FINGER_ORDER.get(c.name, 'own order')})" for c in found)
            raise ValueError(f"{source}: category {label!r} has the {k} keypoint names of "
                             f"several presets that order them differently ({kinds}); pass "
                             f"--spec NAME or --sigmas with {k} values")
    try:
        return spec_from_category(category, sigmas)
    except ValueError as exc:
        if sigmas is None and category.get("sigmas") is None and names:
            raise ValueError(f"{source}: no preset has the {k} keypoint names of category "
                             f"{label!r} and it has no OKS sigmas; pass --spec NAME (one of "
                             f"{', '.join(SPEC_NAMES)}) or --sigmas with {k} values") from None
        raise ValueError(f"{source}: {exc}") from None
