"""experiments/stable_miniature.py --quick end to end (the CI-sized version of the
stable-heatmap miniature): a 2-step pre-training, two Baseline seeds and one RCC row
fine-tuned from it, each measured by ``robustpose stability``; the table and the claim rows
come from the run folders (D_n / D_(1)(2) on the clean crops, pooled as an extra); the
ratio-matched rows; a stability folder of the earlier tie rule refused, then remeasured."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def driver(load_experiment):
    return load_experiment("stable_miniature")


@pytest.fixture(scope="module")
def quick_out(driver, tmp_path_factory):
    if not (Path(sys.executable).parent / "robustpose").is_file():
        pytest.skip("the robustpose console script is not installed beside this python")
    out = tmp_path_factory.mktemp("stable_mini")
    assert driver.main(["--quick", "--out", str(out), "--runs", "baseline_ft:0,baseline_ft:1,rcc:0"]) == 0
    return out


def test_rows_start_from_the_one_pretrained_checkpoint(quick_out):
    assert (quick_out / "pretrain" / "best.pt").is_file()
    for run in ("baseline_ft_s0", "baseline_ft_s1", "rcc_s0"):
        config = (quick_out / run / "config.yaml").read_text()
        assert str(quick_out / "pretrain" / "best.pt") in config
        card = json.loads((quick_out / run / "stability" / "stability.json").read_text())
        assert set(card["per_perturbation"]) >= {"gaussian_blur", "saturate"}


def test_table_has_the_seed_spread_and_claims_from_the_records(driver, quick_out):
    data = json.loads((quick_out / "stable_miniature.json").read_text())
    base = data["runs"]["baseline_ft"]
    assert [c["seed"] for c in base] == [0, 1]
    table = (quick_out / "stable_miniature.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| Baseline |"))
    d_n = [c["D_n"] for c in base]
    assert f"{sum(d_n) / 2:.1f} ± {(max(d_n) - min(d_n)) / 2:.1f}" in row
    # the main D_n / D_(1)(2) are the clean crops' (Table 1); the pooled ones an extra column
    header = table.splitlines()[0].split(" | ")
    assert header[2:4] == ["D_n", "D_(1)(2)"] and "D_n pooled" in header
    for c, seed in zip(base, (0, 1)):
        card = json.loads((quick_out / f"baseline_ft_s{seed}" / "stability" /
                           "stability.json").read_text())
        assert c["D_n"] == card["clean"]["D_n"] and c["D_12"] == card["clean"]["D_12"]
        assert c["D_n_pooled"] == card["overall"]["D_n"]
        assert c["D_12_mst"] == c["D_12"]          # Gaussian rows: the raw maps are MST's r
    claim = next(c for c in data["claims"] if c[0] == "RCC lowers D_n")
    rcc = data["runs"]["rcc"][0]["D_n"]
    apart = rcc < min(d_n) or rcc > max(d_n)     # one RCC seed against Baseline's range
    assert claim[2] == ("not shown (within the seed noise)" if not apart
                        else "yes" if rcc < sum(d_n) / 2 else "no")
    assert data["seed_noise"]["D_n"] == pytest.approx(max(d_n) - min(d_n))


def test_unknown_row_is_refused(driver, tmp_path):
    with pytest.raises(SystemExit, match="unknown run 'rccc'"):
        driver.main(["--out", str(tmp_path), "--runs", "rccc:0", "--table-only"])


def test_plots_show_every_measured_row(quick_out):
    from PIL import Image

    for name in ("stable_miniature.png", "stable_miniature_RUC.png"):
        with Image.open(quick_out / name) as image:
            assert image.size[0] > 300 and image.size[1] > 200


def test_every_row_has_d12_on_one_scale(quick_out):
    data = json.loads((quick_out / "stable_miniature.json").read_text())
    for row, seed in (("baseline_ft", 0), ("baseline_ft", 1), ("rcc", 0)):
        card = next(c for c in data["runs"][row] if c["seed"] == seed)
        assert card["normalisation"] == "raw"
        soft = json.loads((quick_out / f"{row}_s{seed}" / "stability_softmax" /
                           "stability.json").read_text())
        assert soft["conventions"]["d12_normalisation"] == "softmax"
        assert card["D_12_softmax"] == soft["clean"]["D_12"] != card["D_12"]


def test_match_ratio_writes_weights_and_trains_the_matched_row(driver, quick_out):
    assert driver.main(["--quick", "--out", str(quick_out), "--match-ratio", "1.0",
                        "--runs", "st_a_m:0"]) == 0
    matched = json.loads((quick_out / "matched_weights.json").read_text())
    assert matched["target_ratio"] == 1.0 and set(matched["rows"]) == set(driver.MATCHED)
    measured = json.loads((quick_out / "grad_ratio.json").read_text())["rows"]
    for row, entry in matched["rows"].items():
        m = measured[f"synthpose_mobilenetv2_{driver.MATCHED[row]}"]
        assert m["ratio"] == entry["config_ratio"] > 0
        # the ratio is linear in the weight: matched = config weight x target / ratio
        assert entry["weight"] == pytest.approx(entry["config_weight"] / entry["config_ratio"])
    config = (quick_out / "st_a_m_s0" / "config.yaml").read_text()
    assert f"alpha: {matched['rows']['st_a_m']['weight']}" in config
    table = (quick_out / "stable_miniature.md").read_text()
    assert any(line.startswith("| ST_a (matched) | 0 |") for line in table.splitlines())
    with pytest.raises(SystemExit, match="matched to ratio 1.0, asked 2.0"):
        driver.main(["--quick", "--out", str(quick_out), "--match-ratio", "2.0", "--runs", "st_a_m:0"])


def test_a_folder_of_the_earlier_tie_rule_is_refused_then_remeasured(driver, quick_out):
    run = quick_out / "rcc_s0" / "stability" / "run.json"
    settings = json.loads(run.read_text())
    del settings["conventions"]["dn_ties"]            # as the published miniature's folders
    run.write_text(json.dumps(settings))
    with pytest.raises(SystemExit, match="earlier D_n tie rule"):
        driver.main(["--out", str(quick_out), "--table-only"])
    with pytest.raises(SystemExit, match="--remeasure"):
        driver.main(["--quick", "--out", str(quick_out), "--runs", "rcc:0"])
    assert driver.main(["--quick", "--out", str(quick_out), "--runs", "rcc:0", "--remeasure"]) == 0
    assert (quick_out / "rcc_s0" / "stability.superseded" / "run.json").is_file()
    fresh = json.loads(run.read_text())["conventions"]
    assert fresh["dn_ties"] == "peak"
