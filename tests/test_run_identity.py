"""Issue 24, items 1, 2 and 14: a run folder refuses a rerun that would mix cells made
from other inputs: the ONNX spec's content, the batch size of per-batch draws, the UAP fit
annotations, MPII's --max-images, a detections / annotation file's content, a Python
callable without an identity, a module with other weights.

The cells themselves are faked (each test is about the claim, not about the numbers): the
runs' cell loops are replaced by a stub that writes one record per cell."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import robustpose.benchmarking.api as api
import robustpose.benchmarking.attack_card as attack_card
import robustpose.benchmarking.attack_run as attack_run
import robustpose.benchmarking.attack_uap as attack_uap

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "configs" / "onnx" / "blazepose_landmark_lite.yaml"


@pytest.fixture
def fake_cells(monkeypatch):
    """Attack and benchmark cells that cost nothing: one fixed record per cell."""
    def one(cell, run, *rest):
        adapter, source = run.adapter, run.source
        return {"model": adapter.name, "dataset": source.name, "corruption": cell.corruption,
                "severity": int(cell.severity), "metric": source.metric_name, "pck": 0.5}

    def many(adapter, source, todo, folder, images, **kw):
        for cell in todo:
            folder.append({"model": adapter.name, "dataset": source.name,
                           "corruption": cell.corruption, "severity": int(cell.severity),
                           "metric": "AP", "AP": 0.5, "metrics": {"AP": 0.5}})

    monkeypatch.setattr(attack_run, "run_cell", one)
    monkeypatch.setattr(attack_card, "write_attack_reports", lambda folder, plots=True: {})
    monkeypatch.setattr(attack_uap, "uap_fit_records", lambda *a, **k: None)
    monkeypatch.setattr(api, "evaluate_cells", many)


def _coco(data_root):
    return {"dataset": "coco-format", "data_root": data_root / "coco_val_mini",
            "max_images": 2, "progress": False, "plots": False}


def _spec_copy(tmp_path, name, **changes):
    import yaml

    data = yaml.safe_load(SPEC.read_text())
    data.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_onnx_spec_content_is_part_of_an_spsa_run(data_root, models_root, tmp_path,
                                                   fake_cells):
    pytest.importorskip("onnxruntime")
    onnx = models_root / "blazepose_landmark_lite.onnx"
    out = tmp_path / "run"
    spec = _spec_copy(tmp_path, "spec.yaml")
    common = dict(onnx=onnx, onnx_spec=spec, out=out, steps="1", **_coco(data_root))
    attack_run.run_attack("spsa", eps="2", **common)
    attack_run.run_attack("spsa", eps="2,8", **common)  # same spec: resumes
    # the same spec re-written with its keys in another order and a comment: same content
    import yaml

    spec.write_text("# reordered\n" + yaml.safe_dump(yaml.safe_load(spec.read_text()),
                                                     sort_keys=False))
    attack_run.run_attack("spsa", eps="2", **common)
    spec.write_text(yaml.safe_dump({**yaml.safe_load(spec.read_text()),
                                    "value_range": [0, 255]}))
    with pytest.raises(ValueError, match=r"model_identity.*onnx_spec"):
        attack_run.run_attack("spsa", eps="2,4", **common)


@pytest.mark.parametrize("change", ["batch_size", "uap_fit_annotations"])
def test_per_batch_draws_and_fit_files_are_part_of_a_uap_run(data_root, tmp_path, fake_cells,
                                                              change):
    fit = tmp_path / "fit.json"
    shutil.copy(data_root / "coco_val_mini" / "annotations.json", fit)
    out = tmp_path / "run"
    common = dict(out=out, eps="4", steps="1", uap_fit_annotations=fit, **_coco(data_root))
    attack_run.run_attack("uap", batch_size=4, **common)
    attack_run.run_attack("uap", batch_size=4, **common)  # resume: accepted
    if change == "batch_size":
        with pytest.raises(ValueError, match=r"conventions\.batch_size"):
            attack_run.run_attack("uap", batch_size=2, **common)
    else:
        data = json.loads(fit.read_text())
        data["annotations"] = data["annotations"][1:]  # the same file name, other people
        fit.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=r"input_hashes\.uap_fit_annotations"):
            attack_run.run_attack("uap", batch_size=4, **common)


def test_spsa_batch_size_is_part_of_the_run(data_root, tmp_path, fake_cells):
    common = dict(out=tmp_path / "run", eps="2", steps="1", **_coco(data_root))
    attack_run.run_attack("spsa", batch_size=16, **common)
    with pytest.raises(ValueError, match=r"conventions\.batch_size"):
        attack_run.run_attack("spsa", batch_size=2, **common)


def test_mpii_max_images_is_part_of_the_dataset_key(data_root):
    from robustpose.benchmarking.sources import resolve_source

    root = data_root / "mpii_mini"
    names = {n: resolve_source("mpii", root, max_images=n).name for n in (1, 2, None)}
    assert len(set(names.values())) == 3
    assert names[2].endswith("[:2]")
    with pytest.raises(ValueError, match="max_images must be >= 1"):
        resolve_source("mpii", root, max_images=0)


def test_detections_file_is_identified_by_content(data_root, tmp_path, fake_cells):
    ann = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
            for a in ann["annotations"]]
    det = tmp_path / "dets.json"
    det.write_text(json.dumps(dets))
    common = dict(detections=det, out=tmp_path / "run", corruptions="fog", severities="1",
                  **_coco(data_root))
    api.run_benchmark(**common)
    api.run_benchmark(**common)  # the same boxes: accepted
    det.write_text(json.dumps([dict(d, bbox=[d["bbox"][0] + 5] + d["bbox"][1:]) for d in dets]))
    with pytest.raises(ValueError, match=r"input_hashes\.detections"):
        api.run_benchmark(**common)


def test_annotation_file_is_identified_by_content(data_root, tmp_path, fake_cells):
    root = tmp_path / "set"
    root.mkdir()
    (root / "images").symlink_to(data_root / "coco_val_mini" / "images")
    source = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    (root / "annotations.json").write_text(json.dumps(source))
    common = dict(dataset="coco-format", data_root=root, out=tmp_path / "run",
                  corruptions="fog", severities="1", progress=False, plots=False)
    api.run_benchmark(**common)
    source["annotations"] = source["annotations"][:-3]  # same name, other ground truth
    (root / "annotations.json").write_text(json.dumps(source))
    with pytest.raises(ValueError, match=r"input_hashes\.annotation_file"):
        api.run_benchmark(**common)


def _heatmaps(crops):
    import torch

    return torch.zeros(len(crops), 17, 64, 48)


def test_a_callable_needs_an_identity_to_share_a_folder(data_root, tmp_path, fake_cells):
    common = dict(input_size=(192, 256), out=tmp_path / "run", corruptions="fog",
                  severities="1", **_coco(data_root))
    api.run_benchmark(_heatmaps, **common)  # a fresh folder: fine
    with pytest.raises(ValueError, match="no identity"):  # shard 2, or an edited function
        api.run_benchmark(_heatmaps, **common)
    out = tmp_path / "named"
    api.run_benchmark(_heatmaps, model_identity="v1", **dict(common, out=out))
    api.run_benchmark(_heatmaps, model_identity="v1", **dict(common, out=out))
    with pytest.raises(ValueError, match=r"model_identity\.python"):
        api.run_benchmark(_heatmaps, model_identity="v2", **dict(common, out=out))


def test_a_module_is_identified_by_its_weights(data_root, tmp_path, fake_cells):
    import torch

    from robustpose.models import create_model

    net = create_model("mobilenetv2", num_joints=17)
    common = dict(input_size=(192, 256), out=tmp_path / "run", corruptions="fog",
                  severities="1", **_coco(data_root))
    api.run_benchmark(net, **common)
    api.run_benchmark(net, **common)  # the same weights: resumes
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    with pytest.raises(ValueError, match=r"model_identity\.module"):
        api.run_benchmark(net, **common)


def test_a_folder_from_before_identities_adopts_them(tmp_path):
    from robustpose.benchmarking import RunFolder

    settings = {"model": "m", "dataset": "d", "conventions": {},
                "model_info": {"identity": {"weights": "abc"}}}
    legacy = {k: v for k, v in settings.items() if k != "model_info"}
    (tmp_path / "run.json").write_text(json.dumps(legacy))
    RunFolder(tmp_path).claim(settings).close()
    assert json.loads((tmp_path / "run.json").read_text())["model_identity"] == {"weights": "abc"}
    with pytest.raises(ValueError, match="model_identity"):
        RunFolder(tmp_path).claim({**settings, "model_info": {"identity": {"weights": "x"}}})


def test_onnx_spec_unknown_key_is_refused_with_the_nearest_name(tmp_path):
    from robustpose.models.adapters import load_onnx_spec

    path = _spec_copy(tmp_path, "typo.yaml", heatmap_activaton="sigmoid")
    with pytest.raises(ValueError, match=r"typo\.yaml: unknown ONNX spec key "
                                         r"'heatmap_activaton'; did you mean 'heatmap_activation'"):
        load_onnx_spec(path)
    spec = load_onnx_spec(SPEC)
    assert spec.content_sha256() == load_onnx_spec(_spec_copy(tmp_path, "same.yaml")).content_sha256()
    other = load_onnx_spec(_spec_copy(tmp_path, "other.yaml", value_range=[0, 255]))
    assert other.content_sha256() != spec.content_sha256()
