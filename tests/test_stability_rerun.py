"""Issue 24 item 4: a stability perturbation added on a rerun has its table row, JSON row
and plot bar, and ``cells.expected`` counts it (run.json's requested lists grow with every
rerun, as the benchmark's corruptions do)."""
from __future__ import annotations

import json

import robustpose.reports.stability_plots as stability_plots
from robustpose.benchmarking.stability_run import run_stability


def _run(tmp_path, perturbations, **kw):
    return run_stability(max_images=2, perturbations=perturbations, severities="1", workers=0,
                         out=tmp_path / "run", progress=False, **kw)


def test_a_perturbation_added_on_a_rerun_has_its_rows(tmp_path, monkeypatch) -> None:
    drawn: list[list[str]] = []
    draw = stability_plots.plot_r_per_perturbation

    def spy(cards, path):
        drawn.append([n for c in cards for n in c["per_perturbation"]])
        return draw(cards, path)

    monkeypatch.setattr(stability_plots, "plot_r_per_perturbation", spy)
    _run(tmp_path, "fog", plots=False)
    card = _run(tmp_path, "fog,contrast")
    assert list(card["per_perturbation"]) == ["fog", "contrast"]
    assert card["cells"] == {"done": 2, "expected": 2, "missing": []}
    assert not card["incomplete"]
    assert card["overall"]["cells"] == 2
    saved = json.loads((tmp_path / "run" / "stability.json").read_text())
    assert list(saved["per_perturbation"]) == ["fog", "contrast"]
    table = (tmp_path / "run" / "stability.md").read_text()
    assert "| contrast |" in table and "| fog |" in table
    assert drawn[-1] == ["fog", "contrast"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["perturbations"] == \
        ["fog", "contrast"]
    # a rerun asking for fewer keeps the whole set; a new severity is counted as missing
    # until measured (never a card that looks complete)
    assert list(_run(tmp_path, "contrast", plots=False)["per_perturbation"]) == \
        ["fog", "contrast"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    run["severities"] = [1, 2]  # as a rerun asking for severity 2 records before its cells
    (tmp_path / "run" / "run.json").write_text(json.dumps(run))
    from robustpose.benchmarking.run_folder import RunFolder
    from robustpose.benchmarking.stability_card import build_stability_card

    card = build_stability_card(RunFolder(tmp_path / "run"))
    assert card["cells"]["expected"] == 4 and card["incomplete"]
    assert card["cells"]["missing"] == ["fog/2", "contrast/2"]
