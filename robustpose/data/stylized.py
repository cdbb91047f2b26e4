"""Stylized training images: the AdvMix paper's *Stylized* rows, at the data level.

The user supplies a stylized copy of the training images (any style-transfer tool, e.g.
AdaIN as for Stylized-ImageNet / Stylized-COCO): the same relative paths under another
root, every image the same width x height as its original. With probability ``prob`` the
training dataset reads the stylized copy of an item's image instead of the original;
geometry is identical, so the crop, the augmentation and the targets are untouched.

The choice is drawn per item from its own seeded generator,
``rng_from(dataset seed, 'stylized', epoch, index)``: a rerun makes the same choices, and
the augmentation draws (``'augment'`` stream) are the same with or without a stylized copy
(``prob: 0`` is bit-identical to no stylized copy).

Config (``data.train.stylized``, resolved like every data path: a relative ``root`` is
under ``data.root``)::

    data:
      train:
        annotations: annotations/person_keypoints_train2017.json
        images: images/train2017
        stylized: {root: images/train2017_stylized, prob: 0.5}

A stylized file that is missing, unreadable or of another size than its original is a
one-line :class:`StylizedImageError` naming the file: it is the user's copy to fix, so it
is never skipped silently the way an unreadable original may be. With ``check_files: true``
(default) every file is checked at start-up from the image headers (existence and size),
so a bad copy fails before training, not in a DataLoader worker mid-run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

import numpy as np

from ..utils.seeding import rng_from
from .images import ImageReadError, image_file_size, load_image, resolve_under_root
from .records import PersonRecord

__all__ = ["STYLIZED_KEYS", "StylizedBlock", "StylizedImageError", "StylizedImages", "parse_block"]

#: keys of a ``data.train.stylized`` block
STYLIZED_KEYS = ("root", "prob", "suffix", "check_files")
WHERE = "data.train.stylized"


def _check_suffix(suffix: Any) -> str | None:
    if suffix is not None and (not isinstance(suffix, str) or not suffix.startswith(".")
                               or len(suffix) < 2 or "/" in suffix or "\\" in suffix):
        raise ValueError(f"{WHERE}.suffix must be a file extension like '.png', got {suffix!r}")
    return suffix


class StylizedImageError(ValueError):
    """A stylized file that is missing, unreadable or not its original's size (one line,
    naming the file). Not an :class:`ImageReadError`, so training never skips it."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class StylizedImages:
    """Where the stylized copy of a split lives and how often it is read.

    Args:
        root: folder of the stylized copy (mirrors ``image_root``).
        image_root: the split's original image folder (``data.train.images``); an image's
            path relative to it is its path under ``root``.
        prob: probability in [0, 1] of reading the stylized copy of an item.
        suffix: replace each file's extension (e.g. ``.png`` when the tool wrote PNGs for
            JPEG originals); ``None`` keeps the original name.
    """

    root: Path
    image_root: Path
    prob: float
    suffix: str | None = None

    def __post_init__(self) -> None:
        prob = self.prob
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
            raise ValueError(f"{WHERE}.prob must be a number in [0, 1], got {prob!r}")
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "image_root", Path(self.image_root))
        object.__setattr__(self, "prob", float(prob))
        _check_suffix(self.suffix)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: {WHERE}.root (the stylized copy of "
                                    f"{self.image_root}) is not a folder")

    @classmethod
    def from_block(cls, block: Any, image_root: str | os.PathLike,
                   resolve: Callable[[str], Path] = Path,
                   records: Iterable[PersonRecord] | None = None) -> "StylizedImages | None":
        """The ``data.train.stylized`` block -> :class:`StylizedImages` (``None`` for a
        null block); :func:`parse_block` then :meth:`check_files` over ``records`` unless
        ``check_files: false``."""
        parsed = parse_block(block, resolve)
        return None if parsed is None else parsed.build(image_root, records)

    # ------------------------------------------------------------------ paths
    def relative(self, record: PersonRecord) -> str:
        """The record's image path relative to ``image_root`` (POSIX form)."""
        path = Path(record.image_path)
        try:
            rel = path.relative_to(self.image_root)
        except ValueError:
            raise ValueError(f"{path}: not under the image folder {self.image_root}, so it has "
                             f"no path in the stylized copy {self.root}") from None
        text = PurePosixPath(*rel.parts)
        if self.suffix is not None:
            text = text.with_suffix(self.suffix)
        return str(text)

    def path_for(self, record: PersonRecord) -> Path:
        """The stylized file of ``record``, refused when it would leave ``root``."""
        return resolve_under_root(self.root, self.relative(record), f"{WHERE}.root {self.root}")

    def check_files(self, records: Iterable[PersonRecord]) -> None:
        """Fail fast, before training: every image of ``records`` has a stylized file of
        its size (from the file headers; one line naming the first bad file and the
        count). An unreadable original is left to the dataset, which skips it."""
        problems: list[tuple[Path, str]] = []
        seen: set[str] = set()
        for record in records:
            key = str(record.image_path)
            if key in seen:
                continue
            seen.add(key)
            path = self.root / self.relative(record)
            if not path.is_file():
                problems.append((path, "stylized image not found"))
                continue
            try:
                original = image_file_size(record.image_path)
            except ImageReadError:
                continue
            try:
                size = image_file_size(path)
            except ImageReadError as exc:
                problems.append((path, f"stylized image unreadable: {exc.problem}"))
                continue
            if size != original:
                problems.append((path, f"stylized image is {size[0]}x{size[1]} but its original "
                                 f"is {original[0]}x{original[1]}"))
        if problems:
            path, problem = problems[0]
            more = f" (and {len(problems) - 1} more of {len(seen)} images)" if len(problems) > 1 else ""
            raise StylizedImageError(path, f"{problem}{more}; {WHERE}.root must mirror "
                                     f"{self.image_root} with every image's size kept")

    # ------------------------------------------------------------------ reading
    def chooses(self, seed: int, epoch: int, index: int) -> bool:
        """Whether item ``index`` of epoch ``epoch`` reads the stylized copy: one uniform
        draw from ``rng_from(seed, 'stylized', epoch, index)`` (none at prob 0 or 1)."""
        if self.prob <= 0.0:
            return False
        if self.prob >= 1.0:
            return True
        return bool(rng_from(seed, "stylized", epoch, index).random() < self.prob)

    def load(self, record: PersonRecord) -> np.ndarray:
        """The stylized image of ``record`` (uint8 RGB H x W x 3), checked to be the size
        of the original (read from the original's header; an unreadable original raises
        the usual :class:`ImageReadError`, so it is skipped like any unreadable image)."""
        path = self.path_for(record)
        if not path.is_file():
            raise StylizedImageError(path, f"stylized image not found ({WHERE}.root must "
                                     f"mirror {self.image_root})")
        try:
            image = load_image(path)
        except ImageReadError as exc:
            raise StylizedImageError(path, f"stylized image unreadable: {exc.problem}") from None
        width, height = image_file_size(record.image_path)
        if image.shape[:2] != (height, width):
            raise StylizedImageError(path, f"stylized image is {image.shape[1]}x{image.shape[0]} "
                                     f"but its original {record.image_path} is {width}x{height} "
                                     f"(a stylized copy must keep every image's size)")
        return image


