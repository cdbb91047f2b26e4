"""``robustpose stability``: R, RUC, D_n, D_(1)(2), AUC and EPE per (perturbation, severity).

The stability run kind (:class:`StabilityKind`) on the run layer
(:func:`~robustpose.benchmarking.run_layer.execute`): the benchmark's adapters, data
sources and crops/boxes, the same full-image corruption seeded the same way
(:class:`CellImages`, on the fly or -C folders) streamed through :class:`CellStream`, and
the same run folder (run.json, lock, one record per finished cell, resume). The clean cell
runs first in every (re)run: its maxima are the reference every perturbed copy is compared
with; its record is written once.

Each model call is one forward pass without flip test (the metrics are about the model's
own output); the keypoints for AUC/EPE are decoded from the same outputs
(:func:`robustpose.codecs.decode_outputs`), so the run costs its forward passes plus the
top-64 extraction. Metric definitions: :mod:`robustpose.evaluation.stability`; pooling over
cells: :mod:`robustpose.evaluation.stability_pooling`.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from robustpose.benchmarking.cells import Cell, build_cells, parse_corruptions, parse_severities
from robustpose.benchmarking.run_layer import DataChoice, ModelChoice, execute, register_kind
from robustpose.benchmarking.stability_card import (DISTANCES_DIR, distances_file,
                                                    report_stability_folders,
                                                    write_stability_reports)
from robustpose.benchmarking.stream import CellImages, cell_loader
from robustpose.corruptions.selection import GROUPS

#: the paper's perturbation sets: trained on (train10) and held out (heldout5); defined
#: with the corruption groups (robustpose.corruptions.selection), where training reads them
PERTURBATION_SETS: dict[str, tuple[str, ...]] = {name: GROUPS[name] for name in ("train10", "heldout5")}
COMMAND = "stability"


def parse_perturbations(choice: str | Sequence[str]) -> list[str]:
    """``train10`` / ``heldout5`` (the paper's sets), plus anything ``--corruptions``
    accepts (:func:`robustpose.corruptions.parse_corruptions`), comma-separated."""
    parts = [choice] if isinstance(choice, str) else [str(c) for c in choice]
    words = [w.strip() for p in parts for w in p.split(",") if w.strip()]
    if not words:
        raise ValueError(f"no perturbation given in {choice!r}; use train10, heldout5 or "
                         "corruption names")
    names: list[str] = []
    for word in words:
        names.extend(PERTURBATION_SETS.get(word) or parse_corruptions(word))
    return list(dict.fromkeys(names))


def resolve_normalisation(adapter: Any, choice: str = "auto") -> str:
    """D_(1)(2)'s normalisation: ``choice`` unless 'auto', then the adapter's codec's
    ``output_normalisation`` ('softmax' for the ``hdhr`` codec) or 'raw'."""
    if choice not in ("auto", "raw", "softmax"):
        raise ValueError(f"d12_normalisation must be auto, raw or softmax, got {choice!r}")
    if choice != "auto":
        return choice
    return str(getattr(getattr(adapter, "codec", None), "output_normalisation", "raw"))


def resolve_hd_scale(adapter: Any, normalisation: str) -> float | None:
    """The HD region sum ``Z`` of an ``hdhr`` codec for a softmax reading, else None:
    ``D_12_hd = Z * D_12`` puts D_(1)(2) on the HD target's scale (peak 1), the scale of
    the MST loss and of the paper's HDHR values (docs/stable.md)."""
    z = getattr(getattr(adapter, "codec", None), "region_sum", None)
    return float(z) if normalisation == "softmax" and z is not None else None


def model_outputs(adapter: Any, crops: torch.Tensor) -> tuple[str, Any, Any]:
    """One forward pass -> (kind 'heatmaps' | 'coords', outputs in the data set's keypoint
    order (N, K, h, w) tensor or (N, K, 3) crop px, the codec that decodes them)."""
    if not hasattr(adapter, "outputs"):
        raise ValueError(f"robustpose stability needs a registry, ONNX or callable model, not "
                         f"a {type(adapter).__name__} (its raw outputs are not reachable)")
    return adapter.outputs(crops)


def batch_outputs(adapter: Any, crops: torch.Tensor, meta: dict, spec: Any,
                  clean_crops: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """The metric's input for one batch: ``positions`` (heatmap px; coordinate models:
    crop px / 4), ``keypoints`` (image px, decoded from the same outputs), ``heatmaps``
    (or None), ``stride`` (crop px per position unit) and the forward time.

    ``clean_crops``: (centers, scales) (N, 2) of these people's CLEAN crops, for a box
    perturbation: its crops differ from the clean ones, so a maximum at the same heatmap
    pixel is a different image point. The positions are then re-expressed in the clean
    crop's heatmap px (:func:`~robustpose.data.box_perturbations.reframe_points`: the same
    image point, on the clean crop's grid), so R / RUC measure how far the keypoint moved
    in the image, in the same unit as for a pixel corruption (heatmap px of the clean crop
    = image px x heatmap width / clean crop width). D_n and D_(1)(2) are per map and stay
    as they are."""
    from robustpose.codecs import decode_outputs

    started = time.perf_counter()
    kind, out, codec = model_outputs(adapter, crops)
    forward_s = time.perf_counter() - started
    setting = adapter.inference.replace(flip_test=False)
    w, h = adapter.input_size
    if kind == "heatmaps":
        positions = None  # the metric's one top-64 pass gives the maxima
        stride = (w / out.shape[3], h / out.shape[2])
        heatmaps = out
    else:
        stride = (w / max(1, w // 4), h / max(1, h // 4))  # the default codec's heatmap grid
        crop_xy, _ = codec.decode(out, setting)  # crop px whatever the codec's units
        positions = np.asarray(crop_xy, np.float64) / np.asarray(stride)
        heatmaps = None
    keypoints = decode_outputs(codec, out, None, meta, spec, setting)
    if clean_crops is not None:
        from robustpose.data.box_perturbations import reframe_points
        from robustpose.evaluation.stability import heatmap_maxima

        grid = (w / stride[0], h / stride[1])
        here = heatmap_maxima(out) if positions is None else positions
        centers, scales = (np.asarray(meta[k], np.float64).reshape(-1, 2)
                           for k in ("center", "scale"))
        positions = reframe_points(here, centers, scales, clean_crops[0], clean_crops[1], grid)
    return {"positions": positions, "keypoints": keypoints, "heatmaps": heatmaps,
            "stride": stride, "forward_s": forward_s}


def stability_conventions(adapter: Any, source: Any, images: CellImages, options: dict,
                          weights_sha256: str | None) -> dict:
    """What ``run.json`` records (a rerun must agree on all of it)."""
    inference = getattr(adapter, "inference", None)
    decoding = inference.to_dict() if inference is not None else {}
    return {**decoding, "command": COMMAND, "flip_test": False, "boxes": source.boxes,
            "weights_sha256": weights_sha256, "seed": int(images.seed),
            "corruption_source": images.description, **options}


def run_cells(adapter: Any, source: Any, cells: Sequence[Cell], folder: Any,
              images: CellImages, options: dict, *, batch_size: int = 32, workers: int = 2,
              progress: bool = True) -> list[dict]:
    """Evaluate ``cells`` (the clean cell first), appending each unfinished cell's record.

    ``options``: ``dn_n``, ``d12_normalisation``, ``ruc_p_max``, ``dn_ties``,
    ``d12_hd_scale``. The clean cell's record is
    appended only when the folder does not hold it yet; it always runs (the reference)."""
    from robustpose.evaluation.stability import StabilityMetric
    from robustpose.utils.io import atomic_path

    done = folder.done_keys()
    to_write = sum((c.corruption, c.severity) not in done for c in cells)
    loader = cell_loader(cells, source, adapter.input_size, images, batch_size, workers)
    written: list[dict] = []
    reference, metric, current = None, None, None
    skipped: list = []
    seen, started, forward_s = 0, time.perf_counter(), 0.0
    (folder.path / DISTANCES_DIR).mkdir(parents=True, exist_ok=True)
    for batch in loader:
        index = batch["cell"]
        if index != current:
            current, skipped, seen, forward_s = index, [], 0, 0.0
            started, metric = time.perf_counter(), None
        skipped.extend(batch["skipped"])
        if batch["image"] is not None:
            outputs = batch_outputs(adapter, batch["image"], batch["meta"], source.spec,
                                    clean_crops_of(cells[index], source.records, batch["meta"]))
            forward_s += outputs["forward_s"]
            if metric is None:
                ref = None if cells[index].is_clean else reference
                metric = StabilityMetric(len(source.records), outputs["stride"], ref,
                                         n=options["dn_n"],
                                         normalisation=options["d12_normalisation"],
                                         p_max=options["ruc_p_max"],
                                         ties=options.get("dn_ties", "peak"),
                                         hd_scale=options.get("d12_hd_scale"))
            metric.accumulate(outputs, batch["meta"])
        seen += batch["count"]
        if seen < len(source.records):
            continue
        cell = cells[index]
        if metric is None:
            raise ValueError(f"{cell.label}: every image of the cell was unreadable")
        stats = metric.stats()
        if cell.is_clean:
            reference = metric.positions()
        else:
            # the per-keypoint distances, for pooled medians over cells (written before
            # the record: a cell in the store always has its file)
            heat, crop = metric.squared_distances()
            with atomic_path(distances_file(folder.path, cell)) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, heatmap=heat.astype(np.float32), crop=crop.astype(np.float32))
        if (cell.corruption, cell.severity) in done:
            continue
        record = {"model": adapter.name, "dataset": source.name,
                  **cell.to_json(), "metric": "RUC_area", "RUC_area": stats.get("RUC_area"),
                  "metrics": stats,
                  "num_people": len(source.records),
                  "elapsed_s": round(time.perf_counter() - started, 3),
                  "forward_s": round(forward_s, 3),
                  "skipped_images": [{"path": p, "problem": q} for p, q in sorted(set(skipped))]}
        folder.append(record)
        written.append(record)
        if progress:
            print(f"[{len(written):>3}/{to_write}] {cell_line(cell.label, stats)}  "
                  f"({record['elapsed_s']:.1f} s)")
            sys.stdout.flush()
    return written


def clean_crops_of(cell: Cell, records: Sequence[Any],
                   meta: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(centers, scales) (N, 2) of the clean crops of a batch's people (``meta['index']``)
    when ``cell`` is a box perturbation, else None (the crops are the clean ones)."""
    from robustpose.data.box_perturbations import is_box_perturbation

    if cell.is_clean or not is_box_perturbation(cell.corruption):
        return None
    index = np.asarray(meta["index"]).astype(np.int64).reshape(-1)
    return (np.stack([np.asarray(records[i].center, np.float64) for i in index]),
            np.stack([np.asarray(records[i].scale, np.float64) for i in index]))


def cell_line(label: str, stats: dict) -> str:
    """One line of a cell's numbers (absent ones as '-')."""
    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    r = stats.get("R_heatmap") or {}
    return (f"{label:<22} R/kp {num(r.get('mean'), '7.3f')}  RUC {num(stats.get('RUC_area'), '.3f')}"
            f"  D_n {num(stats.get('D_n'), '8.1f')}  D_12 {num(stats.get('D_12'), '.4f')}"
            f"  undef {num(stats.get('undefined_fraction'), '.3f')}"
            f"  AUC {num(stats.get('AUC'), '.3f')}  EPE {num(stats.get('EPE'), '.2f')}")


def run_stability(model: Any = None, *, checkpoint: str | os.PathLike | None = None,
                  config: str | os.PathLike | None = None,
                  onnx: str | os.PathLike | None = None,
                  onnx_spec: str | os.PathLike | None = None, dataset: str = "synth",
                  data_root: str | os.PathLike | None = None,
                  annotations: str | os.PathLike | None = None,
                  corrupted_root: str | os.PathLike | None = None,
                  corrupted_layout: str = "robustpose",
                  perturbations: str | Sequence[str] = "heldout5",
                  severities: str | Sequence[int] = "1-5", dn_n: int = 64,
                  d12_normalisation: str = "auto", ruc_p_max: int = 10, dn_ties: str = "peak",
                  batch_size: int = 32, workers: int = 2, device: str = "cpu", seed: int = 0,
                  out: str | os.PathLike | None = None, max_images: int | None = None,
                  spec: str | None = None, input_size: Any = None, name: str | None = None,
                  plots: bool = True, progress: bool = True) -> dict:
    """Run (or resume) a stability run; returns its card (also ``out/stability.json``).

    ``d12_normalisation``: 'raw', 'softmax', or 'auto' (default): what the model's codec
    declares (``codec.output_normalisation``: 'softmax' for HDHR / weighted-cross-entropy
    checkpoints, whose outputs are logits), else 'raw'; run.json records the value used.
    ``dn_ties``: D_n's order among equal values, 'peak' (default) or 'index' (the earlier
    rule); a softmax reading of an ``hdhr`` codec also records its region sum
    (``d12_hd_scale``), and the card gives ``D_12_hd`` (docs/stability.md)."""
    from robustpose.evaluation.stability import DN_TIES

    if dn_ties not in DN_TIES:  # before run.json is written
        raise ValueError(f"dn_ties must be one of {DN_TIES}, got {dn_ties!r}")
    options = {"perturbations": perturbations, "severities": severities, "dn_n": int(dn_n),
               "d12_normalisation": d12_normalisation, "ruc_p_max": int(ruc_p_max),
               "dn_ties": dn_ties, "batch_size": batch_size, "workers": workers}
    return execute(STABILITY, ModelChoice(model, input_size=input_size, checkpoint=checkpoint,
                                          config=config, onnx=onnx, onnx_spec=onnx_spec,
                                          name=name),
                   DataChoice(dataset, data_root, annotations, None, max_images, spec, None,
                              corrupted_root, corrupted_layout, seed),
                   out, None, options=options, device=device, progress=progress, plots=plots)


class StabilityKind:
    """The stability study as a run kind: cells (perturbation, severity) compared with the
    clean cell's maxima (which runs first in every run, its record written once)."""

    name = COMMAND
    checks_keypoints = False  # as before the run layer: a mismatch fails in the clean cell

    def check(self, options: dict) -> None:
        options["names"] = parse_perturbations(options["perturbations"])
        options["sevs"] = parse_severities(options["severities"])

    def title(self, run: Any) -> str:
        return COMMAND

    def default_dir(self, run: Any, slug: str) -> Path:
        return Path("runs") / COMMAND / slug

    def prepare(self, run: Any) -> None:
        opts = run.options
        norm = resolve_normalisation(run.adapter, opts["d12_normalisation"])
        # dn_ties and the undefined-map rule are in run.json, so a folder measured with the
        # earlier rule (which lacks them) refuses a rerun instead of mixing the two
        run.state["metric_options"] = {
            "dn_n": opts["dn_n"], "d12_normalisation": norm, "ruc_p_max": opts["ruc_p_max"],
            "dn_ties": opts["dn_ties"], "dn_undefined": "flat, or raw maximum <= 0",
            "d12_hd_scale": resolve_hd_scale(run.adapter, norm)}
        run.state["conventions"] = stability_conventions(
            run.adapter, run.source, run.images, run.state["metric_options"], run.fingerprint)

    def cells(self, run: Any) -> list[Cell]:
        return build_cells(run.options["names"], run.options["sevs"])

    def settings(self, run: Any) -> dict:
        return {"model": run.adapter.name, "dataset": run.source.name,
                "conventions": run.state["conventions"], "command": COMMAND,
                "perturbations": run.options["names"], "severities": run.options["sevs"],
                "model_info": run.model_info, "num_people": len(run.source.records),
                "annotation_file": str(run.source.annotation_file)}

    def requested(self, run: Any) -> dict:
        """A perturbation or severity added on a rerun gets its rows and counts in
        cells.expected (the card reads run.json's lists, grown by every run's request)."""
        return {"perturbations": run.options["names"], "severities": run.options["sevs"]}

    def evaluate(self, run: Any, cells: Sequence[Cell]) -> list[dict]:
        if not cells:
            return []
        todo = [Cell("clean", 0)] + [c for c in cells if not c.is_clean]  # the reference first
        return run_cells(run.adapter, run.source, todo, run.folder, run.images,
                         run.state["metric_options"], batch_size=run.options["batch_size"],
                         workers=run.options["workers"], progress=run.progress)

    def finish(self, run: Any, cells: Sequence[Cell]) -> dict:
        return self.write_reports(run.folder, plots=run.plots)

    def write_reports(self, folder: Any, plots: bool = True) -> dict:
        return write_stability_reports(folder, plots=plots)

    def report(self, run_dir: Any, plots: bool = True) -> int:
        return report_stability_folders([run_dir], None, plots=plots)

    def compare(self, run_dirs: Sequence[Any], out: Any, plots: bool = True) -> int:
        return report_stability_folders(list(run_dirs), out, plots=plots)

    key_to_json = staticmethod(Cell.to_json)
    key_from_json = staticmethod(Cell.from_json)


STABILITY = register_kind(StabilityKind())
