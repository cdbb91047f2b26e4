"""Several robustness cards side by side: one row per model, one column per face's
headline figure, sortable; markdown, CSV and a bar figure (one panel per column).

:func:`compare_cards` takes cards (dicts), ``card.json`` files, or folders: a card's
folder (``card.json``), or a run folder of one face (a benchmark run's ``summary.json``,
an attack run's ``attack.json``, a stability run's ``stability.json``), which becomes a
card with that one face. :func:`write_comparison` writes ``compare.md``,
``compare.csv`` and ``compare.png``.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from robustpose.reports.card import CARD_FILE, card_from_faces, read_card
from robustpose.reports.card_figure import fmt
from robustpose.utils.io import atomic_write_text

#: a run folder's file -> the face it holds (the order is the lookup order)
FACE_FILES = {"summary.json": "benchmark", "attack.json": "attack", "stability.json": "stability"}
#: columns where smaller is better (sorted ascending by ``sort_by``)
LOWER_IS_BETTER = ("R/kp", "D_n", "mCE", "rel. mCE")
UNITS = {"R/kp": "heatmap px^2", "RUC area": "fraction", "D_n": "heatmap px^2",
         "mCE": "% of baseline's errors", "rel. mCE": "% of baseline's"}


def headline(card: Mapping) -> dict[str, float | None]:
    """The card's headline figures, one per comparison column: clean (``AP*`` or
    ``PCKh*``), mPC, rPC, relative metric / PCK at each eps (``relAP@8``: percent of
    clean), R per keypoint, RUC area and D_n (pooled over the perturbed cells), and the box
    perturbations' ``box`` (mean metric, percent) and ``box rel.`` (percent of clean);
    None where the card lacks the face (a card from before the box face: no ``box`` key)."""
    corruption, adv = card.get("corruption") or {}, card.get("adversarial") or {}
    stab, box = card.get("stability") or {}, card.get("box") or {}
    metric = card["dataset"]["metric"]
    row: dict[str, float | None] = {f"{metric}*": card["clean"]["value"],
                                    "mPC": corruption.get("mPC"), "rPC": corruption.get("rPC")}
    for r in adv.get("per_eps", []):
        row[f"rel{metric}@{r['eps']:g}"] = r["relative_metric"]
        row[f"relPCK@{r['eps']:g}"] = r["relative_pck"]
    row.update({"R/kp": stab.get("R_per_keypoint"), "RUC area": stab.get("RUC_area"),
                "D_n": stab.get("D_n"), "box": box.get("mean"), "box rel.": box.get("relative")})
    return row


def load_card(item: Mapping | str | Path) -> dict:
    """A card from a dict, a ``card.json``, a card's folder or a one-face run folder."""
    if isinstance(item, Mapping):
        from robustpose.reports.card import validate_card

        return validate_card(item)
    path = Path(item)
    if path.is_file() or (path / CARD_FILE).is_file():
        return read_card(path)
    for name, face in FACE_FILES.items():
        if (path / name).is_file():
            try:
                data = json.loads((path / name).read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ValueError(f"{path / name}: not JSON ({exc.msg})") from None
            faces = {f: (data if f == face else None) for f in FACE_FILES.values()}
            return card_from_faces(faces["benchmark"], faces["attack"], faces["stability"],
                                   {"runs": {face: str(path)}})
    raise FileNotFoundError(f"{path}: no {CARD_FILE}, summary.json, attack.json or "
                            "stability.json (not a card nor a finished run folder)")


@dataclass
class CardTable:
    """One row per model: ``model``, ``dataset``, ``budget`` then the headline columns
    (values in percent, except R/kp and D_n in heatmap px^2 and the RUC area, a fraction;
    None where a card lacks the face)."""

    columns: list[str]
    rows: list[dict] = field(default_factory=list)

    def sort(self, by: str, best_first: bool = True) -> "CardTable":
        """Rows by column ``by``, best first (largest, or smallest for R/kp and D_n);
        rows without a value last."""
        if by not in self.columns and by != "model":
            raise ValueError(f"sort_by {by!r}: choose from model, {', '.join(self.columns)}")
        ascending = (by in LOWER_IS_BETTER or by == "model") == best_first
        have = [r for r in self.rows if r.get(by) is not None]
        have.sort(key=lambda r: r[by], reverse=not ascending)
        return CardTable(self.columns, have + [r for r in self.rows if r.get(by) is None])

    def to_markdown(self) -> str:
        head = ["model", "dataset", "budget"] + [
            f"{c} ({UNITS[c]})" if c in UNITS else c for c in self.columns]
        lines = ["| " + " | ".join(head) + " |",
                 "|---|---|---|" + "---:|" * len(self.columns)]
        for r in self.rows:
            lines.append(f"| {r['model']} | {r['dataset']} | {r['budget']} | " + " | ".join(
                _fmt(c, r.get(c)) for c in self.columns) + " |")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["model", "dataset", "budget"] + self.columns)
        for r in self.rows:
            writer.writerow([r["model"], r["dataset"], r["budget"]]
                            + ["" if r.get(c) is None else r[c] for c in self.columns])
        return buffer.getvalue()


