"""The benchmark loop: cells -> DataLoader stream -> adapter -> metric -> results store.

The records go to a :class:`~robustpose.benchmarking.run_folder.RunFolder` (or any object
with ``append(record)``), one per finished cell, only once the cell is complete.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from robustpose.benchmarking.cells import Cell
from robustpose.benchmarking.stream import CellImages, cell_loader
from robustpose.utils.progress import show_progress


def evaluate_cells(adapter: Any, source: Any, cells: Sequence[Cell], store: Any,
                   images: CellImages = CellImages(), *, flip_test: bool,
                   batch_size: int = 32, workers: int = 2,
                   predictions_dir: Path | None = None, progress: bool = True,
                   conventions: dict | None = None, metric: Any = None) -> list[dict]:
    """Evaluate ``cells`` in order, appending one record per finished cell to ``store``.

    ``images`` says how each cell's images are made (seeded on-the-fly corruption or -C
    folders). ``metric`` (default ``source.make_metric()``) is reset before each cell.
    Records carry ``adapter.name`` as the model. Bars are drawn when ``progress`` and
    stderr is a terminal; the one line per finished cell is printed either way.

    A cell in which no person was scored (every image skipped: an empty -C folder,
    unreadable files) is not a result: it is not stored (a rerun computes it again), and
    once the other cells are done a ValueError names it."""
    if not cells:
        return []
    model_name = adapter.name
    loader = cell_loader(cells, source, adapter.input_size, images, batch_size, workers)
    bars = show_progress(progress)
    cell_bar = tqdm(total=len(cells), desc="cells", unit="cell", disable=not bars,
                    position=0, dynamic_ncols=True)
    image_bar = tqdm(total=len(source.records), desc=cells[0].label, unit="person",
                     disable=not bars, position=1, leave=False, dynamic_ncols=True)
    written: list[dict] = []
    if metric is None:
        metric = source.make_metric()  # the ground truth is read once; reset() between cells
    current, skipped, started, seen, scored = None, [], time.perf_counter(), 0, 0
    empty: list[str] = []  # cells with no scored person: not results
    for batch in loader:
        index = batch["cell"]
        if index != current:
            current, skipped, seen, scored = index, [], 0, 0
            metric.reset()
            started = time.perf_counter()
            image_bar.reset(total=len(source.records))
            image_bar.set_description(cells[index].label)
        skipped.extend(batch["skipped"])
        if batch["image"] is not None:
            keypoints = adapter.predict(batch["image"], batch["meta"], source.spec, flip_test)
            metric.accumulate(keypoints, batch["meta"])
            scored += len(batch["image"])
        seen += batch["count"]
        image_bar.update(batch["count"])
        if seen >= len(source.records) and not scored:  # the cell's last batch, nothing read
            path, problem = sorted(skipped)[0] if skipped else ("-", "no image")
            empty.append(f"{cells[index].label} (e.g. {path}: {problem})")
            cell_bar.update(1)
        elif seen >= len(source.records):  # the cell's last batch
            cell = cells[index]
            record = cell_record(cell, metric, source, model_name, skipped,
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
            sys.stdout.flush()  # a redirected log shows each cell when it is done
    image_bar.close()
    cell_bar.close()
    if empty:
        raise ValueError(f"{len(empty)} cell(s) in which every image was skipped, not stored "
                         f"as results: {'; '.join(empty[:3])}" + (" ..." if len(empty) > 3 else ""))
    return written


def cell_record(cell: Cell, metric: Any, source: Any, model_name: str,
                 skipped: list, seconds: float, conventions: dict) -> dict:
    """One finished cell's record (the whole-image benchmark writes the same)."""
    stats = {k: float(v) for k, v in metric.stats().items()
             if isinstance(v, (int, float, np.floating, np.integer))}
    if source.metric_name not in stats:
        raise ValueError(f"the {type(metric).__name__} gave no {source.metric_name!r} "
                         f"(has {', '.join(stats)})")
    unique = sorted({(path, problem) for path, problem in skipped})
    return {"model": model_name, "dataset": source.name, **cell.to_json(),
            "metric": source.metric_name,
            source.metric_name: stats.get(source.metric_name), "metrics": stats,
            "num_people": len(source.records), "elapsed_s": round(seconds, 3),
            "skipped_images": [{"path": p, "problem": q} for p, q in unique],
            "conventions": conventions}
