"""Write a corrupted (-C) copy of an image folder: every image x corruption x severity.

Layouts (see docs/writing-c-datasets.md):

- ``robustpose`` (default): ``OUTPUT/<corruption>/<severity 1-5>/<relative path>``, PNG
  (lossless) unless asked otherwise, per-image seed ``derive_seed(seed, relative path)``.
- ``advmix``: what the official AdvMix ``tools/make_datasets.py`` writes and its data
  loaders read: ``OUTPUT/<corruption>/<severity - 1>/<file name>`` (folders 0-4, no
  sub-folders), JPEG at Pillow's default quality 75, and the same seed (``--seed``,
  default 1, as the script's ``np.random.seed(1)``) for every image.

Guarantees: every file is written to a temporary name and renamed (an interrupted run
never leaves a half-written image); a rerun skips files that exist; an unreadable input
(or an image a corruption rejects) is reported, skipped and listed in the summary
(``OUTPUT/corrupt_summary.json``); the bytes do not depend on order or worker count.
"""
from __future__ import annotations

import io
import json
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from robustpose.corruptions.params import SUBSETS
from robustpose.utils.io import atomic_write_bytes, atomic_write_text
from robustpose.utils.seeding import derive_seed

#: file suffixes treated as images when scanning INPUT_DIR (case-insensitive)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
#: written into OUTPUT_DIR: the settings of the run (a rerun must use the same ones)
CONFIG_NAME = "corrupt_config.json"
#: written into OUTPUT_DIR at the end: counts and every skipped input with its reason
SUMMARY_NAME = "corrupt_summary.json"
LAYOUTS = ("robustpose", "advmix")
FORMATS = ("png", "jpg")
#: Pillow's JPEG default, which the AdvMix script relied on
DEFAULT_JPEG_QUALITY = 75


@dataclass(frozen=True)
class WriterSettings:
    """Everything that decides the bytes of an output file (saved as CONFIG_NAME)."""

    layout: str = "robustpose"
    seed: int = 0
    image_format: str = "png"
    quality: int = DEFAULT_JPEG_QUALITY

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; choose from {', '.join(LAYOUTS)}")
        if self.image_format not in FORMATS:
            raise ValueError(f"unknown format {self.image_format!r}; choose from {', '.join(FORMATS)}")
        if not 1 <= int(self.quality) <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {self.quality}")


@dataclass
class WriteSummary:
    """What a run did; ``failed`` lists ``{'path', 'error'}`` for every skipped input."""

    images: int = 0
    outputs_total: int = 0
    written: int = 0
    skipped_existing: int = 0
    stale_temp_removed: int = 0
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0


# ----------------------------------------------------------------------------- parsing

def parse_corruptions(spec: str) -> list[str]:
    """``benchmark`` (the 15), ``all`` (19), a subset name of ``get_corruption_names``
    (``common``, ``validation``, ``noise``, ``blur``, ``weather``, ``digital``) or a
    comma-separated list of corruption names."""
    from robustpose.corruptions import get_corruption_names

    spec = spec.strip()
    if spec == "benchmark":
        return list(get_corruption_names("common"))
    if spec in SUBSETS:
        return list(get_corruption_names(spec))
    known = list(get_corruption_names("all"))
    names = [part.strip() for part in spec.split(",") if part.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"unknown corruption(s) {', '.join(unknown) or repr(spec)}; use "
                         f"benchmark, all, {', '.join(s for s in SUBSETS if s != 'all')} or names from: "
                         f"{', '.join(known)}")
    return list(dict.fromkeys(names))


def parse_severities(spec: str) -> list[int]:
    """``"1-5"``, ``"3"`` or ``"1,3,5"`` -> sorted unique severities in 1..5."""
    values: set[int] = set()
    try:
        for part in spec.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                values.update(range(lo, hi + 1))
            elif part:
                values.add(int(part))
    except ValueError:
        raise ValueError(f"bad severities {spec!r}; use e.g. 1-5, 3 or 1,3,5") from None
    if not values or min(values) < 1 or max(values) > 5:
        raise ValueError(f"severities must lie in 1..5, got {spec!r}")
    return sorted(values)


# ----------------------------------------------------------------------------- layout

