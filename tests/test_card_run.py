"""``robustpose card`` / ``robustpose.card``: the composite run of the four faces (issue 25,
section 2) on tiny real runs: the bundled model on 2 SynthPose images through the CLI and
the API (resume = 0 cells), the budget's skipped list, an ONNX model attacked by queries, a whole-image Python callable
(benchmark face only), the comparison of two cards, and one-line refusals."""
from __future__ import annotations

import json

import pytest

from robustpose.cli import main


@pytest.fixture(scope="module")
def card_dir(tmp_path_factory):
    """A quick card of the bundled model on 2 images, made by the command line."""
    out = tmp_path_factory.mktemp("card") / "bundled"
    assert main(["card", "--max-images", "2", "--workers", "0", "--out", str(out),
                 "--no-plots", "--no-progress"]) == 0
    return out


def test_cli_card_holds_the_four_faces_of_its_own_runs(card_dir, capsys):
    from robustpose.reports.card import read_card

    card = read_card(card_dir)
    assert card["model"]["kind"] == "bundled" and card["budget"]["name"] == "quick"
    assert card["dataset"]["num_people"] == 3
    summary = json.loads((card_dir / "benchmark" / "summary.json").read_text())
    attack = json.loads((card_dir / "attack" / "attack.json").read_text())
    assert card["clean"]["value"] == summary["clean"]
    assert card["corruption"]["mPC"] == summary["mPC"] and len(card["corruption"]["corruptions"]) == 15
    assert card["corruption"]["severities"] == [1, 3, 5]
    # the box face rides in the benchmark face's grid, outside mPC (summary.py)
    assert card["box"]["perturbations"] == ["box_shift", "box_scale", "box_aspect", "box_jitter"]
    assert card["box"]["severities"] == [1, 3, 5] and card["box"]["complete"]
    assert card["box"]["mean"] == summary["box"]["mean"] is not None
    assert len(summary["corruptions"]) == 19 and not set(card["box"]["perturbations"]) & set(
        card["corruption"]["per_corruption"])
    assert card["adversarial"]["attack"] == "IGSM-10" and card["adversarial"]["access"] == "gradient"
    assert [r["eps"] for r in card["adversarial"]["per_eps"]] == [8.0]
    assert attack["attack"] == "igsm"
    assert card["stability"]["held_out"] and card["stability"]["severities"] == [3]
    # each face folder is the command's own run folder: `robustpose report` reads them
    assert main(["report", str(card_dir)]) == 0
    assert "rebuilt:" in capsys.readouterr().out


def test_api_rerun_computes_no_cell_and_returns_a_typed_result(card_dir):
    import robustpose

    result = robustpose.card(max_images=2, workers=0, out=card_dir, progress=False, plots=False)
    assert isinstance(result, robustpose.CardResult) and "card" in dir(robustpose)
    assert result.cells_run == {"benchmark": 0, "attack": 0, "stability": 0}
    card = json.loads((card_dir / "card.json").read_text())
    assert result.clean == card["clean"]["value"] and result.mPC == card["corruption"]["mPC"]
    assert result.attack == "IGSM-10" and set(result.relative_pck) == {8.0}
    assert result.RUC_area == card["stability"]["RUC_area"]
    assert result.box == card["box"]["mean"] and result.box_relative == card["box"]["relative"]
    assert result.box is not None
    assert "images after the first 2" in result.skipped


def test_budget_lists_what_it_skipped():
    from robustpose.benchmarking.card_run import BUDGETS, skipped_by

    assert skipped_by(BUDGETS["paper"], "igsm", None) == []
    quick = skipped_by(BUDGETS["quick"], "spsa", 16)
    assert quick == ["corruption and box severities 2,4 (ran 1,3,5)", "attack eps 2 (ran eps 8)",
                     "SPSA 5 steps x 4 samples (paper budget: 10 x 8)",
                     "stability severities 1,2,4,5 (ran 3)", "images after the first 16"]


