"""The AdvMix paper's comparison figures, from benchmark runs (matplotlib, Agg).

- Fig. 4 (:func:`plot_gain`): model B minus model A, (a) per corruption (mean over the
  severities both runs measured), coloured by family, (b) per severity (0 = clean).
- Fig. 5 (:func:`plot_ap_rpc`): several models, clean AP* (line) and rPC (bars).
- Fig. 6 (:func:`skeleton_comparison`): ground truth, model A and model B skeletons on the
  same corrupted image, the corruption seeded as the benchmark seeds it
  (:class:`~robustpose.data.CorruptedImages` with the run's seed), each model fed its own
  crops through its adapter's ``predict`` (the benchmark's inference path).

A benchmark run is given as its card (what ``robustpose.benchmark`` returns, or
``summary.json`` loaded), a run folder holding ``summary.json``, or a robustness card
(its corruption face). Values are in percent of the run's metric (AP x 100 or PCKh).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from robustpose.reports.plots import FAMILY_COLOURS, _pyplot, _save
from robustpose.reports.tables import SHORT_NAMES, family_of, ordered_corruptions


def benchmark_view(run: Mapping | str | Path) -> dict:
    """``{model, metric, clean, mPC, rPC, per_cell}`` of a benchmark card, a run folder
    (its ``summary.json``) or a robustness card; one-line errors naming what is missing."""
    where = "benchmark card"
    if not isinstance(run, Mapping):
        path = Path(run)
        file = next((path / n for n in ("summary.json", "card.json") if (path / n).is_file()),
                    path / "summary.json") if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"{path}: no summary.json nor card.json (not a finished "
                                    "benchmark run folder nor a robustness card)")
        try:
            run = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{file}: not JSON ({exc.msg})") from None
        where = str(file)
    if "schema" in run:  # a robustness card: its corruption face
        if not run.get("corruption"):
            raise ValueError(f"{where}: the card of {run['model']['name']} has no corruption face")
        face = run["corruption"]
        return {"model": run["model"]["name"], "metric": face.get("metric", "AP"),
                "clean": face.get("clean"), "mPC": face.get("mPC"), "rPC": face.get("rPC"),
                "per_cell": face.get("per_cell") or {}}
    missing = [k for k in ("model", "clean", "per_cell") if k not in run]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r} (not a benchmark card)")
    return {"model": run["model"], "metric": run.get("metric", "AP"), "clean": run["clean"],
            "mPC": run.get("mPC"), "rPC": run.get("rPC"), "per_cell": run["per_cell"] or {}}


def gain(run_a: Mapping | str | Path, run_b: Mapping | str | Path) -> dict:
    """B minus A over the cells both runs measured: ``per_corruption`` (mean over the
    shared severities), ``per_severity`` (mean over the shared corruptions; '0' = clean),
    ``cells`` [(corruption, severity)], and both views."""
    a, b = benchmark_view(run_a), benchmark_view(run_b)
    cells = sorted((c, s) for c in a["per_cell"] if c in b["per_cell"]
                   for s in a["per_cell"][c] if s in b["per_cell"][c]
                   and a["per_cell"][c][s] is not None and b["per_cell"][c][s] is not None)
    if not cells:
        raise ValueError(f"fig. 4: runs of {a['model']} and {b['model']} share no corrupted cell")
    if a["metric"] != b["metric"]:
        raise ValueError(f"fig. 4: {a['model']} is scored by {a['metric']}, {b['model']} by "
                         f"{b['metric']}")
    diff = {(c, s): b["per_cell"][c][s] - a["per_cell"][c][s] for c, s in cells}
    names = ordered_corruptions(dict.fromkeys(c for c, _ in cells))
    severities = sorted({int(s) for _, s in cells})
    per_severity = {str(s): float(np.mean([v for (c, t), v in diff.items() if int(t) == s]))
                    for s in severities}
    if a["clean"] is not None and b["clean"] is not None:
        per_severity = {"0": b["clean"] - a["clean"], **per_severity}
    return {"a": a, "b": b, "cells": cells, "per_severity": per_severity,
            "per_corruption": {n: float(np.mean([v for (c, _), v in diff.items() if c == n]))
                               for n in names}}


def plot_gain(run_a: Mapping | str | Path, run_b: Mapping | str | Path,
              path: str | Path) -> Path:
    """Fig. 4: (a) B - A per corruption, bars coloured by family; (b) B - A per severity."""
    plt = _pyplot()
    g = gain(run_a, run_b)
    metric, names = g["a"]["metric"], list(g["per_corruption"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(9.0, 0.5 * len(names) + 6.0), 4.0),
                                   gridspec_kw={"width_ratios": [max(2, len(names)), 5]})
    values = [g["per_corruption"][n] for n in names]
    ax1.bar(range(len(names)), values, color=[FAMILY_COLOURS[family_of(n)] for n in names])
    ax1.set_xticks(range(len(names)))
    ax1.set_xticklabels([SHORT_NAMES.get(n, n) for n in names], rotation=45, ha="right")
    ax1.set_ylabel(f"{metric} gain, B - A (points)")
    ax1.set_title("(a) per corruption (mean over severities)")
    families = list(dict.fromkeys(family_of(n) for n in names))
    ax1.legend([plt.Rectangle((0, 0), 1, 1, color=FAMILY_COLOURS[f]) for f in families],
               families, fontsize=8)
    xs = [int(s) for s in g["per_severity"]]
    ax2.bar(xs, list(g["per_severity"].values()),
            color=["black" if x == 0 else "#4C72B0" for x in xs])
    ax2.set_xticks(xs)
    ax2.set_xlabel("severity (0 = clean)")
    ax2.set_ylabel(f"{metric} gain, B - A (points)")
    ax2.set_title("(b) per severity (mean over corruptions)")
    for ax in (ax1, ax2):
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Fig. 4: gain of B = {g['b']['model']} over A = {g['a']['model']}")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_ap_rpc(runs: Sequence[Mapping | str | Path], path: str | Path,
                labels: Sequence[str] | None = None) -> Path:
    """Fig. 5: one x position per model, rPC as bars (left axis) and clean AP* as a line
    (right axis), both in percent. ``labels``: names for the x axis (default the models')."""
    plt = _pyplot()
    views = [benchmark_view(r) for r in runs]
    if not views:
        raise ValueError("fig. 5: no benchmark run given")
    if labels is not None and len(labels) != len(views):
        raise ValueError(f"fig. 5: {len(labels)} labels for {len(views)} runs")
    names = list(labels) if labels is not None else [v["model"] for v in views]
    metric = views[0]["metric"]
    xs = np.arange(len(views))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(views) + 2.0), 4.0))
    rpc = [np.nan if v["rPC"] is None else v["rPC"] for v in views]
    bars = ax.bar(xs, rpc, color="#DD8452", width=0.6, label="rPC (bars, left axis)")
    ax.set_ylabel("rPC = mPC / clean (%)")
    ax.set_ylim(0, 125)  # headroom above 100 for the legend
    twin = ax.twinx()
    clean = [np.nan if v["clean"] is None else v["clean"] for v in views]
    line = twin.plot(xs, clean, "o-", color="#4C72B0", label=f"clean {metric}* (line, right axis)")
    twin.set_ylabel(f"clean {metric}* (%)")
    twin.set_ylim(0, 125)
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.legend([bars, line[0]], [bars.get_label(), line[0].get_label()], fontsize=8,
              loc="upper center", ncol=2)
    ax.set_title(f"Fig. 5: clean {metric}* and rPC of {len(views)} model(s)")
    fig.tight_layout()
    return _save(fig, Path(path))


