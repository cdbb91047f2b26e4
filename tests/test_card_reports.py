"""The robustness card (schema v1) and the card comparison, on tiny real runs of the
three faces (bundled model, 2 SynthPose images, 1 corruption + 1 box perturbation / 2 eps /
1 severity)."""
from __future__ import annotations

import copy
import json

import pytest

from robustpose.reports.card import (SCHEMA, VERSION, card_from_faces, format_card, read_card,
                                     validate_card, write_card)
from robustpose.reports.card_compare import compare_cards, headline, write_comparison


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from robustpose.benchmarking import run_benchmark
    from robustpose.benchmarking.attack_run import run_attack
    from robustpose.benchmarking.stability_run import run_stability

    root = tmp_path_factory.mktemp("card_faces")
    common = {"max_images": 2, "progress": False, "plots": False}
    bench = run_benchmark(corruptions="gaussian_noise,box_jitter", severities="3", out=root / "b",
                          workers=0, **common)
    run_attack("igsm", eps="2,8", steps="2", out=root / "a", **common)
    run_stability(perturbations="heldout5", severities="1", out=root / "s", workers=0,
                  **common)
    attack = json.loads((root / "a" / "attack.json").read_text())
    stability = json.loads((root / "s" / "stability.json").read_text())
    return {"root": root, "bench": bench, "attack": attack, "stability": stability}


@pytest.fixture(scope="module")
def card(faces):
    return card_from_faces(faces["bench"], faces["attack"], faces["stability"],
                           {"budget": "quick", "skipped": ["14 of 15 corruptions"],
                            "runs": {"attack": str(faces["root"] / "a"),
                                     "stability": str(faces["root"] / "s")}})


def test_card_traces_every_face_to_its_run(card, faces):
    bench, attack, stab = faces["bench"], faces["attack"], faces["stability"]
    assert card["schema"] == SCHEMA and card["version"] == VERSION
    assert card["model"] == {"name": bench["model"], "kind": "bundled",
                             "weights_sha256": bench["conventions"]["weights_sha256"]}
    assert card["clean"]["value"] == bench["clean"]
    assert card["clean"]["pck"] == pytest.approx(100 * attack["clean"]["pck"], abs=1e-3)
    corr = card["corruption"]
    assert (corr["mPC"], corr["rPC"]) == (bench["mPC"], bench["rPC"])
    assert corr["corruptions"] == ["gaussian_noise"] and corr["severities"] == [3]
    # the box cell is the box face's, not the corruption face's (nor in mPC, summary.py)
    assert set(corr["per_cell"]) == set(corr["per_corruption"]) == {"gaussian_noise"}
    assert corr["mPC"] == pytest.approx(bench["per_cell"]["gaussian_noise"]["3"])
    box = card["box"]
    assert box["perturbations"] == ["box_jitter"] and box["severities"] == [3]
    assert box["per_cell"] == {"box_jitter": bench["per_cell"]["box_jitter"]}
    assert box["mean"] == bench["box"]["mean"] == pytest.approx(bench["per_cell"]["box_jitter"]["3"])
    assert box["relative"] == pytest.approx(100 * box["mean"] / bench["clean"], abs=1e-3)
    assert box["magnitudes"]["box_jitter"][2] == 0.06 and box["complete"] is True
    adv = card["adversarial"]
    assert adv["attack"] == "IGSM-2" and adv["access"] == "gradient"
    assert [r["eps"] for r in adv["per_eps"]] == [2.0, 8.0]
    cells = {c["eps"]: c for c in attack["cells"]}
    for row in adv["per_eps"]:
        assert row["relative_pck"] == pytest.approx(100 * cells[row["eps"]]["relative_pck"], abs=1e-3)
        assert row["relative_metric"] == pytest.approx(
            100 * cells[row["eps"]]["relative_metric"], abs=1e-3)
    s = card["stability"]
    assert s["held_out"] is True and len(s["perturbations"]) == 5
    assert s["R_per_keypoint"] == stab["overall"]["R_heatmap"]["mean"]
    assert s["RUC_area"] == stab["overall"]["RUC_area"] and s["D_n"] == stab["overall"]["D_n"]
    assert card["runs"]["benchmark"] == bench["run_dir"]
    assert card["budget"] == {"name": "quick", "skipped": ["14 of 15 corruptions"]}