def test_onnx_card_uses_the_query_attack(data_root, models_root, tmp_path):
    pytest.importorskip("onnxruntime")
    import robustpose

    result = robustpose.card(onnx=models_root / "blazepose_landmark_lite.onnx",
                             onnx_spec="blazepose", dataset="coco-format",
                             data_root=data_root / "coco_val_mini", max_images=1, workers=0,
                             out=tmp_path / "bp", progress=False, plots=False)
    assert result.access == "query" and result.attack == "SPSA-5"
    row = result.to_dict()["adversarial"]["per_eps"][0]
    assert row["queries_per_crop"] == 1 + 2 * 4 * 5  # the quick budget's SPSA, per crop
    assert result.to_dict()["model"]["kind"] == "onnx"
    # the stability reference and the attack's clean cell reused the benchmark's clean
    # forward pass (same crops): each clean crop was computed once
    shared = result.to_dict()["shared"]
    people = result.to_dict()["dataset"]["num_people"]
    assert shared["outputs"]["reused"] + shared["predict"]["reused"] == 2 * people
    # ... and each face run alone gives the card's numbers
    from robustpose.benchmarking.attack_run import run_attack
    from robustpose.benchmarking.stability_run import run_stability

    common = dict(onnx=models_root / "blazepose_landmark_lite.onnx", onnx_spec="blazepose",
                  dataset="coco-format", data_root=data_root / "coco_val_mini", max_images=1,
                  progress=False, plots=False)
    alone = run_stability(perturbations="heldout5", severities="3", workers=0,
                          out=tmp_path / "s", **common)
    face = json.loads((tmp_path / "bp" / "stability" / "stability.json").read_text())
    assert alone["overall"] == face["overall"] and alone["clean"] == face["clean"]
    attacked = run_attack("spsa", eps="8", steps="5", spsa_samples=4, batch_size=16,
                          out=tmp_path / "a", **common)
    face = json.loads((tmp_path / "bp" / "attack" / "attack.json").read_text())

    def numbers(row: dict) -> dict:  # timings differ between any two runs
        return {k: v for k, v in row.items() if not k.endswith("_s")}

    assert numbers(attacked["clean"]) == numbers(face["clean"])
    assert [numbers(c) for c in attacked["cells"]] == [numbers(c) for c in face["cells"]]
    with pytest.raises(ValueError, match="igsm needs torch weights"):
        robustpose.card(onnx=models_root / "blazepose_landmark_lite.onnx", onnx_spec="blazepose",
                        dataset="coco-format", data_root=data_root / "coco_val_mini",
                        max_images=1, attack="igsm", out=tmp_path / "bp2", progress=False)


