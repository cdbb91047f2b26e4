"""``robustpose.benchmark(...)``: the Python API behind ``robustpose benchmark``,
and the benchmark's run kind (:class:`BenchmarkKind`, run by ``run_layer.execute``)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

from robustpose.benchmarking.cells import (Cell, build_cells, parse_corruptions,
                                           parse_severities, shard_from_env)
from robustpose.benchmarking.run_folder import RunFolder, finalize_run
from robustpose.benchmarking.run_layer import (DataChoice, ModelChoice, RunContext,
                                               default_run_dir, execute, register_kind,
                                               weights_fingerprint)
from robustpose.benchmarking.runner import evaluate_cells
from robustpose.benchmarking.sources import DataSource
from robustpose.benchmarking.stream import CellImages
from robustpose.benchmarking.summary import format_table
from robustpose.benchmarking import whole_image
from robustpose.models.whole_image import is_whole_image

__all__ = ["run_benchmark", "finalize_run", "default_run_dir", "weights_fingerprint",
           "run_conventions", "BenchmarkKind", "BENCHMARK"]


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
    from_env = shard is None and shard_from_env() is not None
    options = {"corruptions": corruptions, "severities": severities, "flip_test": flip_test,
               "detections": detections, "batch_size": batch_size, "workers": workers,
               "save_predictions": save_predictions, "print_table": print_table,
               "from_env": from_env}
    return execute(BENCHMARK, ModelChoice(model, checkpoint, config, onnx, onnx_spec,
                                          input_size, num_joints, extra, adapter_options,
                                          model_identity, name),
                   DataChoice(dataset, data_root, annotations, detections, max_images, spec,
                              {"score_mode": score_mode, "nms_mode": nms_mode,
                               "keypoint_score_thr": keypoint_score_thr, "nms_thr": nms_thr,
                               "area_rule": area_rule}, corrupted_root, corrupted_layout, seed),
                   out, shard or shard_from_env(), options=options, device=device,
                   progress=progress, plots=plots)


class BenchmarkKind:
    """The corruption benchmark as a run kind: cells (corruption, severity), one metric
    (OKS AP / PCKh / PCK) per cell, the robustness card (``summary.json``, tables, plots)."""

    name = "benchmark"
    checks_keypoints = True

    def check(self, options: dict) -> None:
        options["names"] = parse_corruptions(options["corruptions"])
        options["sevs"] = parse_severities(options["severities"])

    def title(self, run: RunContext) -> str:
        return "benchmark"

    def default_dir(self, run: RunContext, slug: str) -> Path:
        return Path("runs") / "benchmark" / slug

    def prepare(self, run: RunContext) -> None:
        if is_whole_image(run.adapter):  # image in, people out: benchmarking/whole_image.py
            return whole_image.prepare(run)
        flip_test = run.options["flip_test"]
        run.state["flip"] = run.adapter.default_flip_test if flip_test is None else bool(flip_test)
        run.state["metric"] = run.source.make_metric()  # reads the ground truth once
        run.state["conventions"] = run_conventions(run.adapter, run.source, run.state["metric"],
                                                   run.images, run.state["flip"], run.fingerprint)

    def cells(self, run: RunContext) -> list[Cell]:
        return build_cells(run.options["names"], run.options["sevs"])

    def settings(self, run: RunContext) -> dict:
        source, detections = run.source, run.options["detections"]
        return {"model": run.adapter.name, "dataset": source.name, "metric": source.metric_name,
                "metric_scale": source.metric_scale, "conventions": run.state["conventions"],
                "corruptions": run.options["names"], "severities": run.options["sevs"],
                "model_info": run.model_info, "num_people": len(source.records),
                "dropped_annotations": source.dropped,
                "annotation_file": str(source.annotation_file),
                # hashed by the claim: a file of the same name with other boxes is refused
                "input_files": {"detections": None if detections is None else str(detections)}}

    def requested(self, run: RunContext) -> dict:
        """mPC over every run's request: run.json's lists grow with each rerun's."""
        return {"corruptions": run.options["names"], "severities": run.options["sevs"]}

    def evaluate(self, run: RunContext, cells: Sequence[Cell]) -> list[dict]:
        if is_whole_image(run.adapter):  # image in, people out: benchmarking/whole_image.py
            return whole_image.evaluate(run, cells)
        folder = run.folder
        return evaluate_cells(run.adapter, run.source, cells, folder, run.images,
                              flip_test=run.state["flip"], batch_size=run.options["batch_size"],
                              workers=run.options["workers"], progress=run.progress,
                              predictions_dir=folder.path / "predictions"
                              if run.options["save_predictions"] else None,
                              conventions=run.state["conventions"], metric=run.state["metric"])

    def finish(self, run: RunContext, cells: Sequence[Cell]) -> dict:
        """The card; the reports once every cell of every shard is done (under torchrun
        after a barrier, written by rank 0)."""
        folder, shard, from_env = run.folder, run.shard, run.options["from_env"]
        if from_env:
            _wait_for_all_ranks()
        if shard:
            folder.refresh()  # the other shards' stores may have grown meanwhile
        complete = folder.is_complete(cells)
        writer = not from_env or shard[0] == 0  # under torchrun rank 0 writes the reports
        card = folder.finalize(plots=run.plots) if complete and writer else folder.card()
        if not complete:
            card["incomplete"] = True
            if run.progress:
                print(f"robustpose benchmark: shard finished; {len(card['cells']['missing'])} "
                      f"cell(s) of other shards still missing. Run `robustpose report "
                      f"{folder.path}` once every shard is done.", file=sys.stderr)
        card["run_dir"] = str(folder.path)
        card["printed"] = bool(run.options["print_table"] and (writer or not complete))
        if card["printed"]:
            print(format_table(card))
        return card

    def write_reports(self, folder: Any, plots: bool = True) -> dict:
        return folder.finalize(plots=plots)

    def report(self, run_dir: Any, plots: bool = True) -> int:
        """``robustpose report``: rebuild and print the card of one benchmark folder."""
        card = self.write_reports(RunFolder(run_dir), plots=plots)
        print(format_table(card))
        print(f"rebuilt: {run_dir}/summary.json, table.md, table.csv"
              + ("" if not plots else ", per_corruption.png, per_severity.png, heatmap.png"))
        return 0

    key_to_json = staticmethod(Cell.to_json)
    key_from_json = staticmethod(Cell.from_json)


BENCHMARK = register_kind(BenchmarkKind())