def test_write_card_round_trips_and_is_deterministic(card, tmp_path):
    paths = write_card(card, tmp_path / "one")
    assert read_card(tmp_path / "one") == json.loads(json.dumps(card))
    page = paths["markdown"].read_text()
    assert card["model"]["name"] in page and "IGSM-2 (gradient)" in page
    assert f"mPC {card['corruption']['mPC']:.1f}" in page
    assert f"| box | mean {card['box']['mean']:.1f}" in page and "| box_jitter | 0.02, 0.04" in page
    assert paths["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = write_card(card, tmp_path / "two")
    assert again["figure"].read_bytes() == paths["figure"].read_bytes()


def test_a_card_with_missing_faces_says_so(faces, tmp_path):
    card = card_from_faces(faces["bench"], None, None, {"budget": "quick",
                                                        "skipped": ["adversarial", "stability"]})
    assert card["adversarial"] is None and card["stability"] is None
    page = format_card(card)
    assert page.count("not measured") == 2 and "skipped: adversarial; stability" in page
    assert write_card(card, tmp_path)["figure"].is_file()
    stability_only = card_from_faces(None, None, faces["stability"])
    assert stability_only["box"] is None and "| box | not measured |" in format_card(stability_only)


def test_a_card_written_before_the_box_face_still_reads(card, tmp_path):
    old = copy.deepcopy(card)
    del old["box"]  # card.json files from before the box face have no 'box' key
    (tmp_path / "card.json").write_text(json.dumps(old))
    assert "box" not in read_card(tmp_path) and "| box | not measured |" in format_card(old)
    row = compare_cards([tmp_path, card]).rows
    assert row[0]["box"] is None and row[1]["box"] == card["box"]["mean"]
    assert row[1]["box rel."] == card["box"]["relative"]
    assert write_card(old, tmp_path / "again")["figure"].is_file()


def test_validate_card_names_the_key(card):
    bad = copy.deepcopy(card)
    del bad["corruption"]["mPC"]
    with pytest.raises(ValueError, match=r"missing key 'corruption.mPC'"):
        validate_card(bad)
    bad = copy.deepcopy(card)
    bad["version"] = 2
    with pytest.raises(ValueError, match="version 2; this robustpose reads version 1"):
        validate_card(bad)
    bad = copy.deepcopy(card)
    bad["model"]["kind"] = "tflite"
    with pytest.raises(ValueError, match="'model.kind' is 'tflite'; choose from bundled"):
        validate_card(bad)
    bad = copy.deepcopy(card)
    bad["adversarial"]["per_eps"][1]["eps"] = "8"
    with pytest.raises(ValueError, match=r"adversarial.per_eps\[1\].eps"):
        validate_card(bad)
    bad = copy.deepcopy(card)
    bad["corruption"]["complete"] = 1
    with pytest.raises(ValueError, match="'corruption.complete' must be bool, not int"):
        validate_card(bad)
    bad = copy.deepcopy(card)
    bad["box"]["mean"] = "12"
    with pytest.raises(ValueError, match="key 'box.mean' must be int or float or NoneType"):
        validate_card(bad)


def test_card_refuses_faces_of_other_models(faces):
    other = dict(faces["attack"], model="someone_else")
    with pytest.raises(ValueError, match="the benchmark face has model .* but the attack face 'someone_else'"):
        card_from_faces(faces["bench"], other, None)
    with pytest.raises(ValueError, match="unknown key 'budgett'"):
        card_from_faces(faces["bench"], None, None, {"budgett": "quick"})
    with pytest.raises(ValueError, match="no face given"):
        card_from_faces(None, None, None)


def test_read_card_refuses_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no robustness card"):
        read_card(tmp_path)
    (tmp_path / "card.json").write_text("{not json")
    with pytest.raises(ValueError, match="card.json: not JSON"):
        read_card(tmp_path)


def test_compare_cards_rows_columns_sorting(card, faces, tmp_path):
    write_card(card, tmp_path / "full", plots=False)
    # a second model: the same card under another name with a worse mPC and steadier R
    worse = copy.deepcopy(card)
    worse["model"]["name"] = "other"
    worse["corruption"]["mPC"] = card["corruption"]["mPC"] - 10.0
    worse["stability"]["R_per_keypoint"] = card["stability"]["R_per_keypoint"] / 2
    items = [worse, tmp_path / "full", faces["root"] / "s"]  # the last: a one-face run folder
    table = compare_cards(items, sort_by="mPC")
    assert [r["model"] for r in table.rows][:2] == [f"{card['model']['name']} [2]", "other"]
    assert table.rows[2]["mPC"] is None and table.rows[2]["R/kp"] is not None  # stability only
    assert table.columns[:3] == ["AP*", "mPC", "rPC"]
    assert table.columns[3:7] == ["relAP@2", "relPCK@2", "relAP@8", "relPCK@8"]
    assert table.rows[0]["relAP@8"] == headline(card)["relAP@8"]
    steadier = compare_cards(items, sort_by="R/kp").rows[0]  # lower is better: first
    assert steadier["model"] == "other"
    assert compare_cards(items, sort_by="R/kp", best_first=False).rows[0]["model"] != "other"
    with pytest.raises(ValueError, match="sort_by 'AP': choose from model, AP\\*"):
        compare_cards(items, sort_by="AP")
    paths = write_comparison(table, tmp_path / "cmp")
    md, csv_text = paths["markdown"].read_text(), paths["csv"].read_text()
    assert md.count("\n") == 2 + len(items) and "R/kp (heatmap px^2)" in md
    assert csv_text.splitlines()[0].startswith("model,dataset,budget,AP*,mPC,rPC")
    assert csv_text.splitlines()[0].endswith("R/kp,RUC area,D_n,box,box rel.")
    by_box = compare_cards(items, sort_by="box").rows  # higher first, no box face last
    assert by_box[-1]["model"].endswith("[3]") and by_box[-1]["box"] is None
    assert by_box[0]["box"] is not None
    assert paths["figure"].stat().st_size > 0


def test_compare_refuses_a_folder_without_a_card(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a card nor a finished run folder"):
        compare_cards([tmp_path])
