"""Corruption and severity lists as users write them: one grammar for every command.

``robustpose corrupt``, ``robustpose benchmark``, the Python API and configs all read
``--corruptions`` / ``--severities`` through :func:`parse_corruptions` and
:func:`parse_severities`, so a choice means the same set everywhere.

>>> parse_corruptions("noise,fog")
['gaussian_noise', 'shot_noise', 'impulse_noise', 'fog']
>>> parse_severities("1-3,5")
[1, 2, 3, 5]
"""
from __future__ import annotations

import numbers
from typing import Iterable, Sequence

from .params import ALL_CORRUPTIONS, POSEBENCH, POSEBENCH_EXTRA, POSEBENCH_GROUPS, SUBSETS

#: the stable-heatmap paper's perturbation sets (Zhang et al. 2022): the 10 it trains on
#: (its MST loss and the ST_a baseline) and the 5 it evaluates stability on, held out
STABLE_TRAIN10: tuple[str, ...] = ("brightness", "defocus_blur", "zoom_blur", "frost", "contrast",
                                   "gaussian_noise", "glass_blur", "motion_blur", "shot_noise",
                                   "snow")
STABLE_HELDOUT5: tuple[str, ...] = ("gaussian_blur", "jpeg_compression", "saturate", "spatter",
                                    "speckle_noise")

#: the box perturbations (robustpose.data.box_perturbations: magnitudes, seeding): noise on
#: the person box the crop follows, not on the pixels; selected by name or as the family
#: 'box'. No pixel group ('all', 'everything', ...) holds them: a -C writer or an
#: augmentation that reads a group gets pixel corruptions only.
BOX_PERTURBATIONS: tuple[str, ...] = ("box_shift", "box_scale", "box_aspect", "box_jitter")

#: group name -> the corruptions it selects (imagecorruptions' order); any other word
#: must be a corruption name. 'benchmark' is the AdvMix paper's 15 (= 'common', the default),
#: 'extra' the 4 held-out ones (= 'validation'), 'all' ImageNet-C's 19 (unchanged: what
#: imagecorruptions' 'all' and existing run folders mean), 'none' selects nothing (a
#: benchmark runs clean only); 'train10' / 'heldout5' are the stable-heatmap paper's sets (in
#: that paper's order). 'posebench' is PoseBench's 10 (in its order), 'blur_noise' /
#: 'compression' / 'lighting' / 'occlusion' its four groups, 'posebench_extra' its three
#: that ImageNet-C lacks, 'everything' all 22.
GROUPS: dict[str, tuple[str, ...]] = {
    "benchmark": SUBSETS["common"],
    **SUBSETS,
    "extra": SUBSETS["validation"],
    "none": (),
    "train10": STABLE_TRAIN10,
    "heldout5": STABLE_HELDOUT5,
    "posebench": POSEBENCH,
    **POSEBENCH_GROUPS,
    "posebench_extra": POSEBENCH_EXTRA,
    "everything": ALL_CORRUPTIONS,
    "box": BOX_PERTURBATIONS,
}


SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

_CORRUPTION_HELP = ("benchmark (the 15), all (19), validation or extra (the 4 others), common, "
                    "noise, blur, weather, digital, train10, heldout5, posebench (PoseBench's 10), "
                    "blur_noise, compression, lighting, occlusion, posebench_extra (its 3 new), "
                    "everything (22), box (box_shift, box_scale, box_aspect, box_jitter: the person box, "
                    "not the pixels), none, or comma-separated names: "
                    + ", ".join(ALL_CORRUPTIONS + BOX_PERTURBATIONS))
_SEVERITY_HELP = "e.g. 1-5, 3, 1,3,5 or all (severities are 1..5)"


def _words(choice: str | Sequence[str]) -> list[str]:
    """Comma-separated words of a string, or of every string of a list."""
    parts = [choice] if isinstance(choice, str) else [str(item) for item in choice]
    return [word.strip() for part in parts for word in part.split(",") if word.strip()]


def parse_corruptions(choice: str | Sequence[str] | None = None) -> list[str]:
    """The corruption names a choice selects, first occurrence first, no duplicates.

    ``choice``: a group (see :data:`GROUPS`: benchmark, all (the 19), common, validation,
    extra, noise, blur, weather, digital, train10, heldout5, posebench, blur_noise,
    compression, lighting, occlusion, posebench_extra, everything (22), box (the four box
    perturbations), none), a corruption or box perturbation name, a comma-separated mix of
    both (``"blur,snow"``), or a list of such strings; ``None`` means ``'benchmark'``.
    ``'none'`` and an empty list select nothing. An unknown word or a blank string raises
    a one-line ValueError listing the valid choices.
    """
    if choice is None:
        choice = "benchmark"
    words = _words(choice)
    if not words and isinstance(choice, str):
        raise ValueError(f"no corruption given in {choice!r}; use {_CORRUPTION_HELP}")
    unknown = [w for w in words if w not in GROUPS and w not in ALL_CORRUPTIONS
               and w not in BOX_PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown corruption(s) {', '.join(unknown)}; use {_CORRUPTION_HELP}")
    names: list[str] = []
    for word in words:
        names.extend(GROUPS.get(word, (word,)))
    return list(dict.fromkeys(names))


def pixel_corruptions(names: Sequence[str]) -> list[str]:
    """``names`` without the box perturbations (what a -C writer or a pixel engine takes)."""
    return [n for n in names if n not in BOX_PERTURBATIONS]


def _severity_values(item: object, choice: object) -> list[int]:
    """The severities of one word (``'3'``, ``'1-5'``, ``'all'``) or one int."""
    if isinstance(item, numbers.Integral) and not isinstance(item, bool):
        return [int(item)]
    if isinstance(item, str):
        word = item.strip()
        if word == "all":
            return list(SEVERITIES)
        try:
            if "-" in word.lstrip("-"):
                low, high = (int(v) for v in word.split("-", 1))
                if low > high:
                    raise ValueError
                return list(range(low, high + 1))
            return [int(word)]
        except ValueError:
            pass
    raise ValueError(f"bad severities {choice!r}; use {_SEVERITY_HELP}")


def parse_severities(choice: str | int | Iterable[int | str] | None = None) -> list[int]:
    """Sorted unique severities in 1..5.

    ``choice``: ``"1-5"``, ``"3"``, ``"1,3,5"``, ``"1-3,5"``, ``"all"``, an int, or a list
    of ints / such strings; ``None`` means all five. Anything else, an empty choice or a
    value outside 1..5 raises a one-line ValueError.
    """
    if choice is None:
        return list(SEVERITIES)
    if isinstance(choice, (str, numbers.Integral)):
        items: list[object] = _words(choice) if isinstance(choice, str) else [choice]
    else:
        items = [word for item in choice
                 for word in (_words(item) if isinstance(item, str) else [item])]
    values = [v for item in items for v in _severity_values(item, choice)]
    if not values:
        raise ValueError(f"no severity given in {choice!r}; use {_SEVERITY_HELP}")
    if not set(values) <= set(SEVERITIES):
        raise ValueError(f"severities must lie in 1..5, got {choice!r}")
    return sorted(set(values))