def find_images(input_dir: Path) -> list[str]:
    """Relative POSIX paths of the images under ``input_dir``, sorted; hidden files and
    folders (including our own ``.name.tmp.*`` files) are ignored."""
    found = []
    for root, dirs, files in os.walk(input_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                found.append((Path(root) / name).relative_to(input_dir).as_posix())
    return sorted(found)


def output_path(output_dir: Path, rel_path: str, corruption: str, severity: int,
                settings: WriterSettings) -> Path:
    """Where the corrupted ``rel_path`` goes for one (corruption, severity)."""
    suffix = ".png" if settings.image_format == "png" else ".jpg"
    if settings.layout == "advmix":
        return output_dir / corruption / str(severity - 1) / Path(Path(rel_path).name).with_suffix(suffix)
    return output_dir / corruption / str(severity) / Path(rel_path).with_suffix(suffix)


def image_seed(settings: WriterSettings, rel_path: str) -> int:
    """The ``seed`` passed to ``corrupt`` for one input image.

    robustpose layout: ``derive_seed(seed, rel_path)`` (independent of order and worker
    count; the same for every corruption and severity of that image, like the AdvMix
    script). advmix layout: ``seed`` itself, as the script seeds numpy with 1 per image.
    """
    if settings.layout == "advmix":
        return int(settings.seed)
    return derive_seed(settings.seed, rel_path)


def check_flat_names(rel_paths: Sequence[str]) -> None:
    """The advmix layout drops sub-folders: refuse two inputs that would share a name."""
    seen: dict[str, str] = {}
    for rel in rel_paths:
        stem = Path(rel).stem
        if stem in seen:
            raise ValueError(f"--layout advmix keeps only file names, but {seen[stem]} and "
                             f"{rel} would both be written as {stem}; use --layout robustpose")
        seen[stem] = rel


# ----------------------------------------------------------------------------- one image

def read_image_rgb(path: Path) -> np.ndarray:
    """uint8 RGB H x W x 3 through the project's reader (``robustpose.data.load_image``:
    EXIF orientation ignored, so pixel coordinates stay those of the annotations, grey
    images as 3 equal channels, truncated files refused). Raises ValueError naming the file."""
    from robustpose.data import load_image

    return load_image(path)


def encode_image(image: np.ndarray, settings: WriterSettings) -> bytes:
    """PNG or JPEG bytes of a uint8 RGB image.

    PNG: OpenCV's encoder at its default (fast) zlib level: lossless, 3-8x faster than
    Pillow's default level 6 for about 10% more bytes. JPEG: Pillow with 4:2:0
    subsampling, as the AdvMix script (``Image.save`` at quality 75)."""
    if settings.image_format == "png":
        import cv2

        ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
        if not ok:  # pragma: no cover - cv2 fails only on invalid arrays
            raise ValueError("PNG encoding failed")
        return buf.tobytes()
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=int(settings.quality))
    return out.getvalue()


@dataclass(frozen=True)
class _Task:
    input_dir: str
    output_dir: str
    rel_path: str
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    settings: WriterSettings


def _process_image(task: _Task) -> tuple[str, int, int, list[dict]]:
    """Write every missing output of one image; returns (rel, written, skipped, failures)."""
    from robustpose.corruptions import corrupt

    out_dir = Path(task.output_dir)
    todo = [(c, s, output_path(out_dir, task.rel_path, c, s, task.settings))
            for c in task.corruptions for s in task.severities]
    missing = [(c, s, p) for c, s, p in todo if not p.exists()]
    skipped = len(todo) - len(missing)
    if not missing:
        return task.rel_path, 0, skipped, []
    try:
        image = read_image_rgb(Path(task.input_dir) / task.rel_path)
    except ValueError as exc:
        return task.rel_path, 0, skipped, [{"path": task.rel_path, "error": str(exc)}]
    seed = image_seed(task.settings, task.rel_path)
    written, failures = 0, []
    for corruption, severity, path in missing:
        try:
            result = corrupt(image, corruption_name=corruption, severity=severity, seed=seed)
        except (ValueError, AttributeError) as exc:
            failures.append({"path": task.rel_path, "corruption": corruption,
                             "severity": severity, "error": f"{type(exc).__name__}: {exc}"})
            continue
        atomic_write_bytes(path, encode_image(result, task.settings))
        written += 1
    return task.rel_path, written, skipped, failures


