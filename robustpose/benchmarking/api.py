"""``robustpose.benchmark(...)``: the Python API behind ``robustpose benchmark``."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from robustpose.benchmarking.cells import (build_cells, parse_corruptions, parse_severities,
                                           shard_from_env)
from robustpose.benchmarking.loading import check_keypoint_count, resolve_adapter
from robustpose.benchmarking.run_folder import RunFolder, finalize_run
from robustpose.benchmarking.runner import evaluate_cells
from robustpose.benchmarking.sources import DataSource, resolve_source
from robustpose.benchmarking.stream import CellImages
from robustpose.benchmarking.summary import format_table

__all__ = ["run_benchmark", "finalize_run", "default_run_dir", "weights_fingerprint",
           "run_conventions"]


def default_run_dir(model_name: str, dataset: str, weights_sha256: str | None = None) -> Path:
    """``runs/benchmark/<model>[-<weights hash, 8 hex>]__<dataset>``: other weights under the
    same model name (a retrained or upgraded bundled model) get their own folder."""
    model = f"{model_name}-{weights_sha256[:8]}" if weights_sha256 else model_name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}__{dataset}").strip("_")
    return Path("runs") / "benchmark" / slug


def weights_fingerprint(model_info: dict) -> str | None:
    """SHA-256 (first 16 hex digits) of the model's weights file, when it came from one:
    the hash the model's identity already took at load, else the file's."""
    from robustpose.benchmarking.identity import file_sha256

    known = (model_info.get("identity") or {}).get("weights")
    if known:
        return known
    path = model_info.get("checkpoint") or model_info.get("onnx")
    if not path or not Path(path).is_file():
        return None
    return file_sha256(path)


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


def _device_for(device: str) -> str:
    """Refuse CUDA without a GPU (before any model is loaded); torchrun: one GPU per rank."""
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda given but torch sees no CUDA device")
    if str(device) == "cuda" and os.environ.get("LOCAL_RANK"):
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


#: what ``**adapter_options`` may hold: the options of a callable / PoseModel adapter
ADAPTER_OPTIONS = ("padding", "output_kind", "keypoint_index_map", "shift", "flip_shift",
                   "post_process", "refine", "dark_kernel", "inference", "codec")


def _check_adapter_options(options: dict) -> None:
    """A mistyped keyword of ``robustpose.benchmark`` (``corruptons=``) lands in
    ``**adapter_options``: refuse it naming the keyword and the nearest valid one, instead
    of an internal adapter class's TypeError (or, for a registry model, silence)."""
    import difflib
    import inspect

    known = [p for p in inspect.signature(run_benchmark).parameters
             if p not in ("model", "adapter_options")] + list(ADAPTER_OPTIONS)
    for key in options:
        if key not in ADAPTER_OPTIONS:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise TypeError(f"robustpose.benchmark() got an unexpected keyword argument "
                            f"{key!r}{hint}")


