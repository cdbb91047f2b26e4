"""The run layer: kinds in one registry, typed attack cells, run.json's schema_version,
`robustpose report` by recorded kind, and folders written before the layer (schema 1,
tests/fixtures/legacy_runs, made by the code of commit 2766c53) still reading the same."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from robustpose.benchmarking import KINDS, get_kind
from robustpose.benchmarking.attack_cells import AttackCell, key_from_json, key_to_json
from robustpose.benchmarking.cells import Cell
from robustpose.benchmarking.run_layer import SCHEMA_VERSION, kind_of
from robustpose.cli import main

LEGACY = Path(__file__).parent / "fixtures" / "legacy_runs"


def _legacy(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    shutil.copytree(LEGACY / name, out)
    return out


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]


def test_three_kinds_registered_and_unknown_kind_is_one_line():
    assert {"benchmark", "stability", "attack"} <= set(KINDS)
    with pytest.raises(ValueError, match="unknown run kind 'atack'.*nearest: 'attack'"):
        get_kind("atack")


def test_kind_of_reads_schema_1_and_2_and_refuses_a_newer_one():
    assert kind_of({"model": "m"}) == "benchmark"                     # schema 1 benchmark
    assert kind_of({"command": "attack"}) == "attack"                 # schema 1 attack
    assert kind_of({"kind": "stability", "schema_version": 2}) == "stability"
    with pytest.raises(ValueError, match="schema_version 3; this robustpose reads versions 1-2"):
        kind_of({"kind": "attack", "schema_version": SCHEMA_VERSION + 1})


@pytest.mark.parametrize("name,expected", [
    ("attack", [AttackCell("igsm", 2.0, 1), AttackCell("igsm", 8.0, 1),
                AttackCell("igsm", 2.0, 2), AttackCell("igsm", 8.0, 2)]),
    ("transfer", [AttackCell("transfer", 8.0, 1, surrogate="bundled")]),
    ("targeted", [AttackCell("igsm", 4.0, 1, targeted=True, all_stacks=True)]),
])
def test_schema_1_records_parse_to_typed_keys(name, expected):
    records = _records(LEGACY / name)
    assert key_from_json(records[0]) == Cell("clean", 0)
    keys = [key_from_json(r) for r in records[1:]]
    assert keys == expected
    # the key's identity in the store is the schema-1 string: old folders resume
    assert [(k.corruption, k.severity) for k in keys] == [(r["corruption"], r["severity"])
                                                           for r in records[1:]]
    assert all(k.loss == "mse" for k in keys)  # the record's own field, where it has one
    # and with no typed field at all, the string alone gives the same key
    bare = [{"corruption": r["corruption"], "severity": r["severity"]} for r in records[1:]]
    assert [key_from_json(r) for r in bare] == expected


def test_typed_key_json_round_trip_and_a_bad_legacy_string_is_one_line():
    cell = AttackCell("transfer", 0.25, 10, True, False, "resnet50=runs/x/best.pt", "mse")
    back = key_from_json({"corruption": cell.corruption, "severity": 10,
                          "cell": json.loads(json.dumps(key_to_json(cell)))})
    assert back == cell and back.loss == "mse" and back.corruption == \
        "transfer[resnet50=runs/x/best.pt]-igsm-T@0.25"
    with pytest.raises(ValueError, match="not an attack cell key"):
        key_from_json({"corruption": "gaussian_noise", "severity": 3})


@pytest.mark.parametrize("name", ["attack", "transfer", "targeted"])
def test_report_rebuilds_a_schema_1_attack_folder_to_the_same_card(tmp_path, capsys, name):
    folder = _legacy(tmp_path, name)
    old = json.loads((folder / "attack.json").read_text())
    (folder / "attack.json").unlink()
    assert main(["report", str(folder), "--no-plots"]) == 0
    assert "attack.json" in capsys.readouterr().out
    new = json.loads((folder / "attack.json").read_text())
    assert new["clean"] == old["clean"]
    assert len(new["cells"]) == len(old["cells"])
    for a, b in zip(new["cells"], old["cells"]):
        assert {k: a[k] for k in b} == b  # every old field, same value (plus 'mode')


def test_report_rebuilds_a_schema_1_stability_folder_to_the_same_card(tmp_path, capsys):
    folder = _legacy(tmp_path, "stability")
    old = json.loads((folder / "stability.json").read_text())
    (folder / "stability.json").unlink()
    assert main(["report", str(folder), "--no-plots"]) == 0
    new = json.loads((folder / "stability.json").read_text())
    assert new == old


def test_a_folder_of_a_newer_schema_is_refused_in_one_line(tmp_path, capsys):
    folder = _legacy(tmp_path, "attack")
    settings = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**settings, "schema_version": 9}))
    assert main(["report", str(folder), "--no-plots"]) == 1
    err = capsys.readouterr().err.strip()
    assert "schema_version 9" in err and len(err.splitlines()) == 1


def test_schema_1_attack_folder_resumes_and_new_cells_are_typed(tmp_path, data_root, capsys):
    """A rerun of the old request has nothing to do; a new eps adds a schema-2 record."""
    folder = _legacy(tmp_path, "attack")
    args = ["attack", "igsm", "--dataset", "coco-format", "--data-root",
            str(data_root / "coco_val_mini"), "--max-images", "2", "--batch-size", "8",
            "--no-plots", "--out", str(folder)]
    assert main([*args, "--eps", "2,8", "--steps", "1,2"]) == 0
    assert "0 cell(s) to run" in capsys.readouterr().err
    assert main([*args, "--eps", "2,8,16", "--steps", "1", "--quiet"]) == 0
    records = _records(folder)
    assert len(records) == 6 and "cell" not in records[1]
    assert records[-1]["cell"] == {"attack": "igsm", "eps": 16.0, "steps": 1, "targeted": False,
                                   "all_stacks": False, "surrogate": None, "loss": "mse"}
    card = json.loads((folder / "attack.json").read_text())
    assert "igsm-U@16/1" in [c["key"] for c in card["cells"]]


def test_a_new_run_records_its_kind_and_schema(tmp_path, data_root):
    out = tmp_path / "run"
    assert main(["attack", "fgsm", "--dataset", "coco-format", "--data-root",
                 str(data_root / "coco_val_mini"), "--max-images", "2", "--eps", "8",
                 "--no-plots", "--quiet", "--out", str(out)]) == 0
    settings = json.loads((out / "run.json").read_text())
    assert settings["kind"] == "attack" and settings["schema_version"] == SCHEMA_VERSION
    # the SPSA sample count is no convention of a gradient attack (its default moved 16 -> 8)
    assert settings["conventions"]["spsa_samples"] is None
    record = _records(out)[1]
    assert key_from_json(record) == AttackCell("fgsm", 8.0, 1)
    assert get_kind(kind_of(settings)).key_from_json(record).label == "fgsm-U@8/1"


def test_schema_1_stability_folder_resumes_with_nothing_to_run(tmp_path, data_root, capsys):
    folder = _legacy(tmp_path, "stability")
    old = json.loads((folder / "stability.json").read_text())
    assert main(["stability", "--dataset", "coco-format", "--data-root",
                 str(data_root / "coco_val_mini"), "--max-images", "2", "--batch-size", "8",
                 "--perturbations", "gaussian_noise", "--severities", "1,2", "--no-plots",
                 "--out", str(folder)]) == 0
    assert "0 cell(s) to run" in capsys.readouterr().err
    assert json.loads((folder / "stability.json").read_text()) == old


BENCHMARKING = Path(__file__).resolve().parents[1] / "robustpose" / "benchmarking"


def test_one_run_skeleton_and_no_private_helpers_across_modules():
    """Only the run layer claims a run folder; no benchmarking module imports another
    module's _private name (they share by public names)."""
    import ast

    for path in sorted(BENCHMARKING.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("robustpose"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "claim"):
                assert path.name == "run_layer.py", f"{path.name} claims a run folder itself"


@pytest.mark.parametrize("name", ["benchmark", "stability"])
def test_corruption_kinds_key_a_record_by_its_cell(name):
    """The two corruption kinds read and write a cell the way the records store it."""
    kind = get_kind(name)
    cell = Cell("gaussian_blur", 3)
    fields = kind.key_to_json(cell)
    assert fields == {"corruption": "gaussian_blur", "severity": 3}
    assert kind.key_from_json({**fields, "metric": "AP", "AP": 0.5}) == cell
    assert kind.key_from_json({"corruption": "clean", "severity": "0"}).is_clean