@dataclass(frozen=True)
class StylizedBlock:
    """A checked ``data.train.stylized`` block, before the split's images are known (a
    SynthPose split knows its image folder only once materialised)."""

    root: Path
    prob: float
    suffix: str | None
    check_files: bool

    def build(self, image_root: str | os.PathLike,
              records: Iterable[PersonRecord] | None = None) -> StylizedImages:
        """The :class:`StylizedImages` over ``image_root``; with ``records`` (and
        ``check_files``) every record's stylized file must exist, so a wrong root fails
        before training starts."""
        stylized = StylizedImages(self.root, Path(image_root), self.prob, self.suffix)
        if records is not None and self.check_files and stylized.prob > 0:
            stylized.check_files(records)
        return stylized


def parse_block(block: Any, resolve: Callable[[str], Path] = Path) -> StylizedBlock | None:
    """Check a ``data.train.stylized`` block (one-line errors naming the key): ``root``
    (required; ``resolve`` makes it a path: the trainer passes ``resolve_path``, relative
    roots under ``data.root``, ``..`` refused) must be a folder, ``prob`` in [0, 1]
    (required), ``suffix`` an extension or null, ``check_files`` a bool (default true).
    ``None`` for a null block."""
    if block is None:
        return None
    if not isinstance(block, dict):
        raise ValueError(f"{WHERE} must be a mapping {{root: PATH, prob: P}}, got {block!r}")
    unknown = sorted(set(block) - set(STYLIZED_KEYS))
    if unknown:
        raise ValueError(f"{WHERE}: unknown key {unknown[0]!r}; known keys: "
                         f"{', '.join(STYLIZED_KEYS)}")
    root = block.get("root")
    if not isinstance(root, (str, os.PathLike)) or not str(root):
        raise ValueError(f"{WHERE}.root is required: the folder of the stylized copy, got {root!r}")
    if "prob" not in block:
        raise ValueError(f"{WHERE}.prob is required: the probability in [0, 1] of reading "
                         f"the stylized copy")
    prob = block["prob"]
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
        raise ValueError(f"{WHERE}.prob must be a number in [0, 1], got {prob!r}")
    suffix = _check_suffix(block.get("suffix"))
    check = block.get("check_files", True)
    if not isinstance(check, bool):
        raise ValueError(f"{WHERE}.check_files must be true or false, got {check!r}")
    path = Path(resolve(str(root)))
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: {WHERE}.root (the stylized copy of the training "
                                f"images) is not a folder")
    return StylizedBlock(path, float(prob), suffix, check)