def run_conventions(adapter: Any, source: DataSource, metric: Any, images: CellImages,
                    flip_test: bool, weights_sha256: str | None) -> dict:
    """How the run's numbers were made (``run.json``; a rerun must agree on all of it):
    the decoding (the adapter's InferenceSetting when it has one), boxes, flip test, the
    weights' hash, the corruption source and seed, and the metric's settings."""
    inference = getattr(adapter, "inference", None)
    if inference is not None:
        decoding = inference.to_dict()
    else:  # a user's own adapter: what the adapter interface guarantees
        decoding = {"input_size": list(adapter.input_size), "padding": adapter.padding}
    return {**decoding, "boxes": source.boxes, "flip_test": bool(flip_test),
            "weights_sha256": weights_sha256, "seed": int(images.seed),
            "corruption_source": images.description, "metric": source.metric_name,
            "metric_settings": getattr(metric, "conventions", {})}


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
                  score_mode: str | None = None, nms_mode: str | None = None,
                  keypoint_score_thr: float | None = None, nms_thr: float | None = None,
                  area_rule: str | None = None,
                  batch_size: int = 32, workers: int = 2, device: str = "cpu", seed: int = 0,
                  out: str | os.PathLike | None = None, shard: tuple[int, int] | None = None,
                  save_predictions: bool = False, max_images: int | None = None,
                  input_size: Any = None, num_joints: int | None = None,
                  extra: Any = None, name: str | None = None, plots: bool = True,
                  spec: str | None = None, model_identity: str | None = None,
                  progress: bool = True, print_table: bool = False,
                  **adapter_options: Any) -> dict:
    """Run a corruption benchmark; returns the robustness card (also in ``out/summary.json``).

    ``model`` is a registry name (with ``checkpoint``), a PoseModel, an adapter or any
    callable ``crops (N,3,H,W) float [0,1] RGB -> heatmaps (N,K,h,w) or keypoints
    (N,K,2|3) in crop pixels`` (``input_size=(w, h)``, ``padding``, ``output_kind``,
    ``keypoint_index_map`` and ``flip_test`` describe a callable). With no model: the
    bundled SynthPose model. ``extra`` (with a registry name): the official ``MODEL.EXTRA``
    block (dict, YAML/JSON text) or an official experiment YAML's path, whose
    ``MODEL.IMAGE_SIZE`` / ``NUM_JOINTS`` are used too. ``score_mode`` / ``nms_mode`` / ``keypoint_score_thr`` /
    ``nms_thr`` set the OKS AP metric (mmpose CocoMetric names; ``None``: HRNet's
    bbox_keypoint / oks_nms / 0.2 / 0.9); ``area_rule`` the GT area scaling OKS (json |
    bbox | crowdpose; ``None``: the set's own rule); ``spec`` the keypoint preset of a
    COCO-format set (``None``: picked from the json, docs/data.md). ``shard=(i, n)`` (or torchrun's
    RANK/WORLD_SIZE) evaluates every n-th cell; the shard that completes the run writes
    the reports. A shard whose run is not complete yet returns the card of the cells done
    so far. ``model_identity``: a version string of a Python callable ``model`` (which has
    no content to hash); without it a folder holding a callable's cells refuses a rerun.
    """
    _check_adapter_options(adapter_options)
    device = _device_for(device)
    if num_joints is None:  # registry models are built for the dataset's keypoints
        num_joints = {"mpii": 16, "crowdpose": 14}.get(dataset, 17)
    adapter, model_info = resolve_adapter(model, checkpoint, config, onnx, onnx_spec,
                                          device=device, input_size=input_size,
                                          num_joints=num_joints,
                                          adapter_options=adapter_options, extra=extra,
                                          model_identity=model_identity)
    if name:
        adapter.name = name
    names, sevs = parse_corruptions(corruptions), parse_severities(severities)
    cells = build_cells(names, sevs)
    from_env = shard is None and shard_from_env() is not None
    shard = shard or shard_from_env()
    source = resolve_source(
        dataset, data_root, annotations, detections, input_size=adapter.input_size,
        padding=adapter.padding, max_images=max_images,
        subset_dir=Path(out if out is not None else Path("runs") / "benchmark") / "subsets",
        metric_options={"score_mode": score_mode, "nms_mode": nms_mode,
                        "keypoint_score_thr": keypoint_score_thr, "nms_thr": nms_thr,
                        "area_rule": area_rule}, spec=spec)
    check_keypoint_count(model_info, source.spec)
    fingerprint = weights_fingerprint(model_info)
    folder = RunFolder(out if out is not None else
                       default_run_dir(adapter.name, source.name, fingerprint))
    images = CellImages(int(seed), corrupted_root, corrupted_layout)
    flip = adapter.default_flip_test if flip_test is None else bool(flip_test)
    metric = source.make_metric()  # reads the ground truth once, for every cell
    conventions = run_conventions(adapter, source, metric, images, flip, fingerprint)
    folder.claim({"model": adapter.name, "dataset": source.name, "metric": source.metric_name,
                  "metric_scale": source.metric_scale, "conventions": conventions,
                  "corruptions": names, "severities": sevs,
                  "model_info": model_info, "num_people": len(source.records),
                  "dropped_annotations": source.dropped,
                  "annotation_file": str(source.annotation_file),
                  # hashed by the claim: a file of the same name with other boxes is refused
                  "input_files": {"detections": None if detections is None
                                  else str(detections)}}, shard)
    folder.add_requested(corruptions=names, severities=sevs)  # mPC over every run's request
    try:  # the claim locked this shard's store: released once its cells are written
        todo = folder.todo(cells, shard)
        if progress:
            where = f" shard {shard[0]}/{shard[1]}" if shard else ""
            print(f"robustpose benchmark: {adapter.name} on {source.name} "
                  f"({len(source.records)} people){where}: {len(todo)} cell(s) to run, "
                  f"{len(folder.done_keys())} done already -> {folder.path}", file=sys.stderr)
        evaluate_cells(adapter, source, todo, folder, images, flip_test=flip,
                       batch_size=batch_size, workers=workers, progress=progress,
                       predictions_dir=folder.path / "predictions" if save_predictions else None,
                       conventions=conventions, metric=metric)
    finally:
        folder.close()
    if from_env:
        _wait_for_all_ranks()
    if shard:
        folder.refresh()  # the other shards' stores may have grown meanwhile
    complete = folder.is_complete(cells)
    writer = not from_env or shard[0] == 0  # under torchrun rank 0 writes the reports
    card = folder.finalize(plots=plots) if complete and writer else folder.card()
    if not complete:
        card["incomplete"] = True
        if progress:
            print(f"robustpose benchmark: shard finished; {len(card['cells']['missing'])} "
                  f"cell(s) of other shards still missing. Run `robustpose report "
                  f"{folder.path}` once every shard is done.", file=sys.stderr)
    card["run_dir"] = str(folder.path)
    card["printed"] = bool(print_table and (writer or not complete))
    if card["printed"]:
        print(format_table(card))
    return card