def test_whole_image_callable_card_runs_the_benchmark_and_query_attack_faces(tmp_path):
    """A whole-image Python callable (an oracle: the ground-truth people of the clean image,
    nobody on any other pixels) through the card: its benchmark face runs (clean AP* 100,
    every corrupted cell lower) and its attack face is the query attack on the whole image
    (issue 26); stability and box are skipped with the reason. (The oracle loses everybody
    on any changed pixel: every SPSA probe scores the same, the estimated gradient is zero and
    the attack leaves the image as it is, so the relative AP is the clean one.)"""
    import numpy as np

    import robustpose
    from robustpose.benchmarking.card_run import (BUDGETS, WHOLE_IMAGE_ATTACK, WHOLE_IMAGE_SKIPS,
                                                  skipped_by)
    from robustpose.benchmarking.sources import resolve_source
    from robustpose.data import load_image
    from robustpose.models.whole_image import WholeImageCallable
    from robustpose.reports.card import read_card

    source = resolve_source("synth", None, None, None, max_images=1,
                            subset_dir=tmp_path / "subset")
    clean = load_image(source.records[0].image_path)
    gt = np.stack([r.keypoints for r in source.records if r.image_path
                   == source.records[0].image_path])

    def oracle(image):
        if image.shape != clean.shape or not np.array_equal(image, clean):
            return {"keypoints": np.zeros((0, 17, 3)), "scores": np.zeros(0)}
        return {"keypoints": gt[:, :, :2], "scores": np.ones(len(gt))}

    model = WholeImageCallable(oracle, name="oracle", identity="synth-oracle-1")
    result = robustpose.card(model, max_images=1, workers=0, out=tmp_path / "card",
                             progress=False, plots=False)
    card = read_card(tmp_path / "card")  # validates
    assert result.cells_run["benchmark"] == 1 + 15 * 3 and result.cells_run["attack"] >= 1
    assert card["clean"]["value"] == pytest.approx(100.0) and card["model"]["kind"] == "callable"
    assert len(card["corruption"]["per_cell"]) == 15 and card["corruption"]["mPC"] < 50.0
    adversarial = card["adversarial"]
    assert adversarial["access"] == "query" and WHOLE_IMAGE_ATTACK in adversarial["attack"].lower()
    assert [row["eps"] for row in adversarial["per_eps"]] == [8.0]
    assert adversarial["per_eps"][0]["relative_metric"] == pytest.approx(100.0)
    assert card["stability"] is None and card["box"] is None
    settings = json.loads((tmp_path / "card" / "benchmark" / "run.json").read_text())
    assert not [c for c in settings["corruptions"] if c.startswith("box")]
    assert not (tmp_path / "card" / "stability").exists()
    skipped = card["budget"]["skipped"]
    assert skipped == skipped_by(BUDGETS["quick"], WHOLE_IMAGE_ATTACK, 1, whole_image=True)
    assert skipped[0] == "corruption severities 2,4 (ran 1,3,5)"  # no box in that line
    assert [line for line in skipped if line in WHOLE_IMAGE_SKIPS] == WHOLE_IMAGE_SKIPS
    assert not [line for line in skipped if line.startswith(("stability sev", "IGSM", "box pert"))]
    assert [line.split(":")[0] for line in WHOLE_IMAGE_SKIPS] == ["stability face", "box face"]
    with pytest.raises(ValueError, match="query attack only"):
        robustpose.card(model, max_images=1, workers=0, attack="igsm", out=tmp_path / "c2",
                        progress=False, plots=False)
    again = robustpose.card(model, max_images=1, workers=0, out=tmp_path / "card",
                            progress=False, plots=False)
    assert again.cells_run == {"benchmark": 0, "attack": 0}


def test_two_cards_compare_with_mce_against_the_first(card_dir, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["card", str(card_dir), str(card_dir), "--out", str(out),
                 "--sort-by", "mPC"]) == 0
    text = capsys.readouterr().out
    assert "| mCE" in text or "mCE (" in text
    rows = (out / "compare" / "compare.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert len(rows) == 3 and "mCE" in header and "relAP@8" in header
    first = dict(zip(header, rows[1].split(",")))
    assert float(first["mCE"]) == pytest.approx(100.0)  # a model against itself
    for name in ("compare.md", "compare.png", "fig5_ap_rpc.png"):
        assert (out / "compare" / name).is_file()
    assert any(p.name.startswith("fig4_gain") for p in (out / "compare").iterdir())
    # `robustpose report CARD_A CARD_B` compares card folders the same way
    assert main(["report", str(card_dir), str(card_dir), "--out", str(tmp_path / "rep"),
                 "--no-plots"]) == 0
    assert "compared:" in capsys.readouterr().out
    again = (tmp_path / "rep" / "compare.csv").read_text().splitlines()
    assert again[0] == rows[0] and len(again) == 3
    assert main(["report", str(card_dir), str(card_dir / "attack")]) != 0
    assert "not a `robustpose card` run folder" in capsys.readouterr().err


def test_bad_input_is_one_line(card_dir, tmp_path, capsys):
    from robustpose.benchmarking.card_models import parse_model
    from robustpose.benchmarking.card_run import run_card

    with pytest.raises(ValueError, match="card budget 'huge'; choose from paper, quick"):
        run_card(budget="huge")
    with pytest.raises(ValueError, match="is not bundled, a registry name"):
        parse_model("no_such_model")
    with pytest.raises(ValueError, match="needs its spec"):
        model = tmp_path / "m.onnx"
        model.write_bytes(b"")
        parse_model(str(model))
    with pytest.raises(ValueError, match="made with budget 'quick', this run asks 'paper'"):
        run_card(budget="paper", out=card_dir, progress=False)
    assert main(["card", "no_such_model", "--out", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_model" in err[0]
