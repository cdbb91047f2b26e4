"""Tables of a benchmark run in the AdvMix paper's Table 1 layout (markdown and CSV).

Row: model | AP* (or PCKh*) | mPC | rPC | mRR (PoseBench's mean resilience rate; with one
clean score it equals rPC, shown under its own name) | the per-corruption figures (mean
over the severities) grouped noise / blur / weather / digital, then any extra corruptions,
then the box perturbations (family ``box``: the person box moved, not the pixels).
Values come from the robustness card (``summary.json``), in percent.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from robustpose.corruptions.params import FAMILIES, FAMILY_OF
from robustpose.corruptions.selection import BOX_PERTURBATIONS
from robustpose.utils.io import atomic_write_text

#: FAMILIES: the 15 benchmark corruptions by family, in the paper's column order;
#: FAMILY_OF: the family of each of the 19 (the 4 extras by their kind).
SHORT_NAMES: dict[str, str] = {
    "gaussian_noise": "Gauss", "shot_noise": "Shot", "impulse_noise": "Impulse",
    "defocus_blur": "Defocus", "glass_blur": "Glass", "motion_blur": "Motion",
    "zoom_blur": "Zoom", "snow": "Snow", "frost": "Frost", "fog": "Fog",
    "brightness": "Bright", "contrast": "Contrast", "elastic_transform": "Elastic",
    "pixelate": "Pixel", "jpeg_compression": "JPEG", "speckle_noise": "Speckle",
    "gaussian_blur": "GBlur", "spatter": "Spatter", "saturate": "Saturate",
    "box_shift": "BoxShift", "box_scale": "BoxScale", "box_aspect": "BoxAspect",
    "box_jitter": "BoxJitter",
}


def family_of(name: str) -> str:
    """The column group of a corruption: its family, ``box`` for a box perturbation."""
    return "box" if name in BOX_PERTURBATIONS else FAMILY_OF.get(name, "other")


def ordered_corruptions(names: Any) -> list[str]:
    """Paper column order: the 15 by family, then extras in their given order, then the box
    perturbations."""
    names = list(names)
    paper = [n for family in FAMILIES.values() for n in family if n in names]
    rest = [n for n in names if n not in paper]
    return (paper + [n for n in rest if n not in BOX_PERTURBATIONS]
            + [n for n in rest if n in BOX_PERTURBATIONS])


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def metric_settings_text(card: dict) -> str | None:
    """The OKS AP metric's person-score and NMS settings of a card, in one phrase, e.g.
    ``score_mode bbox_keypoint (keypoint_score_thr 0.2), nms_mode oks_nms (nms_thr 0.9)``;
    None for a metric without them (PCKh). Cards written before these names existed
    (``rescore`` / ``use_nms`` / ``vis_thr``) are read too. ``, area_rule crowdpose`` (or
    ``bbox``) follows when the GT area was not the json's own."""
    settings = (card.get("conventions") or {}).get("metric_settings") or {}
    score_mode = settings.get("score_mode")
    if score_mode is None and "rescore" in settings:
        score_mode = "bbox_keypoint" if settings["rescore"] else "bbox"
    nms_mode = settings.get("nms_mode")
    if nms_mode is None and "use_nms" in settings:
        nms_mode = "oks_nms" if settings["use_nms"] else "none"
    if score_mode is None or nms_mode is None:
        return None
    thr = settings.get("keypoint_score_thr", settings.get("vis_thr"))
    text = f"score_mode {score_mode}"
    if score_mode == "bbox_keypoint" and thr is not None:
        text += f" (keypoint_score_thr {thr:g})"
    text += f", nms_mode {nms_mode}"
    if nms_mode == "oks_nms" and settings.get("nms_thr") is not None:
        text += f" (nms_thr {settings['nms_thr']:g})"
    if settings.get("area_rule") not in (None, "json"):  # GT area not the json's (CrowdPose)
        text += f", area_rule {settings['area_rule']}"
    return text


def table_rows(card: dict) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, [row], corruption names) for one card; the header uses short names."""
    metric = card.get("metric", "AP")
    names = ordered_corruptions(card.get("per_corruption", {}))
    header = (["Model", f"{metric}*", "mPC", "rPC", "mRR"]
              + [SHORT_NAMES.get(n, n) for n in names])
    row = [str(card.get("model", "?")), _fmt(card.get("clean")), _fmt(card.get("mPC")),
           _fmt(card.get("rPC")), _fmt(card.get("mRR"))] + [_fmt(card["per_corruption"][n])
                                                           for n in names]
    return header, [row], names


def markdown_table(card: dict) -> str:
    """The Table 1 row as markdown, with a line naming the families of the columns."""
    header, rows, names = table_rows(card)
    groups = []
    for family in list(FAMILIES) + ["other", "box"]:
        members = [SHORT_NAMES.get(n, n) for n in names if family_of(n) == family]
        if members:
            groups.append(f"{family}: {', '.join(members)}")
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    conventions = card.get("conventions", {})
    note = (f"{card.get('metric', 'AP')} in percent on {card.get('dataset', '?')}; "
            f"per-corruption = mean over severities {card.get('severities', [])}; "
            f"rPC = mPC / clean; mRR = PoseBench's mean resilience rate (= rPC with one "
            f"clean score). Boxes: {conventions.get('boxes', '?')}, flip test: "
            f"{conventions.get('flip_test', '?')}.")
    metric_text = metric_settings_text(card)
    if metric_text:
        note += f" Metric: {metric_text}."
    if card.get("box"):
        box = card["box"]
        note += (f" Box perturbations (not in mPC): mean {_fmt(box.get('mean'))}, relative "
                 f"{_fmt(box.get('relative'))} % of clean.")
    if card.get("mPC_note"):
        note += " " + card["mPC_note"]
    return "\n".join(lines) + "\n\n" + "; ".join(groups) + ".\n" + note + "\n"


def csv_table(card: dict) -> str:
    """The same row as CSV with full corruption names as column headers."""
    _, rows, names = table_rows(card)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", f"{card.get('metric', 'AP')}_clean", "mPC", "rPC", "mRR"] + names)
    writer.writerows(rows)
    return buffer.getvalue()


def write_tables(card: dict, out_dir: str | Path) -> list[Path]:
    """Write ``table.md`` and ``table.csv`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    md, cs = out_dir / "table.md", out_dir / "table.csv"
    atomic_write_text(md, markdown_table(card))
    atomic_write_text(cs, csv_table(card))
    return [md, cs]
