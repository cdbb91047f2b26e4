"""experiments/attack_study.py --quick end to end: the bundled heatmap model and a 2-step
regression model attacked through run_attack's folders; the findings table has every
claim's row, and its 'holds?' column follows the numbers in the folders' records."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robustpose.assets import bundled_checkpoint_path
from robustpose.training import Trainer, load_config

REPO = Path(__file__).resolve().parents[1]
CLAIMS = ("heatmap models are more robust", "under the strongest attack tried", "IGSM-2 > IGSM-1 > FGSM",
          "targeted attacks are harder than untargeted (IGSM-T-1 ",
          "targeted attacks are harder than untargeted (IGSM-T-3 ",
          "the deeper hourglass", "ALL (loss on every stack)", "head (nose, eyes, ears)",
          "hips are the most vulnerable", "a UAP (fitted until its held-out curve flattens)",
          "transfer degrades far less")
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def study(load_experiment):
    return load_experiment("attack_study")


@pytest.fixture(scope="module")
def quick_run(study, tmp_path_factory):
    """A 2-step regression model (best.pt + config.yaml), then the --quick study on 1 image."""
    tmp = tmp_path_factory.mktemp("study")
    cfg = load_config(REPO / "configs" / "attacks" / "synthpose_deeppose_shufflenetv2.yaml", [
        f"model.pretrained={bundled_checkpoint_path()}", f"output_dir={tmp / 'reg'}",
        f"data.train={{split: train, num_images: 2, seed: 1, root: {tmp}}}",
        f"data.val={{split: val, num_images: 1, root: {tmp}}}", "data.num_workers=0",
        "train.batch_size=2", "train.epochs=1", "train.max_iters_per_epoch=2", "val.every=1"])
    Trainer(cfg, device="cpu", progress=False).fit()
    out = tmp / "out"
    args = ["--quick", "--out", str(out), "--regression", str(tmp / "reg" / "best.pt"),
            "--hourglass2", str(tmp / "none.pt"), "--hourglass8", str(tmp / "none.pt"),
            "--max-images", "1", "--eps", "8", "--steps", "1", "--long-steps", "2", "--quiet"]
    assert study.main(args) == 0
    return out, args


def rows(path: Path) -> dict[str, tuple[str, str]]:
    """claim -> (measured, holds) of the findings table."""
    lines = path.read_text().split("## Findings")[1].split("## How")[0].strip().splitlines()[2:]
    cells = [line.strip("|").split(" | ") for line in lines]
    return {c[0].strip(): (c[1].strip(), c[2].strip()) for c in cells}


def find(table: dict, prefix: str) -> tuple[str, str]:
    hits = [v for k, v in table.items() if k.startswith(prefix)]
    assert len(hits) == 1, (prefix, list(table))
    return hits[0]


def test_every_claim_has_a_row_and_missing_models_are_na(quick_run):
    out, _ = quick_run
    table = rows(out / "findings.md")
    assert len(table) == len(CLAIMS)
    for claim in CLAIMS:
        measured, holds = find(table, claim)
        assert holds == "n/a" or holds in ("yes", "no") or holds.startswith("partly ("), holds
    assert find(table, "the deeper hourglass")[1] == "n/a"          # no hourglass checkpoints
    assert find(table, "ALL (loss on every stack)")[1] == "n/a"
    for claim in CLAIMS:
        if claim not in ("the deeper hourglass", "ALL (loss on every stack)"):
            assert find(table, claim)[1] != "n/a", claim
    # one run folder per model and attack variant, each a robustpose attack folder
    assert {p.name for p in (out / "heatmap").iterdir()} == {
        "fgsm-U", "igsm-U", "igsm-U-pck", "igsm-T", "uap", "transfer-from-regression"}
    settings = json.loads((out / "regression" / "igsm-U" / "run.json").read_text())
    assert settings["command"] == "attack" and settings["dataset"] == "synth-val[:1]"


def test_each_model_is_attacked_with_its_training_loss_and_pck_margin(quick_run):
    out, args = quick_run
    regression = Path(args[args.index("--regression") + 1])
    from robustpose.models.checkpoint import read_checkpoint

    assert read_checkpoint(regression)["meta"]["train_loss"] == "coord_l1"   # the trainer records it
    conv = json.loads((out / "regression" / "igsm-U" / "run.json").read_text())["conventions"]
    assert conv["loss_used"] == {"model": "coord_l1"} and "checkpoint meta" in conv["loss_source"]["model"]
    assert json.loads((out / "heatmap" / "igsm-U" / "run.json").read_text())["conventions"][
        "loss_used"] == {"model": "mse"}
    pck = json.loads((out / "regression" / "igsm-U-pck" / "run.json").read_text())["conventions"]
    assert pck["loss_used"] == {"model": "pck_margin"}
    assert "| coord_l1 (the model's training loss" in (out / "findings.md").read_text()


def test_targeted_runs_at_both_budgets_and_the_uap_follows_its_held_out_curve(quick_run):
    out, _ = quick_run
    targeted = [json.loads(line) for line in (out / "heatmap" / "igsm-T" / "results.jsonl").read_text().splitlines()]
    assert {(r["corruption"], r["severity"]) for r in targeted} >= {("igsm-T@8", 1), ("igsm-T@8", 3)}
    uap = [json.loads(line) for line in (out / "heatmap" / "uap" / "results.jsonl").read_text().splitlines()][-1]
    assert uap["fit_people"] > 0 and uap["holdout_people"] > 0
    assert 1 <= uap["epochs_run"] <= 3 and len(uap["uap_curve"]) == uap["epochs_run"]
    conv = json.loads((out / "heatmap" / "uap" / "run.json").read_text())["conventions"]
    assert conv["uap_stop"] == {"patience": 1, "min_delta": 0.005} and conv["uap_holdout_images"] == 1
    assert "fit on " in find(rows(out / "findings.md"), "a UAP (fitted")[0]


def _rewrite(folder: Path, pck: dict) -> None:
    """Set the mean PCK of the clean cell and of every attacked cell of a folder."""
    store = folder / "results.jsonl"
    records = [json.loads(line) for line in store.read_text().splitlines()]
    for r in records:
        r["pck"] = pck["clean" if r["corruption"] == "clean" else "attacked"]
    store.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_holds_follows_the_records(study, quick_run, tmp_path):
    """The table is recomputed from the folders (--table-only): making the regression model
    the robust one flips the heatmap-vs-regression verdict, and back."""
    out, args = quick_run
    before = rows(out / "findings.md")
    table = tmp_path / "t.md"
    again = [*args, "--table-only", "--table", str(table)]
    assert study.main(again) == 0
    assert rows(table) == before                                 # the same numbers, reread
    for heat, reg, verdict in ((0.5, 0.0, "yes"), (0.0, 0.5, "no")):
        _rewrite(out / "heatmap" / "igsm-U", {"clean": 0.5, "attacked": heat})
        _rewrite(out / "regression" / "igsm-U", {"clean": 0.5, "attacked": reg})
        assert study.main(again) == 0
        measured, holds = find(rows(table), "heatmap models are more robust")
        assert holds == verdict, measured
        assert f"heatmap (bundled ShuffleNetV2) {heat / 0.5:.3f}" in measured


def test_the_strongest_attack_row_is_the_minimum_over_attacks_and_losses(study, quick_run, tmp_path):
    """Making the pck_margin run the most damaging one makes it the regression model's
    strongest attack at eps 8, and its value the row's number."""
    out, args = quick_run
    table = tmp_path / "s.md"
    _rewrite(out / "regression" / "fgsm-U", {"clean": 0.5, "attacked": 0.4})
    _rewrite(out / "regression" / "igsm-U", {"clean": 0.5, "attacked": 0.3})
    _rewrite(out / "regression" / "igsm-U-pck", {"clean": 0.5, "attacked": 0.01})
    assert study.main([*args, "--table-only", "--table", str(table)]) == 0
    measured, _ = find(rows(table), "under the strongest attack tried")
    assert "regression (DeepPose ShuffleNetV2) 0.020 (IGSM-1 pck_margin)" in measured


def test_variants_pick_run_folders_and_unknown_ones_are_refused(study, capsys, monkeypatch):
    """Two processes with disjoint --variants share a study; a typo is one line naming the choices."""
    args = study.parse_args(["--variants", "igsm-T, uap"])
    assert args.variants == ["igsm-T", "uap"]
    ran = []
    monkeypatch.setattr(study, "fit_annotations", lambda *a, **k: "fit.json")
    monkeypatch.setattr(study, "run_attack", lambda **kw: ran.append(kw["out"].name))
    assert study.run_all(args, {"heatmap": {}, "regression": {}}) == []
    assert ran == ["igsm-T", "uap", "igsm-T", "uap"]
    with pytest.raises(SystemExit):
        study.parse_args(["--variants", "igsm-X"])
    assert "unknown igsm-X (the study's: fgsm-U, igsm-U" in capsys.readouterr().err
