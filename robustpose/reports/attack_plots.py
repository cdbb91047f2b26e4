"""PNG plots of attack cards (matplotlib, Agg), after the attack study's figures.

- ``attack_relative.png`` (Fig. 1): relative metric (attacked / clean) against eps, one
  line per (model, attack x steps, mode), so IGSM-10 and IGSM-100 sit side by side; target
  PCK vs eps for targeted runs in a second panel. :func:`plot_relative` takes several
  cards (several models on one plot).
- ``attack_joints.png``: per-joint relative PCK at the largest eps (vulnerability bars).
- ``attack_transfer.png`` / :func:`plot_transfer_matrix`: a surrogate x victim heat map of
  relative values (a transfer run: its surrogates -> this model, relative PCK@0.1).
- ``attack_uap_curve.png`` / :func:`plot_uap_curves`: a UAP run's held-out relative PCK
  after every fitting epoch, one line per cell (the curve its stopping rule read).
The UAP picture itself is written by :meth:`robustpose.attacks.UAP.save`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from robustpose.reports.plots import _pyplot, _save


def series_label(row: dict) -> str:
    """A line's legend from a card row's fields: ``<attack>-<mode> x<steps>``
    (``transfer[<surrogate>]-igsm-...`` for transfer)."""
    head = f"transfer[{row.get('surrogate')}]-igsm" if row["attack"] == "transfer" else row["attack"]
    mode = row.get("mode") or (("T" if row.get("targeted") else "U")
                               + ("-ALL" if row.get("all_stacks") else ""))
    return f"{head}-{mode} x{row['steps']}"


def _series(card: dict) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for row in card["cells"]:
        key = series_label(row)
        groups.setdefault(key, []).append(row)
    return {k: sorted(v, key=lambda r: r["eps"]) for k, v in groups.items()}


def plot_relative(cards: dict | Sequence[dict], path: Path) -> Path:
    """Fig. 1: relative metric vs eps, one line per (model, attack x steps); target PCK vs
    eps in a second panel when any cell is targeted. ``cards``: one card or several
    (several models on one plot; each line is labelled with its model then)."""
    plt = _pyplot()
    cards = [cards] if isinstance(cards, dict) else list(cards)
    targeted = any(r.get("target_pck") is not None for c in cards for r in c["cells"])
    fig, axes = plt.subplots(1, 2 if targeted else 1, figsize=(11 if targeted else 6, 4),
                             squeeze=False)
    for card in cards:
        for name, rows in _series(card).items():
            label = name if len(cards) == 1 else f"{card['model']}: {name}"
            eps = [r["eps"] for r in rows]
            axes[0][0].plot(eps, [np.nan if r.get("relative_metric") is None
                                  else r["relative_metric"] for r in rows], marker="o",
                            label=label)
            if targeted:
                axes[0][1].plot(eps, [np.nan if r.get("target_pck") is None else r["target_pck"]
                                      for r in rows], marker="o", label=label)
    metric = cards[0].get("metric") or "metric"
    axes[0][0].set_ylabel(f"relative {metric} (attacked / clean)")
    axes[0][0].set_title(f"{cards[0]['model']} on {cards[0]['dataset']}" if len(cards) == 1
                         else f"{len(cards)} models on {cards[0]['dataset']}")
    if targeted:
        axes[0][1].set_ylabel("target PCK@0.1")
    for ax in axes[0]:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("eps (0..255 scale)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_joints(card: dict, path: Path) -> Path:
    plt = _pyplot()
    top = max(r["eps"] for r in card["cells"])
    rows = [r for r in card["cells"] if r["eps"] == top]
    names = card.get("keypoint_names") or [str(i) for i in
                                           range(len(rows[0].get("relative_pck_per_joint") or []))]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 4))
    width = 0.8 / max(1, len(rows))
    x = np.arange(len(names))
    for i, r in enumerate(rows):
        values = [np.nan if v is None else v for v in (r.get("relative_pck_per_joint") or [])]
        values += [np.nan] * (len(names) - len(values))
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, values, width, label=r["key"])
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel("relative PCK@0.1 per joint")
    ax.set_title(f"per-joint vulnerability at eps {top:g}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def short_label(name: str) -> str:
    """A surrogate's axis label: ``NAME=runs/x/best.pt`` -> ``NAME (x)`` (the full path
    stays in the records; on an axis it pushes the plot out of its figure)."""
    model, sep, checkpoint = str(name).partition("=")
    if not sep:
        return model
    parent = Path(checkpoint).parent.name or Path(checkpoint).stem
    return f"{model} ({parent})"


def plot_transfer_matrix(matrix: Mapping[str, Mapping[str, float]], path: Path,
                         title: str = "relative metric under transfer") -> Path:
    """``matrix[surrogate][victim]`` -> heat map with the values written in the cells."""
    plt = _pyplot()
    rows = list(matrix)
    cols = list(dict.fromkeys(v for r in rows for v in matrix[r]))
    data = np.array([[np.nan if matrix[r].get(c) is None else matrix[r][c] for c in cols]
                     for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(1.4 * len(cols) + 3, 0.8 * len(rows) + 2))
    finite = data[np.isfinite(data)]
    image = ax.imshow(data, vmin=0, vmax=max(1.0, float(finite.max()) if finite.size else 1.0),
                      cmap="viridis")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", color="w")
    ax.set_xticks(range(len(cols)), [short_label(c) for c in cols], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [short_label(r) for r in rows])
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("crafted on")
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return _save(fig, path)


def plot_uap_curves(curves: Mapping[str, Sequence[Sequence[float]]], path: Path,
                    title: str = "UAP: held-out relative PCK@0.1 per fitting epoch") -> Path:
    """``curves[label] = [[epochs done, relative PCK], ...]`` -> one line per label."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        points = np.asarray(curve, dtype=float).reshape(-1, 2)
        ax.plot(points[:, 0], points[:, 1], marker="." if len(points) > 20 else "o",
                label=short_label(label))
    ax.set_xlabel("fitting epochs")
    ax.set_ylabel("held-out relative PCK@0.1")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def write_attack_plots(card: dict, out_dir: Path) -> list[Path]:
    """The card's plots into ``out_dir``; a transfer run adds its surrogate -> model row."""
    out_dir = Path(out_dir)
    paths = [plot_relative(card, out_dir / "attack_relative.png"),
             plot_joints(card, out_dir / "attack_joints.png")]
    surrogates = sorted({r["surrogate"] for r in card["cells"] if r.get("surrogate")})
    if surrogates:
        top = max(r["eps"] for r in card["cells"])
        # relative PCK@0.1: defined for every data set (a clean AP of 0 has no ratio)
        matrix = {s: {card["model"]: next((r.get("relative_pck") for r in card["cells"]
                                           if r.get("surrogate") == s and r["eps"] == top), None)}
                  for s in surrogates}
        paths.append(plot_transfer_matrix(matrix, out_dir / "attack_transfer.png",
                                          f"relative PCK@0.1 at eps {top:g}"))
    curves = {r["key"]: r["uap_curve"] for r in card["cells"] if r.get("uap_curve")}
    if curves:
        paths.append(plot_uap_curves(curves, out_dir / "attack_uap_curve.png"))
    return paths
