"""``robustpose.benchmark(...)``: the Python API behind ``robustpose benchmark``."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from robustpose.benchmarking.cells import parse_corruptions, parse_severities, shard_from_env
from robustpose.benchmarking.loading import resolve_adapter
from robustpose.benchmarking.runner import (RUN_FILE, check_run_settings, done_cell_keys,
                                            evaluate_cells, plan_cells, read_records,
                                            store_path)
from robustpose.benchmarking.sources import resolve_source
from robustpose.benchmarking.summary import build_card, format_table, write_card


def default_run_dir(model_name: str, dataset: str, weights_sha256: str | None = None) -> Path:
    """``runs/benchmark/<model>[-<weights hash, 8 hex>]__<dataset>``: other weights under the
    same model name (a retrained or upgraded bundled model) get their own folder."""
    model = f"{model_name}-{weights_sha256[:8]}" if weights_sha256 else model_name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}__{dataset}").strip("_")
    return Path("runs") / "benchmark" / slug


def weights_fingerprint(model_info: dict) -> str | None:
    """SHA-256 (first 16 hex digits) of the model's weights file, when it came from one."""
    import hashlib

    path = model_info.get("checkpoint") or model_info.get("onnx")
    if not path or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def finalize_run(run_dir: str | os.PathLike, plots: bool = True) -> dict:
    """Rebuild ``summary.json``, ``table.md``, ``table.csv`` and the PNGs from the store."""
    import json

    from robustpose.reports import write_plots, write_tables

    run_dir = Path(run_dir)
    settings_path = run_dir / RUN_FILE
    if not settings_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a benchmark run folder (no {RUN_FILE})")
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    records = [r for r in read_records(run_dir)
               if r["model"] == settings["model"] and r["dataset"] == settings["dataset"]]
    if not records:
        raise ValueError(f"{run_dir}: no finished cell in the results store yet")
    card = build_card(records, settings)
    write_card(card, run_dir)
    write_tables(card, run_dir)
    if plots:
        write_plots(card, run_dir)
    return card


def _wait_for_all_ranks() -> None:
    """Under torchrun: a barrier (gloo) so the last rank sees every shard's cells.

    Without a rendezvous (no MASTER_ADDR) the shards simply finish on their own; the one
    that completes the run writes the reports."""
    import torch.distributed as dist

    if not dist.is_available() or "MASTER_ADDR" not in os.environ:
        return
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo")
    try:
        dist.barrier()
    finally:
        if created:
            dist.destroy_process_group()


