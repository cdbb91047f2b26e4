"""`robustpose stability`: perturbation sets, run folder resume, real models, report, surface."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robustpose.benchmarking.stability_run import (PERTURBATION_SETS, parse_perturbations,
                                                   run_stability)
from robustpose.cli import main


def test_perturbation_sets() -> None:
    assert len(parse_perturbations("train10")) == 10
    assert parse_perturbations("heldout5") == ["gaussian_blur", "jpeg_compression", "saturate",
                                               "spatter", "speckle_noise"]
    assert parse_perturbations("heldout5,fog,saturate")[-1] == "fog"
    assert not set(PERTURBATION_SETS["train10"]) & set(PERTURBATION_SETS["heldout5"])
    with pytest.raises(ValueError, match="unknown corruption"):
        parse_perturbations("heldout6")


def _run(tmp_path, **kw):
    options = dict(max_images=3, perturbations="gaussian_noise", severities="1", workers=0,
                   out=tmp_path / "run", plots=False, progress=False)
    options.update(kw)
    return run_stability(**options)


def test_bundled_run_resumes_and_adds_cells(tmp_path, capsys) -> None:
    card = _run(tmp_path, progress=True)
    first = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("[") for line in first) == 2          # clean + 1 cell
    cell = card["per_cell"]["gaussian_noise/1"]
    assert cell["R_heatmap"]["count"] > 0 and cell["R_heatmap"]["sum"] >= 0
    assert cell["R_crop"]["sum"] == pytest.approx(cell["R_heatmap"]["sum"] * 16, rel=1e-6)
    assert cell["D_n"] > 0 and 0 < cell["D_12"] < 1                  # a heatmap model
    assert card["clean"]["AUC"] > 0.5 and not card["incomplete"]
    # a second run: nothing to do; more severities: only the new cell is written
    _run(tmp_path, progress=True)
    assert not any(line.startswith("[") for line in capsys.readouterr().out.splitlines())
    card = _run(tmp_path, severities="1,2")
    store = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    keys = [(json.loads(r)["corruption"], json.loads(r)["severity"]) for r in store]
    assert keys == [("clean", 0), ("gaussian_noise", 1), ("gaussian_noise", 2)]
    # severity 2 moves keypoints at least as much as severity 1 would pool to
    assert card["per_perturbation"]["gaussian_noise"]["cells"] == 2
    # other settings: refused, naming the key
    with pytest.raises(ValueError, match="dn_n"):
        _run(tmp_path, dn_n=16)


def test_perturbed_crops_are_the_benchmark_ones(tmp_path) -> None:
    """The cell's keypoints equal the adapter's own prediction (no flip) on the benchmark's
    CellStream crops of that cell: same corruption, seed and boxes."""
    from robustpose.benchmarking.loading import resolve_adapter
    from robustpose.benchmarking.sources import resolve_source
    from robustpose.benchmarking.stream import CellImages, CellStream, collate_cell_batch
    from robustpose.benchmarking.cells import Cell
    from robustpose.evaluation import pck_auc_epe

    card = _run(tmp_path, seed=3)
    adapter, _ = resolve_adapter(None, None, None, None, None, device="cpu", input_size=None,
                                 num_joints=17, adapter_options={})
    source = resolve_source("synth", input_size=adapter.input_size, padding=adapter.padding,
                            max_images=3, subset_dir=tmp_path / "subsets")
    stream = CellStream([Cell("gaussian_noise", 1)], source.records, source.spec,
                        adapter.input_size, CellImages(3))
    batch = collate_cell_batch([stream[(0, i)] for i in range(len(source.records))])
    pred = adapter.predict(batch["image"], batch["meta"], source.spec, flip_test=False)
    expected = pck_auc_epe(pred, np.asarray(batch["meta"]["keypoints"], np.float64),
                           np.asarray(batch["meta"]["bbox"], np.float64))
    got = card["per_cell"]["gaussian_noise/1"]
    assert got["EPE"] == pytest.approx(expected["EPE"], rel=1e-4)
    assert got["AUC"] == pytest.approx(expected["AUC"], rel=1e-4)


def test_nan_model_is_one_line_error(tmp_path) -> None:
    def broken(crops: torch.Tensor) -> torch.Tensor:
        return torch.full((crops.shape[0], 17, 16, 12), float("nan"))

    with pytest.raises(ValueError, match="NaN") as info:
        _run(tmp_path, model=broken)
    assert "\n" not in str(info.value)


def test_blazepose_heatmaps_and_coords_on_coco_mini(tmp_path, data_root, models_root) -> None:
    pytest.importorskip("onnxruntime")
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    onnx = models_root / "blazepose_landmark_lite.onnx"
    common = dict(onnx=onnx, dataset="coco-format", data_root=data_root / "coco_val_mini",
                  max_images=2, perturbations="jpeg_compression", severities="3")
    heat = _run(tmp_path, onnx_spec=repo / "configs/onnx/blazepose_landmark_lite_heatmaps.yaml",
                out=tmp_path / "heat", **common)
    coords = _run(tmp_path, onnx_spec=repo / "configs/onnx/blazepose_landmark_lite.yaml",
                  out=tmp_path / "coords", **common)
    h, c = heat["per_cell"]["jpeg_compression/3"], coords["per_cell"]["jpeg_compression/3"]
    assert h["R_heatmap"]["count"] > 0 and 0 <= h["RUC_area"] <= 1
    assert h["D_n"] > 0 and h["D_12"] is not None
    assert c["R_heatmap"]["count"] > 0 and c["D_n"] is None and c["D_12"] is None
    assert coords["overall"]["D_n"] is None          # absent, not zero, in the card too
    # both outputs of one model localise the people: clean AUC well above chance
    assert heat["clean"]["AUC"] > 0.2 and coords["clean"]["AUC"] > 0.2


def _seeded_hand_model(num_joints: int = 21):
    """A fixed random conv net (weights from a seeded generator): real outputs on real
    crops for a 21-keypoint set the bundled model cannot score."""
    gen = torch.Generator().manual_seed(7)
    weight = torch.randn(num_joints, 3, 5, 5, generator=gen)

    def net(crops: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.avg_pool2d(crops, 4)
        return torch.nn.functional.conv2d(x, weight, padding=2)
    return net


def test_rhd_mini_real_outputs(tmp_path, data_root) -> None:
    card = _run(tmp_path, model=_seeded_hand_model(), input_size=(128, 128), dataset="coco-format",
                data_root=data_root / "rhd_mini", perturbations="spatter,saturate",
                severities="2", max_images=None)
    for name in ("spatter", "saturate"):
        r = card["per_perturbation"][name]
        assert r["R_heatmap"]["count"] > 0
        assert r["RUC"][-1] >= r["RUC"][0] and 0 <= r["RUC_area"] <= 1
    assert card["overall"]["R_heatmap"]["sum"] == pytest.approx(
        sum(card["per_perturbation"][n]["R_heatmap"]["sum"] for n in ("spatter", "saturate")))


def test_report_compares_folders_and_refuses_benchmark(tmp_path, capsys) -> None:
    _run(tmp_path, out=tmp_path / "a")
    _run(tmp_path, out=tmp_path / "b", seed=1)
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"),
                 "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "stability_compare.md").read_text()
    assert "(a)" in table and "(b)" in table
    assert (tmp_path / "cmp" / "stability_R.png").is_file()
    (tmp_path / "a" / "stability.json").unlink()     # one folder: its reports rebuilt
    assert main(["report", str(tmp_path / "a"), "--no-plots"]) == 0
    assert json.loads((tmp_path / "a" / "stability.json").read_text())["kind"] == "stability"
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "run.json").write_text(json.dumps({"model": "m"}))
    capsys.readouterr()
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "bench")]) == 1
    assert "not a `robustpose stability` run folder" in capsys.readouterr().err


def test_loss_surface_is_seeded_and_centred(tmp_path) -> None:
    from robustpose.benchmarking.loss_surface import run_loss_surface

    kw = dict(crops=2, steps=3, perturbation="gaussian_noise", severity=3, seed=5)
    a = run_loss_surface(tmp_path / "s1", **kw)
    b = run_loss_surface(tmp_path / "s2", **kw)
    losses = np.asarray(a["losses"])
    assert losses.shape == (3, 3) and np.isfinite(losses).all()
    assert a["losses"] == b["losses"] and a["alphas"] == [-1.0, 0.0, 1.0]
    assert (tmp_path / "s1" / "loss_surface.png").is_file()
    c = run_loss_surface(tmp_path / "s3", **{**kw, "seed": 6})
    assert np.asarray(c["losses"])[1, 1] == pytest.approx(losses[1, 1])  # the clean crops
    assert c["losses"] != a["losses"]                                    # another direction


def test_cli_one_line_per_cell_card_and_surface(tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    assert main(["stability", "--max-images", "2", "--perturbations", "saturate,spatter",
                 "--severities", "1", "--workers", "0", "--out", str(out), "--loss-surface",
                 "--surface-crops", "1", "--surface-steps", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cells = [line for line in lines if line.startswith("[")]
    assert len(cells) == 3 and cells[0].split("]")[1].split()[0] == "clean" and "R/kp" in cells[1]
    card = json.loads((out / "stability.json").read_text())
    assert set(card["per_perturbation"]) == {"saturate", "spatter"}
    assert card["ruc_thresholds_heatmap_px"] == list(range(11))
    for name in ("stability_R.png", "stability_RUC.png", "stability_table1.png",
                 "loss_surface.png", "loss_surface.json", "stability.md"):
        assert (out / name).is_file(), name
    assert main(["stability", "--perturbations", "heldout7", "--out", str(out)]) == 1
    assert "unknown corruption" in capsys.readouterr().err


def test_metric_write_predictions(tmp_path) -> None:
    from robustpose.evaluation import StabilityMetric

    gt = np.array([[[5, 5, 2]]], np.float64)
    metric = StabilityMetric(3, stride=(4, 4))
    metric.accumulate({"positions": np.array([[[1.0, 2.0]]]), "keypoints": gt},
                      {"index": np.array([2]), "keypoints": gt, "bbox": np.array([[0, 0, 9, 9]])})
    metric.write_predictions(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text()) == [{"index": 2,
                                                              "positions": [[1.0, 2.0]]}]


def test_killed_run_resumes_with_the_same_numbers(tmp_path) -> None:
    first = _run(tmp_path, severities="1,2")
    store = tmp_path / "run" / "results.jsonl"
    lines = store.read_text().splitlines()
    store.write_text("\n".join(lines[:2]) + "\n")     # as if killed during severity 2
    (tmp_path / "run" / "distances" / "gaussian_noise-2.npz").unlink()
    again = _run(tmp_path, severities="1,2")
    assert len(store.read_text().splitlines()) == 3
    assert again["per_cell"]["gaussian_noise/2"] == first["per_cell"]["gaussian_noise/2"]
    assert again["overall"] == first["overall"]



def test_card_reads_each_distances_file_once(tmp_path, monkeypatch) -> None:
    """The per-perturbation rows and the overall pool share one read of each cell's file
    (the pool used to open it once per unit and again for the overall row)."""
    import robustpose.benchmarking.stability_card as stability_card
    from robustpose.benchmarking.run_folder import RunFolder

    _run(tmp_path, severities="1,2")
    opened = []
    real = np.load
    monkeypatch.setattr(stability_card.np, "load", lambda path, *a, **k: opened.append(path) or real(path, *a, **k))
    card = stability_card.build_stability_card(RunFolder(tmp_path / "run"))
    assert sorted(p.name for p in opened) == ["gaussian_noise-1.npz", "gaussian_noise-2.npz"]
    assert card["overall"]["R_heatmap"]["median"] == card["per_perturbation"]["gaussian_noise"]["R_heatmap"]["median"]

def test_pooled_dn_weighs_defined_maps_and_counts_undefined(tmp_path) -> None:
    from robustpose.benchmarking.stability_card import pool

    # cell a: 10 maps, 5 undefined, D_n 100 over the 5 defined; cell b: 10 defined, 200
    cells = [{"corruption": "blur", "severity": s,
              "metrics": {"D_n": dn, "D_12": 0.1, "num_heatmaps": 10, "undefined": u,
                          "R_heatmap": {"sum": 0.0, "count": 0}, "RUC": None}}
             for s, dn, u in ((1, 100.0, 5), (2, 200.0, 0))]
    out = pool(cells, tmp_path, p_max=10)
    assert out["D_n"] == pytest.approx((100 * 5 + 200 * 10) / 15)   # not (100 + 200) / 2
    assert out["undefined"] == 5 and out["undefined_fraction"] == pytest.approx(0.25)
    assert out["D_12_hd"] is None                                   # no HD scale: absent
    # a cell whose every map is undefined has no mean and no weight
    cells[0]["metrics"].update(D_n=None, D_12=None, undefined=10)
    assert pool(cells, tmp_path, p_max=10)["D_n"] == pytest.approx(200.0)


def test_card_reports_clean_table1_reading_and_the_tie_rule(tmp_path) -> None:
    from robustpose.benchmarking.stability_card import format_stability_table

    card = _run(tmp_path)
    conventions = json.loads((tmp_path / "run" / "run.json").read_text())["conventions"]
    assert conventions["dn_ties"] == "peak" and conventions["d12_hd_scale"] is None
    clean = card["clean"]
    assert clean["num_heatmaps"] > 0 and clean["undefined"] == 0   # Gaussian maps peak > 0
    assert clean["D_n"] > 0 and clean["D_12_hd"] is None
    table = format_stability_table([card])
    assert "| clean (Table 1) |" in table and "undefined" in table.splitlines()[0]
    # a folder measured with the earlier rule (run.json without dn_ties) refuses a rerun
    settings = json.loads((tmp_path / "run" / "run.json").read_text())
    for key in ("dn_ties", "dn_undefined", "d12_hd_scale"):
        del settings["conventions"][key]
    (tmp_path / "run" / "run.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match="conventions.dn_ties"):
        _run(tmp_path)
    with pytest.raises(ValueError, match="dn_ties"):
        _run(tmp_path, out=tmp_path / "other", dn_ties="random")
    assert not (tmp_path / "other" / "run.json").exists()
