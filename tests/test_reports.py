"""Tables and plots of a benchmark run, from a robustness card."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from robustpose.reports import markdown_table, write_plots, write_tables
from robustpose.reports.tables import FAMILIES, family_of, ordered_corruptions

BENCH15 = [n for names in FAMILIES.values() for n in names]


def make_card(names=BENCH15, severities=(1, 2, 3, 4, 5)) -> dict:
    rng = np.random.default_rng(0)
    per_cell = {n: {str(s): float(70 - 8 * s * rng.uniform(0.3, 1.2)) for s in severities}
                for n in names}
    per_corruption = {n: float(np.mean(list(v.values()))) for n, v in per_cell.items()}
    mpc = float(np.mean(list(per_corruption.values()))) if names else None
    return {"model": "toy", "dataset": "synth-val", "metric": "AP", "clean": 72.0,
            "mPC": mpc, "rPC": None if mpc is None else 100 * mpc / 72.0, "per_corruption": per_corruption,
            "per_cell": per_cell, "severities": list(severities),
            "per_severity": {str(s): float(np.mean([per_cell[n][str(s)] for n in names]))
                             for s in severities} if names else {},
            "conventions": {"boxes": "ground truth", "flip_test": True}}


def test_paper_column_order_and_families():
    shuffled = list(reversed(BENCH15)) + ["saturate"]
    assert ordered_corruptions(shuffled) == BENCH15 + ["saturate"]
    assert family_of("glass_blur") == "blur" and family_of("spatter") == "weather"
    assert len(BENCH15) == 15


def test_tables_have_the_table1_row(tmp_path):
    card = make_card()
    md, cs = write_tables(card, tmp_path)
    text = md.read_text()
    header = text.splitlines()[0]
    assert header.startswith("| Model | AP* | mPC | rPC | mRR | Gauss | Shot | Impulse | Defocus")
    assert header.rstrip(" |").endswith("JPEG")
    row = text.splitlines()[2].strip("| ").split(" | ")
    assert row[0] == "toy" and float(row[1]) == 72.0
    assert float(row[2]) == pytest.approx(card["mPC"], abs=0.05)
    rows = list(csv.DictReader(cs.open()))
    assert len(rows) == 1
    assert float(rows[0]["glass_blur"]) == pytest.approx(card["per_corruption"]["glass_blur"],
                                                         abs=0.05)
    assert list(rows[0])[5:] == BENCH15


def test_subset_card_says_mpc_is_not_over_15():
    card = make_card(names=["snow", "gaussian_noise"], severities=(1, 3))
    card["mPC_note"] = "mPC over 2 corruption(s), not the paper's 15."
    text = markdown_table(card)
    assert "| Gauss | Snow |" in text and "not the paper's 15" in text


def test_plots_are_written_as_png(tmp_path):
    paths = write_plots(make_card(), tmp_path)
    assert sorted(p.name for p in paths) == ["heatmap.png", "per_corruption.png",
                                             "per_severity.png"]
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave nothing behind


def test_no_corruption_means_no_plot(tmp_path):
    card = make_card(names=[])
    assert write_plots(card, tmp_path) == []


def test_metric_settings_are_named_under_the_tables():
    from robustpose.benchmarking.summary import format_table
    from robustpose.reports.tables import metric_settings_text

    card = make_card(names=["snow"], severities=(1,))
    card.update(worst=None, cells={"missing": []}, skipped_images=[])
    card["conventions"]["metric_settings"] = {"score_mode": "keypoint", "nms_mode": "oks_nms",
                                              "keypoint_score_thr": 0.2, "nms_thr": 0.8}
    text = "score_mode keypoint, nms_mode oks_nms (nms_thr 0.8)"
    assert metric_settings_text(card) == text
    assert f"metric: {text}" in format_table(card).splitlines()
    assert f"Metric: {text}." in markdown_table(card)
    # a card written before these names (rescore / use_nms / vis_thr) reads the same way
    card["conventions"]["metric_settings"] = {"rescore": True, "use_nms": False, "vis_thr": 0.2}
    assert metric_settings_text(card) == "score_mode bbox_keypoint (keypoint_score_thr 0.2), " \
                                         "nms_mode none"
    card["conventions"]["metric_settings"] = {"metric": "pckh"}  # PCKh: nothing to show
    assert metric_settings_text(card) is None and "metric:" not in format_table(card)
