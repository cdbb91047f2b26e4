"""Write a corrupted (-C) copy of an image set: every image x corruption x severity.

The layouts are those of :mod:`robustpose.data.corrupted` (one definition for writer and
reader; see docs/writing-c-datasets.md):

- ``robustpose`` (default): ``OUTPUT/<corruption>/<severity 1-5>/<relative path>``, PNG
  (lossless) unless asked otherwise. Each image is corrupted exactly as
  :class:`~robustpose.data.CorruptedImages` corrupts it on the fly: ``corrupt(image, c, s,
  seed=corrupted_image_seed(seed, image_id, c, s))``. The image id is the one of the
  annotation file when one is given (``annotations=``, ``--annotations``; the ids the
  benchmark's records carry), else the image's POSIX path relative to the input folder.
  So a PNG folder written with the set's annotation file, read back by ``robustpose
  benchmark --corrupted-root``, gives exactly the on-the-fly cells.
- ``advmix``: what the official AdvMix ``tools/make_datasets.py`` writes and its data
  loaders read: ``OUTPUT/<corruption>/<severity - 1>/<file name>`` (folders 0-4, no
  sub-folders), JPEG at Pillow's default quality 75, and, the documented exception to
  the seeding rule, the same seed (``--seed``, default 1, as the script's
  ``np.random.seed(1)``) for every image.

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
from typing import Any, Iterable, Sequence

import numpy as np

from ..utils.io import atomic_write_bytes, atomic_write_text
from .corrupted import LAYOUTS, corrupt_image, corrupted_image_path, corrupted_image_seed
from .images import load_image, resolve_under_root
from .records import read_json

__all__ = ["WriterSettings", "WriteSummary", "write_corrupted_dataset", "find_images",
           "image_ids_from_annotations", "output_path", "image_seed", "encode_image",
           "IMAGE_SUFFIXES", "CONFIG_NAME", "SUMMARY_NAME", "FORMATS", "DEFAULT_JPEG_QUALITY"]

#: file suffixes treated as images when scanning INPUT_DIR (case-insensitive)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
#: written into OUTPUT_DIR: the settings of the run (a rerun must use the same ones)
CONFIG_NAME = "corrupt_config.json"
#: written into OUTPUT_DIR at the end: counts and every skipped input with its reason
SUMMARY_NAME = "corrupt_summary.json"
FORMATS = ("png", "jpg")
#: Pillow's JPEG default, which the AdvMix script relied on
DEFAULT_JPEG_QUALITY = 75
#: the seeding rule of each layout, stored in CONFIG_NAME (a folder started under another
#: rule, e.g. by an older robustpose, is refused on rerun rather than mixed)
SEED_RULES = {"robustpose": "derive_seed(seed, image_id, corruption, severity)",
              "advmix": "seed for every image"}


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

    @property
    def suffix(self) -> str:
        return ".png" if self.image_format == "png" else ".jpg"


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


# ----------------------------------------------------------------------------- inputs

def find_images(input_dir: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of the images under ``input_dir``, sorted; hidden files and
    folders (including our own ``.name.tmp.*`` files) are ignored."""
    input_dir = Path(input_dir)
    found = []
    for root, dirs, files in os.walk(input_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                found.append((Path(root) / name).relative_to(input_dir).as_posix())
    return sorted(found)


def image_ids_from_annotations(annotation_file: str | os.PathLike,
                               image_root: str | os.PathLike) -> dict[str, Any]:
    """``{relative POSIX path: image id}`` of every image an annotation file lists, with
    the ids its loader gives the records: a COCO-format json (``images[].id`` by
    ``file_name``) or an HRNet-layout MPII json (the image name's number).

    Raises a one-line ValueError / FileNotFoundError naming the file when it is missing,
    not one of these formats, lists a path leaving ``image_root``, or gives one file two ids.
    """
    from .mpii import _image_id as mpii_image_id  # the MPII loader's id rule, not a copy

    source = str(annotation_file)
    data = read_json(annotation_file)
    if isinstance(data, dict) and isinstance(data.get("images"), list):
        pairs = []
        for img in data["images"]:
            if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
                raise ValueError(f"{source}: image entry {img!r:.80} lacks 'id' or 'file_name'")
            pairs.append((img["file_name"], img["id"]))
    elif isinstance(data, list) and all(isinstance(e, dict) and "image" in e for e in data):
        pairs = [(e["image"], mpii_image_id(e["image"])) for e in data]
    else:
        raise ValueError(f"{source}: neither a COCO-format json (an 'images' list) nor an "
                         "HRNet MPII json (a list of entries with 'image')")
    root = Path(image_root)
    ids: dict[str, Any] = {}
    for name, image_id in pairs:
        rel = resolve_under_root(root, name, source).relative_to(root).as_posix()
        if rel in ids and ids[rel] != image_id:
            raise ValueError(f"{source}: {rel} is listed with two image ids, {ids[rel]!r} "
                             f"and {image_id!r}")
        ids[rel] = image_id
    if not ids:
        raise ValueError(f"{source}: lists no image")
    return dict(sorted(ids.items()))


def output_path(output_dir: Path, rel_path: str, corruption: str, severity: int,
                settings: WriterSettings) -> Path:
    """Where the corrupted ``rel_path`` goes for one (corruption, severity)."""
    return corrupted_image_path(output_dir, corruption, severity, rel_path, settings.layout,
                                suffix=settings.suffix)


def image_seed(settings: WriterSettings, image_id: Any, corruption: str, severity: int) -> int:
    """The ``seed`` passed to ``corrupt`` for one output.

    robustpose layout: :func:`~robustpose.data.corrupted.corrupted_image_seed`, the seed
    on-the-fly corruption uses (independent of order and worker count). advmix layout:
    ``settings.seed`` itself, as the official script seeds numpy with 1 before each image.
    """
    if settings.layout == "advmix":
        return int(settings.seed)
    return corrupted_image_seed(settings.seed, image_id, corruption, severity)


def _check_unique_outputs(output_dir: Path, rel_paths: Sequence[str],
                          settings: WriterSettings) -> None:
    """Refuse two inputs that the layout would write to one file (advmix drops
    sub-folders; both layouts change the suffix, so ``a.jpg`` and ``a.png`` collide)."""
    seen: dict[Path, str] = {}
    for rel in rel_paths:
        target = output_path(output_dir, rel, "c", 1, settings)
        if target in seen:
            hint = ("--layout advmix keeps only file names; use --layout robustpose"
                    if settings.layout == "advmix" else "rename one of them")
            raise ValueError(f"{seen[target]} and {rel} would both be written as "
                             f"{target.name}; {hint}")
        seen[target] = rel


# ----------------------------------------------------------------------------- one image

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
    image_id: Any
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    settings: WriterSettings


def _process_image(task: _Task) -> tuple[str, int, int, list[dict]]:
    """Write every missing output of one image; returns (rel, written, skipped, failures)."""
    out_dir = Path(task.output_dir)
    todo = [(c, s, output_path(out_dir, task.rel_path, c, s, task.settings))
            for c in task.corruptions for s in task.severities]
    missing = [(c, s, p) for c, s, p in todo if not p.exists()]
    skipped = len(todo) - len(missing)
    if not missing:
        return task.rel_path, 0, skipped, []
    try:  # the project's reader, as the datasets read the clean image
        image = load_image(Path(task.input_dir) / task.rel_path)
    except ValueError as exc:
        return task.rel_path, 0, skipped, [{"path": task.rel_path, "error": str(exc)}]
    written, failures = 0, []
    for corruption, severity, path in missing:
        seed = image_seed(task.settings, task.image_id, corruption, severity)
        try:
            result = corrupt_image(image, corruption, severity, seed)
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


def _check_config(output_dir: Path, config: dict, overwrite: bool) -> None:
    """A rerun must use the settings the folder was started with (else it would mix
    images made with different seeds/formats/ids); ``overwrite`` starts afresh: with other
    settings, every image of the folder goes (not only this run's corruptions and images,
    whose neighbours a later run would otherwise count as already there)."""
    config_file = output_dir / CONFIG_NAME
    if config_file.exists() and overwrite:
        try:
            same = json.loads(config_file.read_text()) == json.loads(json.dumps(config))
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            for path in output_dir.rglob("*"):
                if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                    path.unlink()
    if config_file.exists() and not overwrite:
        try:
            previous = json.loads(config_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{config_file} is unreadable ({exc}); remove it or pass --overwrite") from None
        diff = [k for k in config if previous.get(k) != config[k]]
        if diff:
            was = ", ".join(f"{k}={previous[k]!r}" if k in previous else f"no {k} (an older "
                            "robustpose)" for k in diff)
            raise ValueError(f"{output_dir} was started with {was}; rerun with the same "
                             f"settings, another OUTPUT_DIR, or --overwrite")
    atomic_write_text(config_file, json.dumps(config, indent=2) + "\n")


def _select_images(input_dir: Path, images: Sequence[str] | None,
                   annotations: str | os.PathLike | None) -> tuple[dict[str, Any], str]:
    """``{relative path: image id}`` to write, and how the ids were chosen."""
    if annotations is None:
        rel_paths = list(images) if images is not None else find_images(input_dir)
        if not rel_paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {input_dir}")
        return {rel: rel for rel in rel_paths}, "relative path"
    ids = image_ids_from_annotations(annotations, input_dir)
    if images is not None:
        unknown = [rel for rel in images if rel not in ids]
        if unknown:
            raise ValueError(f"{annotations}: does not list {', '.join(unknown[:5])}")
        ids = {rel: ids[rel] for rel in images}
    return ids, f"annotations {Path(annotations).name}"


def write_corrupted_dataset(input_dir: str | os.PathLike, output_dir: str | os.PathLike,
                            corruptions: str | Iterable[str] = "benchmark",
                            severities: str | int | Iterable[int] = "1-5",
                            settings: WriterSettings | None = None, workers: int = 1,
                            overwrite: bool = False, progress: bool = True,
                            images: Sequence[str] | None = None,
                            annotations: str | os.PathLike | None = None) -> WriteSummary:
    """Write the corrupted copy of every image, in ``settings.layout``.

    ``corruptions`` / ``severities``: the grammar of :func:`~robustpose.corruptions.
    parse_corruptions` / ``parse_severities`` (names, groups, ``"1-5"``, lists).
    ``annotations``: a COCO-format (or HRNet MPII) json of the set: its images are written
    and seeded by their image ids, as on-the-fly corruption seeds the benchmark's records;
    without it every image under ``input_dir`` is written, its id being its relative path.
    ``images``: relative paths to process (default: all of them). ``overwrite``: rewrite
    existing files (default: skip them). Returns the summary, which is also written to
    ``output_dir/corrupt_summary.json``.
    """
    from tqdm import tqdm

    # imported late, as in corrupted.py: importing robustpose.data needs no corruption engine
    from ..corruptions.selection import parse_corruptions, parse_severities, pixel_corruptions

    settings = settings or WriterSettings()
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder {input_dir} does not exist")
    if output_dir.resolve() == input_dir.resolve() or input_dir.resolve() in output_dir.resolve().parents:
        raise ValueError(f"output folder {output_dir} must not lie inside the input folder {input_dir}")
    corruptions = tuple(parse_corruptions(corruptions))
    severities = tuple(parse_severities(severities))
    if not corruptions:
        raise ValueError("no corruption selected ('none'): nothing to write")
    box = [n for n in corruptions if n not in pixel_corruptions(corruptions)]
    if box:  # before any image is read: a box perturbation moves the crop, not the pixels
        raise ValueError(f"corruptions {', '.join(box)} perturb the person box, not the pixels: a "
                         "-C folder cannot hold them (benchmark --corruptions box and stability "
                         "--perturbations box run them on the fly)")
    ids, id_source = _select_images(input_dir, images, annotations)
    rel_paths = list(ids)
    _check_unique_outputs(output_dir, rel_paths, settings)

    output_dir.mkdir(parents=True, exist_ok=True)
    config = {**asdict(settings), "seed_rule": SEED_RULES[settings.layout],
              "image_ids": id_source}
    _check_config(output_dir, config, overwrite)
    summary = WriteSummary(images=len(rel_paths),
                           outputs_total=len(rel_paths) * len(corruptions) * len(severities))
    summary.stale_temp_removed = _remove_stale_temps(output_dir)
    if overwrite:
        for rel in rel_paths:
            for c in corruptions:
                for s in severities:
                    output_path(output_dir, rel, c, s, settings).unlink(missing_ok=True)

    tasks = [_Task(str(input_dir), str(output_dir), rel, ids[rel], corruptions, severities,
                   settings) for rel in rel_paths]
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
