"""PNG plots of stability cards (matplotlib, Agg), after the stable-heatmap paper.

- ``stability_R.png`` (Fig. 6): R per perturbation (per-keypoint mean of the squared
  distance, heatmap px^2), one bar per model when several cards are given.
- ``stability_RUC.png`` (Fig. 7): the RUC curve of every model (pooled over all
  perturbed cells): fraction of keypoints that moved <= P heatmap px.
- ``stability_table1.png`` (Table 1): D_n and D_(1)(2) per model on the clean crops (the
  paper's reading), then pooled over the perturbed cells, with the undefined maps'
  fraction (absent ones: '-').
- ``loss_surface.png`` (Fig. 10): :func:`plot_loss_surface`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from robustpose.reports.plots import _pyplot, _save


def plot_r_per_perturbation(cards: Sequence[dict], path: Path) -> Path:
    plt = _pyplot()
    names = list(dict.fromkeys(n for c in cards for n in c["per_perturbation"]))
    width = 0.8 / max(1, len(cards))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names) + 2), 4))
    x = np.arange(len(names))
    for i, card in enumerate(cards):
        values = [((card["per_perturbation"].get(n) or {}).get("R_heatmap") or {}).get("mean")
                  for n in names]
        ax.bar(x + (i - (len(cards) - 1) / 2) * width,
               [np.nan if v is None else v for v in values], width, label=card["model"])
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("R per keypoint (heatmap px$^2$)")
    ax.set_title("R(T, T$^{mp}$) per perturbation (Eq. 10, mean over keypoints)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_ruc(cards: Sequence[dict], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    if len(cards) > 10:   # past the default cycle's 10 colours two curves would share one
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors[:len(cards)])
    for card in cards:
        overall = card.get("overall") or {}
        if overall.get("RUC") is None:
            continue
        p = card.get("ruc_thresholds_heatmap_px") or list(range(len(overall["RUC"])))
        ax.plot(p, overall["RUC"], marker="o", ms=3,
                label=f"{card['model']} (area {overall['RUC_area']:.3f})")
    ax.set_xlabel("P (heatmap px)")
    ax.set_ylabel("fraction of keypoints moved <= P")
    ax.set_ylim(0, 1.02)
    ax.set_title("RUC (all perturbed cells)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_table1(cards: Sequence[dict], path: Path) -> Path:
    """Table 1: D_n and D_(1)(2) on the clean crops (the paper's reading) first, then the
    same pooled over the perturbed cells (an extra); D_(1)(2) x Z where an HD scale is
    known; the undefined maps' fraction of each (absent values: '-')."""
    plt = _pyplot()

    def cell(value, spec):
        return "-" if value is None else format(value, spec)

    rows = []
    for c in cards:
        clean, overall = c.get("clean") or {}, c.get("overall") or {}
        rows.append([c["model"], cell(clean.get("D_n"), ".1f"), cell(clean.get("D_12"), ".4f"),
                     cell(clean.get("D_12_hd"), ".4f"), cell(clean.get("undefined_fraction"), ".3f"),
                     cell(overall.get("D_n"), ".1f"), cell(overall.get("D_12"), ".4f"),
                     cell(overall.get("undefined_fraction"), ".3f")])
    fig, ax = plt.subplots(figsize=(11, 0.5 + 0.35 * (len(rows) + 1)))
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=[
        "model", "D_n (clean)", "D_(1)(2) (clean)", "D_(1)(2) x Z (clean)", "undefined (clean)",
        "D_n (perturbed, pooled)", "D_(1)(2) (perturbed, pooled)", "undefined (perturbed)"],
        loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    return _save(fig, path)


def write_stability_plots(cards: Sequence[dict], out_dir: Path) -> list[Path]:
    """Fig. 6, Fig. 7 and Table 1 of ``cards`` under ``out_dir``."""
    out_dir = Path(out_dir)
    return [plot_r_per_perturbation(cards, out_dir / "stability_R.png"),
            plot_ruc(cards, out_dir / "stability_RUC.png"),
            plot_table1(cards, out_dir / "stability_table1.png")]


def plot_loss_surface(alphas: np.ndarray, betas: np.ndarray, losses: np.ndarray,
                      path: Path, title: str = "") -> Path:
    """Surface of ``losses`` (len(betas), len(alphas)) over the (alpha, beta) grid:
    alpha along (perturbed - clean), beta along the Rademacher direction (Fig. 10)."""
    plt = _pyplot()
    a, b = np.meshgrid(alphas, betas)
    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(a, b, losses, cmap="viridis", linewidth=0, antialiased=True)
    ax.set_xlabel("alpha (perturbed - clean)")
    ax.set_ylabel("beta (Rademacher)")
    ax.set_zlabel("loss")
    ax.set_title(title or "loss surface")
    return _save(fig, path)