def _worker_init() -> None:
    """Each pool worker is single-threaded inside (the pool gives the parallelism)."""
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - opencv is a dependency
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


# ----------------------------------------------------------------------------- the run

def _remove_stale_temps(output_dir: Path) -> int:
    """Delete ``.name.tmp.*`` files a killed run left behind (never a finished image)."""
    removed = 0
    for root, _dirs, files in os.walk(output_dir):
        for name in files:
            if name.startswith(".") and ".tmp." in name:
                (Path(root) / name).unlink(missing_ok=True)
                removed += 1
    return removed


def _check_config(output_dir: Path, settings: WriterSettings, overwrite: bool) -> None:
    """A rerun must use the settings the folder was started with (else it would mix
    images made with different seeds/formats); ``overwrite`` starts afresh."""
    config_file = output_dir / CONFIG_NAME
    if config_file.exists() and not overwrite:
        try:
            previous = json.loads(config_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{config_file} is unreadable ({exc}); remove it or pass --overwrite") from None
        current = asdict(settings)
        diff = [k for k in current if previous.get(k) != current[k]]
        if diff:
            was = ", ".join(f"{k}={previous.get(k)!r}" for k in diff)
            raise ValueError(f"{output_dir} was started with {was}; rerun with the same "
                             f"settings, another OUTPUT_DIR, or --overwrite")
    atomic_write_text(config_file, json.dumps(asdict(settings), indent=2) + "\n")


def write_corrupted_dataset(input_dir: str | os.PathLike, output_dir: str | os.PathLike,
                            corruptions: Iterable[str], severities: Iterable[int],
                            settings: WriterSettings | None = None, workers: int = 1,
                            overwrite: bool = False, progress: bool = True,
                            images: Sequence[str] | None = None) -> WriteSummary:
    """Write ``output_dir/<corruption>/<severity>/<relative path>`` for every image.

    ``images``: relative paths to process (default: every image under ``input_dir``).
    ``overwrite``: rewrite existing files (default: skip them). Returns the summary, which
    is also written to ``output_dir/corrupt_summary.json``.
    """
    from tqdm import tqdm

    settings = settings or WriterSettings()
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder {input_dir} does not exist")
    if output_dir.resolve() == input_dir.resolve() or input_dir.resolve() in output_dir.resolve().parents:
        raise ValueError(f"output folder {output_dir} must not lie inside the input folder {input_dir}")
    rel_paths = list(images) if images is not None else find_images(input_dir)
    if not rel_paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {input_dir}")
    corruptions, severities = tuple(corruptions), tuple(int(s) for s in severities)
    if settings.layout == "advmix":
        check_flat_names(rel_paths)

    output_dir.mkdir(parents=True, exist_ok=True)
    _check_config(output_dir, settings, overwrite)
    summary = WriteSummary(images=len(rel_paths),
                           outputs_total=len(rel_paths) * len(corruptions) * len(severities))
    summary.stale_temp_removed = _remove_stale_temps(output_dir)
    if overwrite:
        for rel in rel_paths:
            for c in corruptions:
                for s in severities:
                    output_path(output_dir, rel, c, s, settings).unlink(missing_ok=True)

    tasks = [_Task(str(input_dir), str(output_dir), rel, corruptions, severities, settings)
             for rel in rel_paths]
    start = time.perf_counter()
    bar = tqdm(total=summary.outputs_total, unit="img", desc="corrupt", disable=not progress,
               dynamic_ncols=True)
    pool = None
    try:
        if workers > 1:
            pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init)
            results = pool.imap_unordered(_process_image, tasks, chunksize=1)
        else:
            results = map(_process_image, tasks)
        for rel, written, skipped, failures in results:
            summary.written += written
            summary.skipped_existing += skipped
            for failure in failures:
                summary.failed.append(failure)
                bar.write(f"skipped {failure['path']}: {failure['error']}")
            bar.update(len(corruptions) * len(severities))
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    summary.failed.sort(key=lambda f: (f["path"], f.get("corruption", ""), f.get("severity", 0)))
    summary.seconds = round(time.perf_counter() - start, 3)
    atomic_write_text(output_dir / SUMMARY_NAME, json.dumps(asdict(summary), indent=2) + "\n")
    return summary
