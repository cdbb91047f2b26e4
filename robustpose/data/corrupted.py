"""Corrupted views of a dataset: on the fly (:class:`CorruptedImages`) or from -C folders.

On the fly: each full image is corrupted before cropping, seeded from
:func:`corrupted_image_seed` ``= derive_seed(seed, image_id, corruption, severity)``, so a
person's view is the same bytes in every run, worker count, process and order, and all
persons of one image see the same corrupted image.

Pre-generated folders: the layouts below are defined here once, for the writer
(:mod:`robustpose.data.corrupted_writer`, ``robustpose corrupt``) and the reader
(:class:`CorruptedFolder`, ``robustpose benchmark --corrupted-root``) alike.

- ``layout='robustpose'``: ``ROOT/<corruption>/<severity 1..5>/<path relative to the image
  root>``; the writer seeds each image as on the fly, so a lossless (PNG) folder holds
  exactly the on-the-fly images;
- ``layout='advmix'``: the official AdvMix ``tools/make_datasets.py`` layout,
  ``ROOT/<corruption>/<severity - 1, i.e. 0..4>/<image file name>`` (basename only; the
  script saved with Pillow under the original name, so ``.jpg`` files are JPEG at
  Pillow's default quality 75, and seeded numpy with 1 before every image).

Suffixes: the writer stores ``<name>.png`` or ``<name>.jpg`` (its ``--format``); the reader
takes the exact name when it exists, else the same name with ``.png``/``.jpg``/``.jpeg``.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import numpy as np

from ..utils.seeding import derive_seed
from .images import ImageReadError, image_file_size, load_image, resolve_under_root
from .records import PersonRecord

__all__ = ["CorruptedImages", "CorruptedFolder", "corrupted_image_path", "find_corrupted_image",
           "corrupted_image_seed", "corrupt_image", "LAYOUTS", "SUFFIXES"]

#: the -C folder layouts (see the module docstring)
LAYOUTS = ("robustpose", "advmix")
#: suffixes tried when the corrupted copy was re-encoded (``robustpose corrupt --format``)
SUFFIXES = (".png", ".jpg", ".jpeg")


def _default_corrupt() -> Callable:
    from ..corruptions import corrupt  # imported late: the corruption engine is optional here

    return corrupt


def corrupted_image_seed(seed: int, image_id: Any, corruption: str, severity: int) -> int:
    """The ``seed`` given to ``corrupt`` for one image of one (corruption, severity) cell:
    ``derive_seed(seed, image_id, corruption, severity)``, on the fly and in the writer's
    robustpose layout (ints and strings are different ids: 139 is not '139')."""
    return derive_seed(int(seed), image_id, str(corruption), int(severity))


def corrupt_image(image: np.ndarray, corruption: str, severity: int, seed: int,
                  corrupt_fn: Callable | None = None) -> np.ndarray:
    """``corrupt_fn(image, corruption_name=, severity=, seed=)`` (default
    :func:`robustpose.corruptions.corrupt`) as a C-contiguous uint8 array of the same shape
    (H x W x 3); a non-uint8 result is rounded and clipped to 0..255."""
    fn = corrupt_fn or _default_corrupt()
    out = np.asarray(fn(image, corruption_name=corruption, severity=int(severity), seed=seed))
    if out.dtype != np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


class CorruptedImages:
    """``image_transform`` applying one corruption at one severity, seeded per image.

    ``corrupt_fn(image, corruption_name=..., severity=..., seed=...)`` defaults to
    :func:`robustpose.corruptions.corrupt`. Severity 0 or corruption ``'clean'`` returns
    the image unchanged. An image the corruptions refuse for its size (a side under 32 or
    over 8192 px) raises :class:`~robustpose.data.ImageReadError` naming its file, so the
    benchmark skips and lists it as it does an unreadable file. The seed of an image is
    :func:`corrupted_image_seed`
    ``(seed, image_id, corruption, severity)``; ``robustpose corrupt`` (robustpose layout)
    seeds the same way, so its lossless folders hold exactly these images.
    """

    def __init__(self, corruption: str, severity: int, seed: int = 0,
                 corrupt_fn: Callable | None = None) -> None:
        severity = int(severity)
        if not 0 <= severity <= 5:
            raise ValueError(f"severity must be 0..5, not {severity}")
        self.corruption = str(corruption)
        self.severity = severity
        self.seed = int(seed)
        self.corrupt_fn = corrupt_fn

    def image_seed(self, image_id: Any) -> int:
        """:func:`corrupted_image_seed` of this view's cell."""
        return corrupted_image_seed(self.seed, image_id, self.corruption, self.severity)

    def __call__(self, image: np.ndarray, record: PersonRecord) -> np.ndarray:
        if self.severity == 0 or self.corruption == "clean":
            return image
        try:
            return corrupt_image(image, self.corruption, self.severity,
                                 self.image_seed(record.image_id), self.corrupt_fn)
        except ValueError as exc:
            from ..corruptions.api import ImageSizeError

            if isinstance(exc, ImageSizeError):  # too small/large to corrupt: this image
                # is skipped and named like an unreadable one (its people count as misses)
                raise ImageReadError(record.image_path, exc.problem) from None
            raise

    def __repr__(self) -> str:
        return f"CorruptedImages({self.corruption!r}, severity={self.severity}, seed={self.seed})"


