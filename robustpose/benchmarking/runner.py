"""The benchmark loop: cells -> DataLoader stream -> adapter -> metric -> results store.

A run directory holds ``run.json`` (the run's settings; a rerun with other settings is
refused), one results store per shard (``results.jsonl``, or ``results.shard-I-of-N.jsonl``)
with one record per finished cell, and the reports. A rerun skips every cell already in
any store of the directory, so a killed run resumes where it stopped; a cell interrupted
half-way is simply evaluated again (records are appended only once a cell is complete).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from robustpose.benchmarking.cells import Cell, build_cells, select_shard
from robustpose.benchmarking.stream import CellBatches, CellStream, collate_cell_batch
from robustpose.utils.io import atomic_write_text

RUN_FILE = "run.json"


def store_path(run_dir: Path, shard: tuple[int, int] | None) -> Path:
    if shard is None or shard[1] == 1:
        return run_dir / "results.jsonl"
    return run_dir / f"results.shard-{shard[0]}-of-{shard[1]}.jsonl"


def store_paths(run_dir: Path) -> list[Path]:
    """Every results store in ``run_dir`` (all shards)."""
    return sorted(Path(run_dir).glob("results*.jsonl"))


def read_records(run_dir: Path) -> list[dict]:
    """All cell records of a run, every shard merged, one per cell."""
    from robustpose.evaluation import ResultsStore

    paths = store_paths(run_dir)
    if not paths:
        return []
    return ResultsStore.merge(paths)  # one record per cell; conflicting duplicates raise


def check_run_settings(run_dir: Path, settings: dict) -> None:
    """Write ``run.json`` on the first run; refuse a rerun whose settings differ."""
    path = run_dir / RUN_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ValueError(f"{path}: unreadable run settings; use another --out") from None
        keys = ("model", "dataset", "conventions")
        diff = [k for k in keys if old.get(k) != settings.get(k)]
        if diff:
            raise ValueError(f"{run_dir}: holds a run with other {', '.join(diff)} "
                             f"({old.get(diff[0])!r}); use another --out")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True))


def evaluate_cells(adapter: Any, source: Any, cells: Sequence[Cell], store: Any, *,
                   model_name: str, flip_test: bool, seed: int = 0, batch_size: int = 32,
                   workers: int = 2, corrupted_root: Path | None = None,
                   corrupted_layout: str = "robustpose",
                   predictions_dir: Path | None = None, progress: bool = True,
                   conventions: dict | None = None, metric: Any = None) -> list[dict]:
    """Evaluate ``cells`` in order, appending one record per finished cell to ``store``.

    ``metric`` (default ``source.make_metric()``) is reset before each cell."""
    if not cells:
        return []
    stream = CellStream(cells, source.records, source.spec, adapter.input_size, seed=seed,
                        image_root=source.image_root, corrupted_root=corrupted_root,
                        corrupted_layout=corrupted_layout)
    loader = DataLoader(stream, batch_sampler=CellBatches(len(cells), len(source.records),
                                                          batch_size),
                        num_workers=max(0, int(workers)), collate_fn=collate_cell_batch,
                        prefetch_factor=2 if workers > 0 else None)
    cell_bar = tqdm(total=len(cells), desc="cells", unit="cell", disable=not progress,
                    position=0, dynamic_ncols=True)
    image_bar = tqdm(total=len(source.records), desc=cells[0].label, unit="person",
                     disable=not progress, position=1, leave=False, dynamic_ncols=True)
    written: list[dict] = []
    if metric is None:
        metric = source.make_metric()  # the ground truth is read once; reset() between cells
    current, skipped, started, seen = None, [], time.perf_counter(), 0
    for batch in loader:
        index = batch["cell"]
        if index != current:
            current, skipped, seen = index, [], 0
            metric.reset()
            started = time.perf_counter()
            image_bar.reset(total=len(source.records))
            image_bar.set_description(cells[index].label)
        skipped.extend(batch["skipped"])
        if batch["image"] is not None:
            keypoints = adapter.predict(batch["image"], batch["meta"], source.spec, flip_test)
            metric.accumulate(keypoints, batch["meta"])
        seen += batch["count"]
        image_bar.update(batch["count"])
        if seen >= len(source.records):  # the cell's last batch
            cell = cells[index]
            record = _cell_record(cell, metric, source, model_name, skipped,
                                  time.perf_counter() - started, conventions or {})
            if predictions_dir is not None:
                metric.write_predictions(predictions_dir / f"{cell.corruption}-{cell.severity}.json")
            store.append(record)
            written.append(record)
            cell_bar.update(1)
            value = record.get(source.metric_name)
            shown = "-" if value is None else f"{source.metric_scale * value:.1f}"
            cell_bar.write(f"[{len(written):>3}/{len(cells)}] {cell.label:<24} "
                           f"{source.metric_name} {shown:>5}  ({record['elapsed_s']:.1f} s"
                           + (f", {len(record['skipped_images'])} skipped)" if skipped else ")"))
    image_bar.close()
    cell_bar.close()
    return written


def _cell_record(cell: Cell, metric: Any, source: Any, model_name: str,
                 skipped: list, seconds: float, conventions: dict) -> dict:
    stats = {k: float(v) for k, v in metric.stats().items()
             if isinstance(v, (int, float, np.floating, np.integer))}
    if source.metric_name not in stats:
        raise ValueError(f"the {type(metric).__name__} gave no {source.metric_name!r} "
                         f"(has {', '.join(stats)})")
    unique = sorted({(path, problem) for path, problem in skipped})
    return {"model": model_name, "dataset": source.name, "corruption": cell.corruption,
            "severity": int(cell.severity), "metric": source.metric_name,
            source.metric_name: stats.get(source.metric_name), "metrics": stats,
            "num_people": len(source.records), "elapsed_s": round(seconds, 3),
            "skipped_images": [{"path": p, "problem": q} for p, q in unique],
            "conventions": conventions}


def plan_cells(corruptions: Sequence[str], severities: Sequence[int],
               shard: tuple[int, int] | None, done_keys: set) -> tuple[list[Cell], list[Cell]]:
    """(every cell of the run, this shard's cells still to do)."""
    cells = build_cells(corruptions, severities)
    mine = select_shard(cells, *shard) if shard else cells
    todo = [c for c in mine if (c.corruption, c.severity) not in done_keys]
    return cells, todo


def done_cell_keys(run_dir: Path, model_name: str, dataset: str) -> set:
    return {(r["corruption"], int(r["severity"])) for r in read_records(run_dir)
            if r["model"] == model_name and r["dataset"] == dataset}