def run_benchmark(model: Any = None, *, checkpoint: str | os.PathLike | None = None,
                  config: str | os.PathLike | None = None,
                  onnx: str | os.PathLike | None = None,
                  onnx_spec: str | os.PathLike | None = None,
                  dataset: str = "synth", data_root: str | os.PathLike | None = None,
                  annotations: str | os.PathLike | None = None,
                  detections: str | os.PathLike | None = None,
                  corrupted_root: str | os.PathLike | None = None,
                  corrupted_layout: str = "robustpose",
                  corruptions: str | Sequence[str] = "benchmark",
                  severities: str | Sequence[int] = "1-5", flip_test: bool | None = None,
                  batch_size: int = 32, workers: int = 2, device: str = "cpu", seed: int = 0,
                  out: str | os.PathLike | None = None, shard: tuple[int, int] | None = None,
                  save_predictions: bool = False, max_images: int | None = None,
                  input_size: Any = None, num_joints: int | None = None,
                  name: str | None = None, plots: bool = True,
                  progress: bool = True, print_table: bool = False,
                  **adapter_options: Any) -> dict:
    """Run a corruption benchmark; returns the robustness card (also in ``out/summary.json``).

    ``model`` is a registry name (with ``checkpoint``), a PoseModel, an adapter or any
    callable ``crops (N,3,H,W) float [0,1] RGB -> heatmaps (N,K,h,w) or keypoints
    (N,K,2|3) in crop pixels`` (``input_size=(w, h)``, ``padding``, ``output_kind``,
    ``keypoint_index_map`` and ``flip_test`` describe a callable). With no model: the
    bundled SynthPose model. ``shard=(i, n)`` (or torchrun's RANK/WORLD_SIZE) evaluates
    every n-th cell; the shard that completes the run writes the reports.
    A shard whose run is not complete yet returns the card of the cells done so far.
    """
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():  # before loading
        raise ValueError("--device cuda given but torch sees no CUDA device")
    if str(device) == "cuda" and os.environ.get("LOCAL_RANK"):  # torchrun: one GPU per rank
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    if num_joints is None:  # registry models are built for the dataset's keypoints
        num_joints = {"mpii": 16, "crowdpose": 14}.get(dataset, 17)
    adapter, model_info = resolve_adapter(model, checkpoint, config, onnx, onnx_spec,
                                          device=device, input_size=input_size,
                                          num_joints=num_joints,
                                          adapter_options=adapter_options)
    if name:
        adapter.name = name
    names = parse_corruptions(corruptions)
    sevs = parse_severities(severities)
    from_env = shard is None and shard_from_env() is not None
    shard = shard or shard_from_env()
    out_dir = Path(out) if out is not None else None
    subset_dir = (out_dir or Path("runs") / "benchmark") / "subsets"
    source = resolve_source(dataset, data_root, annotations, detections,
                            input_size=adapter.input_size, padding=adapter.padding,
                            max_images=max_images, subset_dir=subset_dir, seed=seed)
    fingerprint = weights_fingerprint(model_info)
    out_dir = out_dir or default_run_dir(adapter.name, source.name, fingerprint)
    flip = adapter.default_flip_test if flip_test is None else bool(flip_test)
    metric = source.make_metric()  # reads the ground truth once, for every cell
    conventions = {"boxes": source.boxes, "flip_test": flip,
                   "shift": getattr(adapter, "shift", None), "padding": adapter.padding,
                   "post_process": getattr(adapter, "post_process", None),
                   "dark_kernel": getattr(adapter, "dark_kernel", None)
                   if getattr(adapter, "post_process", None) == "dark" else None,
                   "weights_sha256": fingerprint,
                   "input_size": list(adapter.input_size), "seed": int(seed),
                   "corruption_source": "on the fly (full image, before cropping)"
                   if corrupted_root is None else
                   f"-C folders ({corrupted_layout} layout): {corrupted_root}",
                   "metric": source.metric_name,
                   "metric_settings": getattr(metric, "conventions", {})}
    settings = {"model": adapter.name, "dataset": source.name, "metric": source.metric_name,
                "metric_scale": source.metric_scale,
                "conventions": conventions, "corruptions": names, "severities": sevs,
                "model_info": model_info, "num_people": len(source.records),
                "annotation_file": str(source.annotation_file)}
    check_run_settings(out_dir, settings)
    done = done_cell_keys(out_dir, adapter.name, source.name)
    all_cells, todo = plan_cells(names, sevs, shard, done)
    if progress:
        where = f" shard {shard[0]}/{shard[1]}" if shard else ""
        print(f"robustpose benchmark: {adapter.name} on {source.name} "
              f"({len(source.records)} people){where}: {len(todo)} cell(s) to run, "
              f"{len(done)} done already -> {out_dir}", file=sys.stderr)
    from robustpose.evaluation import ResultsStore

    store = ResultsStore(store_path(out_dir, shard))
    predictions_dir = out_dir / "predictions" if save_predictions else None
    evaluate_cells(adapter, source, todo, store, model_name=adapter.name, flip_test=flip,
                   seed=seed, batch_size=batch_size, workers=workers,
                   corrupted_root=Path(corrupted_root) if corrupted_root else None,
                   corrupted_layout=corrupted_layout,
                   predictions_dir=predictions_dir, progress=progress,
                   conventions=conventions, metric=metric)
    if from_env:
        _wait_for_all_ranks()
    finished = done_cell_keys(out_dir, adapter.name, source.name)
    complete = all((c.corruption, c.severity) in finished for c in all_cells)
    writer = not from_env or shard[0] == 0  # under torchrun rank 0 writes the reports
    if complete and writer:
        card = finalize_run(out_dir, plots=plots)
    elif complete:
        card = build_card(read_records(out_dir), settings)
        print_table = False
    else:
        card = build_card(read_records(out_dir), settings)
        card["incomplete"] = True
        if progress:
            print(f"robustpose benchmark: shard finished; {len(card['cells']['missing'])} "
                  f"cell(s) of other shards still missing. Run `robustpose report {out_dir}` "
                  "once every shard is done.", file=sys.stderr)
    card["run_dir"] = str(out_dir)
    card["printed"] = bool(print_table)
    if print_table:
        print(format_table(card))
    return card
