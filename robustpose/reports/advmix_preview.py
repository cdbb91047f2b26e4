"""The AdvMix picture of one batch (the paper's Fig. 3): views, mixing weights, the mix.

One row per crop: the clean crop and its K augmented views, the K + 1 mixing-weight
("attention") maps of the generator as heat images on one shared [0, 1] scale, and the
mix with the ground-truth skeleton (wide, green) and the pose model's prediction on the
mix (thin, red) drawn on it. Pure drawing: the caller (``robustpose advmix-preview``) runs the
models; arrays in, PNG out (matplotlib, Agg backend).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from robustpose.reports.plots import _pyplot
from robustpose.utils.io import atomic_path

GT_COLOUR, PRED_COLOUR = "#2ecc40", "#ff4136"
WEIGHT_CMAP = "magma"
WEIGHT_LEVELS = 32  # discrete colours: readable steps, a PNG a quarter the size
INTERPOLATION = "nearest"  # crop pixels as they are (and a smaller PNG than bilinear)


def _image(crop: np.ndarray) -> np.ndarray:
    """3 x H x W float in [0, 1] -> H x W x 3 for imshow."""
    return np.clip(np.transpose(np.asarray(crop, dtype=np.float32), (1, 2, 0)), 0.0, 1.0)


def _skeleton(ax, joints: np.ndarray, skeleton: Sequence[tuple[int, int]], colour: str,
              threshold: float, width: float, dot: float, zorder: int) -> None:
    """Limbs and joints of one pose (K, 3: x, y in crop px, visibility or score)."""
    shown = joints[:, 2] > threshold
    for a, b in skeleton:
        if shown[a] and shown[b]:
            ax.plot([joints[a, 0], joints[b, 0]], [joints[a, 1], joints[b, 1]], color=colour,
                    linewidth=width, solid_capstyle="round", zorder=zorder)
    ax.scatter(joints[shown, 0], joints[shown, 1], s=dot, c=colour, linewidths=0, zorder=zorder)


#: figure margins in inches: top (title, column names), bottom (colour bar, legend), left
MARGINS = (0.75, 0.65, 0.3)


def figure_inches(n: int, v: int, crop_hw: tuple[int, int], panel_inches: float = 1.25
                  ) -> tuple[float, float]:
    """(width, height) in inches of the grid of ``n`` crops and ``v`` views: 2v + 1 panels
    a row, each ``panel_inches`` wide at the crop's aspect ratio (+4 % spacing), plus the
    :data:`MARGINS`; the PNG is that times ``dpi`` pixels."""
    top, bottom, left = MARGINS
    h, w = crop_hw
    return ((2 * v + 1) * panel_inches * 1.04 + left + 0.1,
            n * panel_inches * h / w * 1.04 + top + bottom)


def check_preview_arrays(views: np.ndarray, weights: np.ndarray, mixed: np.ndarray,
                         gt: np.ndarray, pred: np.ndarray, view_names: Sequence[str]) -> None:
    """One-line ValueError unless the shapes agree (see :func:`write_advmix_preview`)."""
    if views.ndim != 5 or views.shape[2] != 3:
        raise ValueError(f"advmix preview: views must be N x V x 3 x H x W, got {views.shape}")
    n, v, _, h, w = views.shape
    k = gt.shape[1] if gt.ndim == 3 else -1
    expected = {"weights": (weights.shape, (n, v, h, w)), "mixed": (mixed.shape, (n, 3, h, w)),
                "gt": (gt.shape, (n, k, 3)), "pred": (pred.shape, (n, k, 3))}
    for name, (got, want) in expected.items():
        if tuple(got) != tuple(want):
            raise ValueError(f"advmix preview: {name} has shape {tuple(got)}, expected {tuple(want)}")
    if len(view_names) != v:
        raise ValueError(f"advmix preview: {len(view_names)} view names for {v} views")


def write_advmix_preview(path: str | Path, views: np.ndarray, weights: np.ndarray,
                         mixed: np.ndarray, gt: np.ndarray, pred: np.ndarray,
                         skeleton: Sequence[tuple[int, int]], view_names: Sequence[str],
                         title: str = "", row_labels: Sequence[str] | None = None,
                         score_threshold: float = 0.2, panel_inches: float = 1.25,
                         dpi: int = 100, palette: bool = True) -> Path:
    """Write the grid as a PNG (atomically) and return its path.

    Args:
        views: N x V x 3 x H x W float in [0, 1]: the clean crop first, then the K views.
        weights: N x V x H x W mixing weights (summing to 1 over V); a per-image weight is
            given as constant maps.
        mixed: N x 3 x H x W, ``sum_v weights[:, v] * views[:, v]``.
        gt: N x K x 3 ground-truth joints in crop px (x, y, visibility 0/1).
        pred: N x K x 3 predicted joints on the mix in crop px (x, y, score); joints with a
            score <= ``score_threshold`` are not drawn.
        skeleton: 0-based limb pairs (``KeypointSpec.skeleton``).
        view_names: V column names ('clean', 'AutoAugment', 'GridMask').
        row_labels: N labels written left of each row (e.g. the image id).
        palette: write a 256-colour PNG (about a third of the size of a true-colour one).

    The grid is N rows x (2V + 1) columns, each panel ``panel_inches`` wide at the crop's
    aspect ratio.
    """
    views, weights, mixed = (np.asarray(a, dtype=np.float32) for a in (views, weights, mixed))
    gt, pred = np.asarray(gt, dtype=np.float32), np.asarray(pred, dtype=np.float32)
    check_preview_arrays(views, weights, mixed, gt, pred, view_names)
    n, v, _, h, w = views.shape
    cols = 2 * v + 1
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig_w, fig_h = figure_inches(n, v, (h, w), panel_inches)
    top_in, bottom_in, left_in = MARGINS
    fig, axes = plt.subplots(n, cols, squeeze=False, figsize=(fig_w, fig_h), gridspec_kw={
        "wspace": 0.04, "hspace": 0.04, "left": left_in / fig_w, "right": 1 - 0.1 / fig_w,
        "top": 1 - top_in / fig_h, "bottom": bottom_in / fig_h})
    heat, cmap = None, plt.get_cmap(WEIGHT_CMAP, WEIGHT_LEVELS)
    for i in range(n):
        for j in range(v):
            axes[i, j].imshow(_image(views[i, j]), interpolation=INTERPOLATION)
            heat = axes[i, v + j].imshow(weights[i, j], cmap=cmap, vmin=0.0, vmax=1.0,
                                         interpolation=INTERPOLATION)
        ax = axes[i, 2 * v]
        ax.imshow(_image(mixed[i]), interpolation=INTERPOLATION)
        # ground truth wide underneath, the prediction thin on top: both stay visible
        # where they agree
        _skeleton(ax, gt[i], skeleton, GT_COLOUR, 0.0, width=2.6, dot=16, zorder=2)
        _skeleton(ax, pred[i], skeleton, PRED_COLOUR, score_threshold, width=1.0, dot=5, zorder=3)
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    headers = list(view_names) + [f"M {name}" for name in view_names] + ["mix: GT / pred"]
    for j, text in enumerate(headers):
        axes[0, j].set_title(text, fontsize=8)
    # the colour bar under the weight maps, the legend under the mix column
    first, last = axes[-1, v].get_position(), axes[-1, 2 * v - 1].get_position()
    bar_h = 0.1 / fig_h
    cax = fig.add_axes([first.x0, first.y0 - 0.12 / fig_h - bar_h, last.x1 - first.x0, bar_h])
    bar = fig.colorbar(heat, cax=cax, orientation="horizontal")
    bar.set_label("mixing weight (softmax over the views)", fontsize=7, labelpad=1)
    bar.ax.tick_params(labelsize=6, pad=1)
    handles = [Line2D([], [], color=GT_COLOUR, linewidth=2.6, label="ground truth"),
               Line2D([], [], color=PRED_COLOUR, linewidth=1.0,
                      label=f"prediction on the mix\n(score > {score_threshold:g})")]
    mix_box = axes[-1, 2 * v].get_position()
    fig.legend(handles=handles, loc="upper center", ncol=1, fontsize=6, frameon=False,
               bbox_to_anchor=((mix_box.x0 + mix_box.x1) / 2, mix_box.y0 - 0.02 / fig_h))
    if title:
        fig.suptitle(title, fontsize=8, y=1 - 0.08 / fig_h, va="top")
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    plt.close(fig)
    with atomic_path(path) as tmp:
        if palette:  # 256 colours: a third of the size, no visible loss on these panels
            from PIL import Image

            buffer.seek(0)
            with Image.open(buffer) as im:
                im.convert("RGB").quantize(256).save(tmp, format="PNG", optimize=True)
        else:
            tmp.write_bytes(buffer.getvalue())
    return path
