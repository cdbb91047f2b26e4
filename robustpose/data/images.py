"""Reading images safely: one-line errors naming the file, paths kept inside the data root."""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import cv2
import numpy as np

__all__ = ["ImageReadError", "image_file_size", "load_image", "resolve_under_root"]


class ImageReadError(ValueError):
    """An image file that is missing, truncated or not an image. ``path`` names it."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as a uint8 RGB array, H x W x 3.

    EXIF orientation is ignored (as HRNet reads with ``IMREAD_IGNORE_ORIENTATION``), so
    pixel coordinates match the annotations. Grey images become 3 equal channels.
    Raises :class:`ImageReadError` (a ``ValueError``) naming the file when it is missing,
    empty, truncated or not a decodable image.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(path, "image file not found") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not an image file") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot read image file ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ImageReadError(path, "empty file, not an image")
    if _is_truncated(data) and not _pil_decodes_fully(path):
        raise ImageReadError(path, "truncated image file (data ends before the image does)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.size == 0:
        raise ImageReadError(path, "not a readable image (unknown format or corrupt data)")
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def image_file_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header, without decoding the pixels.

    Like :func:`load_image`, EXIF orientation is ignored. Raises :class:`ImageReadError`
    naming the file when it is missing or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except FileNotFoundError:
        raise ImageReadError(path, "image file not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(path, f"not a readable image ({exc})") from None


def _is_truncated(data: np.ndarray) -> bool:
    """Detect JPEG/PNG files cut short (OpenCV would decode them with grey fill, silently)."""
    head = data[:8].tobytes()
    if head[:3] == b"\xff\xd8\xff":  # JPEG must end with the EOI marker (allow padding)
        tail = data[-1024:].tobytes()
        return b"\xff\xd9" not in tail
    if head == b"\x89PNG\r\n\x1a\n":  # PNG must end with an IEND chunk
        return b"IEND" not in data[-16:].tobytes()
    return False


def _pil_decodes_fully(path: Path) -> bool:
    """Second opinion for files without an end marker (some writers append trailing data)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:  # PIL: "image file is truncated" (OSError) or any decode error
        return False


def resolve_under_root(root: str | os.PathLike, relative: str, source: str | os.PathLike) -> Path:
    """``root / relative``, refusing paths that leave ``root``.

    ``relative`` comes from an annotation file (``source``, named in the error): absolute
    paths, drive letters and any ``..`` component are refused, as are symlinks resolving
    outside ``root``.
    """
    text = str(relative)
    if not text:
        raise ValueError(f"{source}: empty image file name")
    posix, windows = PurePosixPath(text.replace("\\", "/")), PureWindowsPath(text)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or text.startswith(("/", "\\")):
        raise ValueError(f"{source}: image path {text!r} is absolute; file names must be "
                         "relative to the image root")
    if ".." in posix.parts:
        raise ValueError(f"{source}: image path {text!r} escapes the image root (contains '..')")
    root = Path(root)
    path = root / Path(*posix.parts)
    try:
        real_root = root.resolve()
        real = path.resolve()
    except OSError:  # pragma: no cover - resolution problems surface when reading
        return path
    if real_root != real and real_root not in real.parents:
        raise ValueError(f"{source}: image path {text!r} resolves outside the image root "
                         f"{root}")
    return path