def _fmt(column: str, value: Any) -> str:
    return fmt(value, ".3f" if column in ("R/kp", "RUC area") else ".1f")


def compare_cards(items: Sequence[Mapping | str | Path], sort_by: str | None = None,
                  best_first: bool = True) -> CardTable:
    """The comparison table of ``items`` (cards or folders, see the module doc); rows in
    the given order, or sorted by column ``sort_by``. Two rows of one model name are
    told apart by their position (``name [2]``); cards of different metrics (AP vs
    PCKh) are refused."""
    cards = [load_card(item) for item in items]
    if not cards:
        raise ValueError("compare_cards: no card given")
    metrics = {c["dataset"]["metric"] for c in cards}
    if len(metrics) > 1:
        raise ValueError(f"compare_cards: cards of different metrics ({', '.join(sorted(metrics))}) "
                         "do not share columns; compare cards of one dataset")
    columns: list[str] = []
    rows = []
    names = [c["model"]["name"] for c in cards]
    for i, card in enumerate(cards):
        values = headline(card)
        columns.extend(k for k in values if k not in columns)
        name = names[i] if names.count(names[i]) == 1 else f"{names[i]} [{i + 1}]"
        rows.append({"model": name, "dataset": card["dataset"]["name"],
                     "budget": card["budget"]["name"], **values})
    order = [c for c in columns if not c.startswith("rel")]  # clean, mPC, rPC, ... then eps
    eps_cols = sorted((c for c in columns if c.startswith("rel")),
                      key=lambda c: (float(c.split("@")[1]), c.startswith("relPCK")))
    columns = order[:3] + eps_cols + order[3:]
    table = CardTable(columns, rows)
    return table.sort(sort_by, best_first) if sort_by else table


def add_columns(table: CardTable, values: Sequence[Mapping[str, float | None]]) -> CardTable:
    """``table`` with more columns, one mapping per row in the table's row order (e.g. the
    mCE against the first model, computed from the runs' cells by the caller)."""
    if len(values) != len(table.rows):
        raise ValueError(f"add_columns: {len(values)} value rows for {len(table.rows)} models")
    columns = list(table.columns) + [k for v in values[:1] for k in v if k not in table.columns]
    return CardTable(columns, [{**row, **dict(v)} for row, v in zip(table.rows, values)])


def plot_comparison(table: CardTable, path: str | Path) -> Path:
    """One bar panel per column, one bar (one colour) per model; a missing value is
    marked 'n/a'."""
    from robustpose.reports.plots import _pyplot, _save

    plt = _pyplot()
    ncols = min(4, len(table.columns))
    nrows = -(-len(table.columns) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols + 1.5, 2.9 * nrows),
                             squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for ax, column in zip(axes.flat, table.columns):
        for i, row in enumerate(table.rows):
            value = row.get(column)
            ax.bar(i, 0.0 if value is None else value, color=colours[i % len(colours)],
                   label=row["model"])
            ax.text(i, 0.0 if value is None else value, "n/a" if value is None
                    else _fmt(column, value), ha="center", va="bottom", fontsize=7)
        top = max([r.get(column) or 0.0 for r in table.rows] + [0.0])
        ax.set_ylim(0.0, 1.15 * top if top > 0 else 1.0)  # a 0.0 bar stays visible as 0.0
        better = "lower" if column in LOWER_IS_BETTER else "higher"
        ax.set_title(f"{column} ({better} is better)", fontsize=9)
        ax.set_ylabel(UNITS.get(column, "percent"), fontsize=8)
        ax.set_xticks([])
    for ax in list(axes.flat)[len(table.columns):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8,
               bbox_to_anchor=(0.5, -0.02 - 0.03 * (len(labels) // 4)))
    fig.suptitle(f"robustness cards of {len(table.rows)} model(s)")
    fig.tight_layout()
    return _save(fig, Path(path))


def write_comparison(table: CardTable, out: str | Path, plots: bool = True) -> dict[str, Path]:
    """``compare.md``, ``compare.csv`` and (``plots``) ``compare.png`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "compare.md", "csv": out / "compare.csv"}
    atomic_write_text(paths["markdown"], table.to_markdown())
    atomic_write_text(paths["csv"], table.to_csv())
    if plots:
        paths["figure"] = plot_comparison(table, out / "compare.png")
    return paths