def corrupted_image_path(root: str | os.PathLike, corruption: str, severity: int,
                         relative: str, layout: str = "robustpose",
                         suffix: str | None = None) -> Path:
    """Path of one pre-generated corrupted image (severity 1..5 in both layouts).

    ``relative``: the clean image's POSIX path relative to the image root. ``suffix``
    (e.g. ``'.png'``) replaces the file's suffix, as the writer stores it; ``None`` keeps
    the name. Raises ValueError for a bad severity or layout, or a path leaving ``root``.
    """
    severity = int(severity)
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be 1..5 for a -C folder, not {severity}")
    relative = str(relative).replace("\\", "/")
    if layout == "robustpose":
        folder, rel = str(severity), relative
    elif layout == "advmix":  # folders 0..4, sub-folders dropped
        folder, rel = str(severity - 1), PurePosixPath(relative).name
    else:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if suffix is not None:
        rel = PurePosixPath(rel).with_suffix(suffix).as_posix()
    return resolve_under_root(Path(root) / corruption / folder, rel, root)


def find_corrupted_image(root: str | os.PathLike, corruption: str, severity: int,
                         relative: str, layout: str = "robustpose") -> Path:
    """The existing corrupted file of ``relative``: the exact name first, then the same
    name with each of :data:`SUFFIXES`; the exact path when none exists."""
    path = corrupted_image_path(root, corruption, severity, relative, layout)
    if not path.exists():
        for suffix in SUFFIXES:
            candidate = path.with_suffix(suffix)
            if candidate.exists():
                return candidate
    return path


class CorruptedFolder:
    """Read a pre-generated -C folder in place of the clean images.

    An ``image_transform`` for :class:`~robustpose.data.TopDownDataset` that ignores the
    clean image and loads ``find_corrupted_image(root, corruption, severity, relative)``,
    where ``relative`` is the record's path relative to ``image_root``. Missing or
    unreadable files raise :class:`~robustpose.data.ImageReadError` naming the file (so
    ``skip_unreadable=True`` records them). A corrupted image whose size differs from the
    clean one is refused (the boxes would not match). The dataset calls :meth:`load`, which
    reads only the clean file's header, not its pixels.
    """

    def __init__(self, root: str | os.PathLike, image_root: str | os.PathLike, corruption: str,
                 severity: int, layout: str = "robustpose") -> None:
        self.root = Path(root)
        self.image_root = Path(image_root)
        self.corruption = corruption
        self.severity = int(severity)
        self.layout = layout
        corrupted_image_path(root, corruption, severity, "x.jpg", layout)  # validates args
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: corrupted-image folder not found")

    def path_for(self, record: PersonRecord) -> Path:
        """The corrupted file of ``record`` (exact name first, then other image suffixes)."""
        try:
            rel = Path(record.image_path).relative_to(self.image_root).as_posix()
        except ValueError:
            rel = Path(record.image_path).name
        return find_corrupted_image(self.root, self.corruption, self.severity, rel, self.layout)

    #: :class:`~robustpose.data.TopDownDataset` calls :meth:`load` instead of decoding the
    #: clean image first (only its size is needed, read from the file header).
    loads_image = True

    def load(self, record: PersonRecord) -> np.ndarray:
        """The corrupted image of ``record``, checked against the clean image's size.

        The clean size is read from the clean file's header (a missing or broken clean
        file is an :class:`ImageReadError` naming it); its pixels are never decoded.
        """
        return self._read_checked(record, lambda: image_file_size(record.image_path))

    def __call__(self, image: np.ndarray, record: PersonRecord) -> np.ndarray:
        return self._read_checked(record, lambda: (image.shape[1], image.shape[0]))

    def _read_checked(self, record: PersonRecord,
                      clean_size: Callable[[], tuple[int, int]]) -> np.ndarray:
        path = self.path_for(record)
        out = load_image(path)
        width, height = clean_size()
        if out.shape[:2] != (height, width):
            raise ImageReadError(path, f"size {out.shape[1]}x{out.shape[0]} differs from the "
                                       f"clean image's {width}x{height}")
        return out
