"""PNG plots of a benchmark run (matplotlib, Agg backend, no display needed).

- ``per_corruption.png``: one bar per corruption (mean over severities), coloured by
  family, against the clean score and the mPC (AdvMix Fig. 4a style).
- ``per_severity.png``: score against severity, one curve per family, severity 0 = clean
  (Fig. 4b style).
- ``heatmap.png``: corruption x severity grid of the score.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from robustpose.reports.tables import FAMILIES, SHORT_NAMES, family_of, ordered_corruptions
from robustpose.utils.io import atomic_path

FAMILY_COLOURS = {"noise": "#4C72B0", "blur": "#DD8452", "weather": "#55A868",
                  "digital": "#C44E52", "other": "#8172B3",
                  "box": "#937860"}  # box perturbations (the person box, not the pixels)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Write ``fig`` atomically and close it (pyplot keeps every open figure alive: a run
    that writes many plots would otherwise grow, and matplotlib warns past 20)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_per_corruption(card: dict, path: Path) -> Path:
    plt = _pyplot()
    names = ordered_corruptions(card["per_corruption"])
    values = [card["per_corruption"][n] for n in names]
    metric = card.get("metric", "AP")
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(names) + 2), 4.0))
    colours = [FAMILY_COLOURS.get(family_of(n), "#8172B3") for n in names]
    ax.bar(range(len(names)), values, color=colours)
    if card.get("clean") is not None:
        ax.axhline(card["clean"], color="black", linestyle="--", linewidth=1.2,
                   label=f"clean {metric}* = {card['clean']:.1f}")
    if card.get("mPC") is not None:
        ax.axhline(card["mPC"], color="grey", linestyle=":", linewidth=1.2,
                   label=f"mPC = {card['mPC']:.1f}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([SHORT_NAMES.get(n, n) for n in names], rotation=45, ha="right")
    ax.set_ylabel(f"{metric} (%)")
    top = max([v for v in values if v is not None] + [card.get("clean") or 0.0, 1.0])
    ax.set_ylim(0, top * 1.15)
    ax.set_title(f"{card.get('model', '?')} on {card.get('dataset', '?')}: "
                 f"{metric} per corruption (mean over severities)")
    legend_families = list(FAMILIES) + ["box"]
    handles = [plt.Rectangle((0, 0), 1, 1, color=FAMILY_COLOURS[f]) for f in legend_families
               if any(family_of(n) == f for n in names)]
    labels = [f for f in legend_families if any(family_of(n) == f for n in names)]
    line_handles, line_labels = ax.get_legend_handles_labels()
    ax.legend(line_handles + handles, line_labels + labels, fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def plot_per_severity(card: dict, path: Path) -> Path:
    plt = _pyplot()
    metric = card.get("metric", "AP")
    per_cell = card["per_cell"]
    severities = sorted({int(s) for cells in per_cell.values() for s in cells})
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    families = [f for f in list(FAMILIES) + ["other", "box"]
                if any(family_of(n) == f for n in per_cell)]
    for family in families:
        members = [n for n in per_cell if family_of(n) == family]
        ys = [float(np.mean([per_cell[n][str(s)] for n in members if str(s) in per_cell[n]]))
              for s in severities]
        xs = list(severities)
        if card.get("clean") is not None:
            xs, ys = [0] + xs, [card["clean"]] + ys
        ax.plot(xs, ys, marker="o", color=FAMILY_COLOURS[family], label=family)
    if card.get("per_severity"):
        xs = sorted(int(s) for s in card["per_severity"])
        ys = [card["per_severity"][str(s)] for s in xs]
        if card.get("clean") is not None:
            xs, ys = [0] + xs, [card["clean"]] + ys
        ax.plot(xs, ys, marker="s", color="black", linestyle="--", label="all corruptions")
    ax.set_xlabel("severity (0 = clean)")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_xticks([0] + severities)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{card.get('model', '?')}: {metric} by severity and family")
    return _save(fig, path)


def plot_heatmap(card: dict, path: Path) -> Path:
    plt = _pyplot()
    metric = card.get("metric", "AP")
    per_cell = card["per_cell"]
    names = ordered_corruptions(per_cell)
    severities = sorted({int(s) for cells in per_cell.values() for s in cells})
    grid = np.full((len(names), len(severities)), np.nan)
    for i, name in enumerate(names):
        for j, sev in enumerate(severities):
            if str(sev) in per_cell[name]:
                grid[i, j] = per_cell[name][str(sev)]
    fig, ax = plt.subplots(figsize=(1.0 * len(severities) + 3.0, 0.38 * len(names) + 1.5))
    vmax = max(float(np.nanmax(grid)) if grid.size else 1.0, card.get("clean") or 0.0, 1.0)
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    for i in range(len(names)):
        for j in range(len(severities)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < 0.6 * vmax else "black")
    ax.set_xticks(range(len(severities)))
    ax.set_xticklabels([str(s) for s in severities])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([SHORT_NAMES.get(n, n) for n in names])
    ax.set_xlabel("severity")
    fig.colorbar(image, ax=ax, label=f"{metric} (%)")
    clean = card.get("clean")
    ax.set_title(f"{metric} per corruption and severity"
                 + (f" (clean {clean:.1f})" if clean is not None else ""))
    return _save(fig, path)


def write_plots(card: dict, out_dir: str | Path) -> list[Path]:
    """Write the three PNGs into ``out_dir`` (nothing when the card has no corruption)."""
    out_dir = Path(out_dir)
    if not card.get("per_corruption"):
        return []
    return [function(card, out_dir / name)
            for function, name in ((plot_per_corruption, "per_corruption.png"),
                                   (plot_per_severity, "per_severity.png"),
                                   (plot_heatmap, "heatmap.png"))]
