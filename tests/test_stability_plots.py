"""The stability plots' reading aids: every model's RUC curve keeps its own colour."""
from __future__ import annotations

from robustpose.reports import stability_plots


def test_ruc_curves_of_a_dozen_models_have_distinct_colours(monkeypatch, tmp_path):
    figures = []

    def keep(fig, path):
        figures.append(fig)
        return path

    monkeypatch.setattr(stability_plots, "_save", keep)
    cards = [{"model": f"m{i}", "overall": {"RUC": [0.1 * i, 0.5, 1.0], "RUC_area": 0.5},
              "ruc_thresholds_heatmap_px": [0, 1, 2]} for i in range(12)]
    stability_plots.plot_ruc(cards, tmp_path / "ruc.png")
    lines = figures[0].axes[0].get_lines()
    assert len(lines) == 12
    assert len({tuple(line.get_color()) if not isinstance(line.get_color(), str)
                else line.get_color() for line in lines}) == 12
