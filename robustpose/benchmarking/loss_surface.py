"""The loss around a few test crops (the stable-heatmap paper's Fig. 10).

For crops x (clean) and x' (the same crops perturbed, the benchmark's seeded full-image
corruption, same boxes), the loss ``L(x + alpha * d1 + beta * d2)`` on a 2-D grid:
``d1 = x' - x`` (alpha = 1 is the perturbed crop) and ``d2`` a Rademacher direction (each
pixel +-1, drawn from a generator seeded with ``derive_seed(seed, 'loss_surface')``)
scaled to the norm of ``d1`` per crop. Inputs are clipped to [0, 1]. The loss is
HRNet's joints MSE against the Gaussian targets (sigma 2) of the ground-truth keypoints
(invisible ones weighted 0), averaged over the crops. Forward passes only: any heatmap
model the benchmark can run (registry, ONNX, callable).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustpose.benchmarking.cells import Cell
from robustpose.benchmarking.stream import CellImages, CellStream, collate_cell_batch
from robustpose.utils.io import atomic_write_text
from robustpose.utils.seeding import derive_seed


def loss_surface(adapter: Any, clean: torch.Tensor, perturbed: torch.Tensor,
                 joints: np.ndarray, steps: int = 11, span: float = 1.0,
                 seed: int = 0) -> dict:
    """-> ``alphas``, ``betas`` (steps,), ``losses`` (steps, steps) [beta, alpha].

    ``clean``/``perturbed``: (N, 3, H, W) crops in [0, 1]; ``joints``: (N, K, 3) GT in
    crop px (visibility > 0 = labelled)."""
    from robustpose.benchmarking.stability_run import model_outputs
    from robustpose.codecs import GaussianHeatmap
    from robustpose.losses import JointsMSELoss

    if steps < 2:
        raise ValueError(f"loss surface needs >= 2 grid steps per axis, got {steps}")
    d1 = perturbed - clean
    gen = torch.Generator().manual_seed(derive_seed(seed, "loss_surface"))
    d2 = torch.randint(0, 2, clean.shape, generator=gen).float() * 2 - 1
    norm = lambda t: t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)  # noqa: E731
    d2 = d2 / norm(d2) * norm(d1)
    kind, out, _ = model_outputs(adapter, clean)
    if kind != "heatmaps":
        raise ValueError("--loss-surface needs a heatmap model (the loss is the heatmap MSE)")
    h, w = out.shape[2:]
    codec = GaussianHeatmap(adapter.input_size, (w, h))
    encoded = [codec.encode(j) for j in np.asarray(joints, np.float32)]
    target = torch.from_numpy(np.stack([e["target"] for e in encoded]))
    weight = torch.from_numpy(np.stack([e["target_weight"] for e in encoded]))
    weight = weight.reshape(len(joints), -1, 1)
    criterion = JointsMSELoss(use_target_weight=True)
    grid = np.linspace(-span, span, int(steps))
    losses = np.zeros((len(grid), len(grid)))
    for bi, beta in enumerate(grid):
        for ai, alpha in enumerate(grid):
            x = (clean + float(alpha) * d1 + float(beta) * d2).clamp(0, 1)
            _, maps, _ = model_outputs(adapter, x)
            losses[bi, ai] = float(criterion(maps.float(), target, weight))
    return {"alphas": grid.tolist(), "betas": grid.tolist(), "losses": losses.tolist()}


def check_surface_arguments(crops: int, steps: int, perturbation: str | None, severity: int,
                            perturbations: Any = "heldout5") -> str:
    """Every ``--surface-*`` argument, checked before the stability run it follows (a bad
    one must not cost the whole run first); -> the perturbation's name."""
    from robustpose.benchmarking.stability_run import parse_perturbations

    if crops < 1:
        raise ValueError(f"--surface-crops must be >= 1, got {crops}")
    if steps < 2:
        raise ValueError(f"--surface-steps must be >= 2 (grid points per axis), got {steps}")
    if not 1 <= int(severity) <= 5:
        raise ValueError(f"--surface-severity must be 1..5, got {severity}")
    name = perturbation or parse_perturbations(perturbations)[0]
    names = parse_perturbations(name)  # a one-line error for an unknown name
    if len(names) != 1:
        raise ValueError(f"--surface-perturbation names one perturbation, got {name!r}")
    return names[0]


def run_loss_surface(run_dir: str | os.PathLike, *, model: Any = None, checkpoint: Any = None,
                     config: Any = None, onnx: Any = None, onnx_spec: Any = None,
                     dataset: str = "synth", data_root: Any = None, annotations: Any = None,
                     spec: str | None = None, input_size: Any = None, device: str = "cpu",
                     seed: int = 0, crops: int = 4, steps: int = 11,
                     perturbation: str | None = None, severity: int = 3,
                     perturbations: Any = "heldout5") -> dict:
    """Write ``loss_surface.json`` and ``loss_surface.png`` into ``run_dir``; -> the result."""
    from robustpose.benchmarking.sources import resolve_source
    from robustpose.benchmarking.stability_run import parse_perturbations
    from robustpose.data.registry import keypoint_count
    from robustpose.models.loading import load_adapter
    from robustpose.reports.stability_plots import plot_loss_surface

    name = check_surface_arguments(crops, steps, perturbation, severity, perturbations)
    adapter, _ = load_adapter(model, checkpoint=checkpoint, config=config, onnx=onnx,
                              onnx_spec=onnx_spec, device=device, input_size=input_size,
                              num_joints=keypoint_count(dataset, annotations,
                                                        data_root=data_root, spec=spec))
    source = resolve_source(dataset, data_root, annotations, None,
                            input_size=adapter.input_size, padding=adapter.padding,
                            subset_dir=Path(run_dir) / "subsets", spec=spec)
    records = source.records[:crops]
    stream = CellStream([Cell("clean", 0), Cell(name, int(severity))], records, source.spec,
                        adapter.input_size, CellImages(int(seed)), image_root=source.image_root)
    clean = collate_cell_batch([stream[(0, i)] for i in range(len(records))])
    pert = collate_cell_batch([stream[(1, i)] for i in range(len(records))])
    if clean["image"] is None or pert["image"] is None or clean["skipped"] or pert["skipped"]:
        raise ValueError(f"loss surface: an image of the first {crops} crops is unreadable")
    joints = np.asarray(clean["meta"]["joints"], np.float32)
    result = loss_surface(adapter, clean["image"], pert["image"], joints, steps=steps,
                          seed=seed)
    result.update({"model": adapter.name, "dataset": source.name, "perturbation": name,
                   "severity": int(severity), "crops": len(records), "seed": int(seed),
                   "loss": "joints MSE vs Gaussian GT targets (sigma 2)"})
    out = Path(run_dir)
    atomic_write_text(out / "loss_surface.json", json.dumps(result))
    result["plot"] = str(plot_loss_surface(np.asarray(result["alphas"]),
                                           np.asarray(result["betas"]),
                                           np.asarray(result["losses"]), out / "loss_surface.png",
                                           title=f"{adapter.name}: {name}/{severity}"))
    return result
