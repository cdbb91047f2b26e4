"""The benchmark of a whole-image model (image in, people out; issue 26 section 2).

Scored the COCO way with no ground-truth boxes: every image of the annotation file (the
images COCOeval scores, people or not) goes whole to the model, clean or corrupted by the
same seeded full-image transform as the top-down benchmark
(:class:`~robustpose.benchmarking.stream.CellImages`: the same pixels per image id), and
the model's own people and person scores go to the dataset's OKS AP metric
(:meth:`DataSource.make_metric`: sigmas, area rule, CrowdPose's AP(E/M/H)). Cells, results
store, resume, tables and plots are the top-down benchmark's: :class:`BenchmarkKind`
hands its ``prepare`` and ``evaluate`` here when the adapter is whole-image
(:func:`robustpose.models.whole_image.is_whole_image`).

Metric defaults (where the run does not choose): ``score_mode='bbox'`` (the model's person
score; :data:`WHOLE_IMAGE_METRIC`) and ``nms_mode='none'`` (the model, or its decoder's NMS,
already removed duplicates), as mmpose scores its one-stage models (RTMO).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from torch.utils.data import DataLoader, Dataset

from robustpose.benchmarking.cells import Cell
from robustpose.benchmarking.runner import cell_record
from robustpose.benchmarking.stream import CellBatches, CellImages
from robustpose.models.whole_image import People
from robustpose.utils.conventions import PIXEL_STD

__all__ = ["WHOLE_IMAGE_METRIC", "image_records", "WholeImageStream", "people_meta",
           "prepare", "evaluate", "evaluate_whole_image_cells"]

#: the OKS AP settings of a whole-image run unless the run names them
WHOLE_IMAGE_METRIC = {"score_mode": "bbox", "nms_mode": "none"}


def image_records(source: Any) -> list:
    """One record per image of ``source.annotation_file`` (id order), people or not:
    what the corruptions (seeded by image id) and the image reader take."""
    from robustpose.data import PersonRecord
    from robustpose.data.images import resolve_under_root
    from robustpose.data.records import read_json

    if source.metric_name != "AP":
        raise ValueError(f"dataset {source.name}: a whole-image model is scored by COCO OKS "
                         f"AP over its own people; {source.metric_name} scores given boxes")
    path = source.annotation_file
    images = read_json(path).get("images") or []
    out = []
    for img in sorted(images, key=lambda i: str(i.get("id"))):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise ValueError(f"{path}: image entry {img!r:.80} lacks 'id' or 'file_name'")
        out.append(PersonRecord(img["id"], resolve_under_root(source.image_root,
                                                              img["file_name"], path),
                                np.zeros(4), 1.0, None, 0.0, np.zeros(2), np.ones(2),
                                {"image_size": (img.get("width"), img.get("height"))}))
    if not out:
        raise ValueError(f"{path}: no images")
    return out


class WholeImageStream(Dataset):
    """Items ``(cell_index, image_index)`` -> ``{'cell', 'index', 'image' uint8 (H, W, 3)}``
    (the cell's corrupted image), or a skip marker ``{'cell', 'skipped', 'problem'}``."""

    def __init__(self, cells: Sequence[Cell], records: Sequence[Any], spec: Any,
                 images: CellImages, image_root: Path | None = None) -> None:
        from robustpose.data import TopDownDataset

        self.records = list(records)
        # TopDownDataset's reader: the -C folder / on-the-fly corruption and the image-size
        # check exactly as the top-down stream applies them (no crop is taken)
        self.readers = [TopDownDataset(self.records, spec, train=False, encode_targets=False,
                                       image_transform=images.transform(cell, image_root))
                        for cell in cells]

    def __len__(self) -> int:
        return len(self.readers) * len(self.records)

    def __getitem__(self, item: tuple[int, int]) -> dict:
        from robustpose.data import ImageReadError

        cell, index = item
        try:
            image = self.readers[cell]._read(self.records[index])
        except ImageReadError as exc:  # an unreadable image skips itself (its people: misses)
            path = str(getattr(exc, "path", None) or self.records[index].image_path)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            return {"cell": cell, "skipped": path, "problem": problem}
        return {"cell": cell, "index": index, "image": image}


def _collate(items: list[dict]) -> dict:
    return {"cell": items[0]["cell"], "count": len(items),
            "skipped": [(it["skipped"], it["problem"]) for it in items if "skipped" in it],
            "images": [(it["index"], it["image"]) for it in items if "image" in it]}


def people_meta(people: People, image_id: Any) -> dict:
    """The metric's meta of one image's people: ``image_id``, ``score`` (person score),
    ``center`` and ``scale`` of each person's box (units of 200 px, so an OKS-NMS chosen
    by the run takes the box area), ``area``. Without boxes: the keypoints' extent."""
    n = len(people)
    if people.boxes is not None:
        lo, hi = people.boxes[:, :2], people.boxes[:, 2:]
    else:
        lo, hi = people.keypoints[..., :2].min(axis=1), people.keypoints[..., :2].max(axis=1)
    size = np.clip(hi - lo, 1e-6, None)
    return {"image_id": np.asarray([image_id] * n, dtype=object), "score": people.scores,
            "center": (lo + hi) / 2, "scale": size / PIXEL_STD, "area": size.prod(axis=1)}


def prepare(run: Any) -> None:
    """``BenchmarkKind.prepare`` for a whole-image adapter: no flip test, the metric with
    :data:`WHOLE_IMAGE_METRIC` where the run chose nothing, and the conventions."""
    if run.options.get("flip_test"):
        raise ValueError(f"{run.adapter.name}: --flip-test is a top-down crop option; a "
                         "whole-image model runs without it")
    given, spec = getattr(run.adapter, "num_keypoints", None), run.source.spec
    if given is not None and int(given) != spec.num_keypoints:  # before any cell, not inside one
        raise ValueError(f"{run.adapter.name}: predicts {int(given)} keypoints; dataset "
                         f"{run.source.name} ({spec.name}) has {spec.num_keypoints}")
    run.state["flip"] = False
    run.state["images"] = image_records(run.source)
    metric = run.source.make_metric()  # the dataset's sigmas, area rule, AP(E/M/H)
    given = {k for k, v in (run.data.metric_options or {}).items() if v is not None}
    for key, value in WHOLE_IMAGE_METRIC.items():
        if key not in given:  # validated values of the metric's own choices
            setattr(metric, key, value)
    run.state["metric"] = metric
    run.state["conventions"] = {
        **run.adapter.conventions(), "boxes": "none (the model's own people)",
        "flip_test": False, "weights_sha256": run.fingerprint, "seed": int(run.images.seed),
        "corruption_source": run.images.description, "metric": run.source.metric_name,
        "metric_settings": getattr(metric, "conventions", {}),
        "num_images": len(run.state["images"])}


def evaluate(run: Any, cells: Sequence[Cell]) -> list[dict]:
    """``BenchmarkKind.evaluate`` for a whole-image adapter."""
    return evaluate_whole_image_cells(
        run.adapter, run.source, run.state["images"], cells, run.folder, run.images,
        metric=run.state["metric"], conventions=run.state["conventions"],
        batch_size=run.options["batch_size"], workers=run.options["workers"],
        progress=run.progress, predictions_dir=run.folder.path / "predictions"
        if run.options["save_predictions"] else None)


def _batches(cells: Sequence[Cell], records: list, source: Any, images: CellImages,
             batch_size: int, workers: int) -> Iterator[dict]:
    from robustpose.utils.processes import loader_worker_options

    stream = WholeImageStream(cells, records, source.spec, images, source.image_root)
    return iter(DataLoader(stream, batch_sampler=CellBatches(len(cells), len(records),
                                                            batch_size),
                           num_workers=max(0, int(workers)), collate_fn=_collate,
                           prefetch_factor=2 if workers > 0 else None,
                           **loader_worker_options(workers)))


def evaluate_whole_image_cells(adapter: Any, source: Any, records: list, cells: Sequence[Cell],
                               store: Any, images: CellImages = CellImages(), *, metric: Any,
                               conventions: dict, batch_size: int = 8, workers: int = 2,
                               progress: bool = True,
                               predictions_dir: Path | None = None) -> list[dict]:
    """Evaluate ``cells`` in order (every image of ``records`` whole through
    ``adapter.predict_image``), appending one record per finished cell to ``store``; the
    record is the top-down runner's (:func:`~robustpose.benchmarking.runner.cell_record`).
    A cell in which no image was read is not stored; a ValueError names it at the end."""
    for cell in cells:  # e.g. a box perturbation: moves top-down crops, never pixels
        if not cell.is_clean and images.transform(cell, source.image_root) is None:
            raise ValueError(f"cell {cell.label}: changes no pixels (it moves the person boxes "
                             f"of a top-down run); {adapter.name} is a whole-image model")
    written: list[dict] = []
    empty: list[str] = []
    current, skipped, seen, read, started = None, [], 0, 0, time.perf_counter()
    for batch in (_batches(cells, records, source, images, batch_size, workers)
                  if cells else ()):
        index = batch["cell"]
        if index != current:
            current, skipped, seen, read = index, [], 0, 0
            metric.reset()
            started = time.perf_counter()
        skipped.extend(batch["skipped"])
        for position, image in batch["images"]:
            people = adapter.predict_image(image)
            if len(people):
                metric.accumulate(people.keypoints, people_meta(people,
                                                                records[position].image_id))
            read += 1
        seen += batch["count"]
        if seen < len(records):
            continue
        cell = cells[index]
        if not read:  # every image of the cell failed: not a result
            path, problem = sorted(skipped)[0] if skipped else ("-", "no image")
            empty.append(f"{cell.label} (e.g. {path}: {problem})")
            continue
        record = cell_record(cell, metric, source, adapter.name, skipped,
                             time.perf_counter() - started, conventions)
        if predictions_dir is not None:
            metric.write_predictions(predictions_dir / f"{cell.corruption}-{cell.severity}.json")
        store.append(record)
        written.append(record)
        value = record.get(source.metric_name)  # one line per cell, as the top-down runner
        shown = "-" if value is None else f"{source.metric_scale * value:.1f}"
        print(f"[{len(written):>3}/{len(cells)}] {cell.label:<24} {source.metric_name} "
              f"{shown:>5}  ({record['elapsed_s']:.1f} s, {read} images"
              + (f", {len(record['skipped_images'])} skipped)" if skipped else ")"), flush=True)
    if empty:
        raise ValueError(f"{len(empty)} cell(s) in which every image was skipped, not stored "
                         f"as results: {'; '.join(empty[:3])}" + (" ..." if len(empty) > 3 else ""))
    return written
