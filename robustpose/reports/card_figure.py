"""The robustness card's figure (``card.png``): its faces in one 2 x 2 figure.

Split from :mod:`robustpose.reports.card` (which writes the card and calls
:func:`plot_card`); :func:`fmt` is the one number format of the card's page and figure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

def fmt(value: Any, spec: str = ".1f") -> str:
    """``value`` formatted by ``spec``; '-' for None (a figure not measured)."""
    return "-" if value is None else format(float(value), spec)


def _missing(ax: Any, face: str, card: Mapping) -> None:
    skipped = card["budget"]["skipped"]
    ax.text(0.5, 0.5, f"{face}: not measured" + (f"\n(budget {card['budget']['name']})"
                                                  if skipped else ""),
            ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(face)


def plot_card(card: Mapping, path: str | Path) -> Path:
    """The faces in one figure (2 x 2): clean; corruption per family and, right of a
    dotted line, the box perturbations (percent); adversarial relative metric / PCK
    against eps; stability's RUC curve."""
    from robustpose.reports.plots import _pyplot, _save

    plt = _pyplot()
    metric = card["dataset"]["metric"]
    fig, axes = plt.subplots(2, 2, figsize=(11.0, 8.0))
    (ax_clean, ax_corr), (ax_adv, ax_stab) = axes
    clean = card["clean"]
    bars = [(k, v) for k, v in ((f"{metric}*", clean["value"]), ("PCK@0.1", clean["pck"]))
            if v is not None]
    if bars:
        ax_clean.bar([k for k, _ in bars], [v for _, v in bars], color=["#4C72B0", "#8172B3"][:len(bars)])
        for i, (_, v) in enumerate(bars):
            ax_clean.text(i, v + 1.0, f"{v:.1f}", ha="center", fontsize=9)
        ax_clean.set_ylim(0, 105)
        ax_clean.set_ylabel("clean score (%)")
        ax_clean.set_title("clean")
    else:
        _missing(ax_clean, "clean", card)
    corr, box = card.get("corruption"), card.get("box")
    if corr or box:
        _corruption_panel(ax_corr, corr, box, metric, clean["value"])
    else:
        _missing(ax_corr, "corruption", card)
    adv = card.get("adversarial")
    if adv and adv["per_eps"]:
        eps = [r["eps"] for r in adv["per_eps"]]
        for key, label, style in (("relative_metric", f"relative {metric}", "o-"),
                                  ("relative_pck", "relative PCK@0.1", "s--")):
            ax_adv.plot(eps, [float("nan") if r[key] is None else r[key] for r in adv["per_eps"]],
                        style, label=label)
        ax_adv.set_xticks(eps)
        ax_adv.set_xlabel("eps (0..255 scale)")
        ax_adv.set_ylabel("attacked / clean (%)")
        top = max([r[k] or 0.0 for r in adv["per_eps"] for k in ("relative_metric", "relative_pck")])
        ax_adv.set_ylim(0, max(105.0, top + 5.0))  # a steadier-than-clean cell may pass 100
        ax_adv.set_title(f"adversarial: {adv['attack']} ({adv['access']})")
        ax_adv.legend(fontsize=8)
    else:
        _missing(ax_adv, "adversarial", card)
    stab = card.get("stability")
    if stab and stab.get("RUC"):
        xs = stab.get("RUC_thresholds_heatmap_px") or list(range(len(stab["RUC"])))
        ax_stab.plot(xs, stab["RUC"], "o-", color="#55A868",
                     label=f"RUC area {fmt(stab['RUC_area'], '.3f')}")
        ax_stab.set_ylim(0, 1.05)
        ax_stab.set_xlabel("displacement threshold P (heatmap px)")
        ax_stab.set_ylabel("fraction of keypoints moved <= P")
        ax_stab.set_title(f"stability: R/kp {fmt(stab['R_per_keypoint'], '.3f')} px^2, "
                          f"D_n {fmt(stab['D_n'])}")
        ax_stab.legend(fontsize=8, loc="lower right")
    else:
        _missing(ax_stab, "stability", card)
    fig.suptitle(f"{card['model']['name']} on {card['dataset']['name']} "
                 f"(budget {card['budget']['name']})")
    fig.tight_layout()
    return _save(fig, Path(path))


def _corruption_panel(ax: Any, corr: Mapping | None, box: Mapping | None, metric: str,
                      clean: float | None) -> None:
    """Bars of the metric under corruption per family (or per corruption) and, after a
    dotted separator, one hatched bar per box perturbation (mean over its severities):
    the two groups share the y axis (percent) but not mPC (box cells stay out of it)."""
    from robustpose.reports.plots import FAMILY_COLOURS
    from robustpose.reports.tables import family_of

    groups = (corr["per_family"] or corr["per_corruption"]) if corr else {}
    names = list(groups)
    ax.bar(range(len(names)), [groups[n] or 0.0 for n in names],
           color=[FAMILY_COLOURS.get(n, FAMILY_COLOURS.get(family_of(n))) for n in names])
    boxes = list((box or {}).get("per_perturbation") or {})
    if boxes:
        if names:
            ax.axvline(len(names) - 0.5, color="grey", linestyle=":", linewidth=1.0)
        xs = range(len(names), len(names) + len(boxes))
        ax.bar(xs, [box["per_perturbation"][n] or 0.0 for n in boxes], color=FAMILY_COLOURS["box"],
               hatch="//", edgecolor="white",
               label=f"box (not in mPC): mean {fmt(box.get('mean'))}, "
                     f"rel. {fmt(box.get('relative'))}%")
    labels = names + boxes
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    if clean is not None:
        ax.axhline(clean, color="black", linestyle="--", label=f"clean {clean:.1f}")
    if corr and corr["mPC"] is not None:
        ax.axhline(corr["mPC"], color="grey", linestyle=":", label=f"mPC {corr['mPC']:.1f}")
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"{metric} under corruption (%)")
    title = "corruption"
    if corr:
        title += (f": rPC {fmt(corr['rPC'])}% "
                  f"({'per family' if corr['per_family'] else 'per corruption'})")
    ax.set_title(title + (" | box perturbations" if boxes else ""))
    ax.legend(fontsize=7)