def predict_image(adapter: Any, annotation_file: str | Path, image_root: str | Path,
                  corruption: str = "clean", severity: int = 0, seed: int = 0,
                  image_id: Any = None, flip_test: bool | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """One image of a COCO-format set, corrupted as the benchmark corrupts it, and the
    adapter's keypoints on its ground-truth boxes (crops made for the adapter's input
    shape). -> ``(image uint8 HxWx3, ground truth (N,K,3), predicted (N,K,3) image px,
    spec)``; ``image_id`` None: the first image (by id) with a labelled person."""
    import torch

    from robustpose.data import CorruptedImages, TopDownDataset, load_coco_records, load_image

    w, h = adapter.input_size
    records, spec = load_coco_records(annotation_file, image_root, aspect_ratio=w / h,
                                      padding=adapter.padding)
    ids = sorted({r.image_id for r in records if r.keypoints is not None}, key=str)
    if not ids:
        raise ValueError(f"{annotation_file}: no labelled person to draw")
    chosen = ids[0] if image_id is None else image_id
    people = [r for r in records if r.image_id == chosen]
    if not people:
        raise ValueError(f"{annotation_file}: no person in image id {image_id!r}")
    transform = CorruptedImages(corruption, severity, seed)
    items = [TopDownDataset(people, spec, input_size=(w, h), heatmap_size=(w // 4, h // 4),
                            train=False, image_transform=transform,
                            encode_targets=False)[i] for i in range(len(people))]
    crops = torch.stack([it["image"] for it in items])
    metas = {k: np.stack([it["meta"][k] for it in items]) for k in ("center", "scale")}
    flip = adapter.default_flip_test if flip_test is None else bool(flip_test)
    predicted = np.asarray(adapter.predict(crops, metas, spec, flip), dtype=np.float64)
    image = transform(load_image(people[0].image_path), people[0])
    truth = np.stack([np.asarray(r.keypoints, dtype=np.float64) for r in people])
    return image, truth, predicted, spec


def plot_skeletons(image: np.ndarray, panels: Mapping[str, np.ndarray],
                   skeleton: Sequence[tuple[int, int]], path: str | Path, title: str = "",
                   score_thr: float = 0.0) -> Path:
    """One panel per entry of ``panels`` (label -> keypoints (N,K,3) image px) on the same
    ``image``; a limb is drawn when both ends' third value (visibility or score) is above
    ``score_thr``, one colour per person."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    height, width = image.shape[:2]
    for ax, (label, people) in zip(axes[0], panels.items()):
        ax.imshow(image)
        for n, person in enumerate(np.asarray(people, dtype=np.float64)):
            colour = colours[n % len(colours)]
            shown = person[:, 2] > score_thr
            for a, b in skeleton:
                if shown[a] and shown[b]:
                    ax.plot(person[[a, b], 0], person[[a, b], 1], "-", color=colour, linewidth=2)
            ax.scatter(person[shown, 0], person[shown, 1], s=10, color=colour,
                       edgecolors="white", linewidths=0.5, zorder=3)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("x (image px)")
    axes[0][0].set_ylabel("y (image px)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(path))


def skeleton_comparison(adapters: Mapping[str, Any], annotation_file: str | Path,
                        image_root: str | Path, path: str | Path, corruption: str,
                        severity: int, seed: int = 0, image_id: Any = None,
                        flip_test: bool | None = None) -> Path:
    """Fig. 6: ground truth then each model's skeletons (``adapters``: label -> adapter,
    e.g. ``{'A: baseline': a, 'B: AdvMix': b}``) on one image corrupted with
    ``corruption`` / ``severity`` seeded by the run's ``seed``."""
    if not adapters:
        raise ValueError("fig. 6: no model given")
    panels: dict[str, np.ndarray] = {}
    image = spec = None
    for label, adapter in adapters.items():
        image, truth, predicted, spec = predict_image(adapter, annotation_file, image_root,
                                                      corruption, severity, seed, image_id,
                                                      flip_test)
        panels.setdefault("ground truth", truth)
        panels[label] = predicted
    cell = "clean" if corruption == "clean" or not severity else f"{corruption} severity {severity}"
    return plot_skeletons(image, panels, spec.skeleton, path,
                          title=f"Fig. 6: {cell} (seed {seed})")
