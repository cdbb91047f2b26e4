"""The -C round trip: `robustpose corrupt --annotations` (lossless PNG) holds exactly the
images on-the-fly corruption makes, so `robustpose benchmark --corrupted-root` on it scores
exactly the on-the-fly cells under the same seed.

Real data: the first 4 images (by id) of coco_val_mini, a random corruption
(gaussian_noise) and a deterministic one (contrast) at severities 1-2, and the BlazePose
lite ONNX model of tests/test_benchmark.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import robustpose
from robustpose.cli import main
from robustpose.data import CorruptedImages, load_coco_records, load_image
from robustpose.data.corrupted import find_corrupted_image
from robustpose.evaluation import ResultsStore

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "configs" / "onnx" / "blazepose_landmark_lite.yaml"
CORRUPTIONS, SEVERITIES, SEED = ("gaussian_noise", "contrast"), (1, 2), 3


@pytest.fixture(scope="module")
def written(data_root, tmp_path_factory):
    """(annotation file of 4 images, image root, the -C folder written by the CLI)."""
    src = data_root / "coco_val_mini"
    tmp = tmp_path_factory.mktemp("roundtrip")
    data = json.loads((src / "annotations.json").read_text())
    keep = set(sorted(img["id"] for img in data["images"])[:4])
    data["images"] = [img for img in data["images"] if img["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    annotations = tmp / "annotations.json"
    annotations.write_text(json.dumps(data))
    out = tmp / "coco-C"
    assert main(["corrupt", str(src / "images"), str(out), "--annotations", str(annotations),
                 "--corruptions", ",".join(CORRUPTIONS), "--severities", "1-2",
                 "--seed", str(SEED), "--no-progress"]) == 0
    return annotations, src / "images", out


def test_written_images_equal_on_the_fly_corruption_byte_for_byte(written):
    annotations, image_root, out = written
    records, _ = load_coco_records(annotations, image_root, aspect_ratio=1.0)
    one_per_image = {r.image_id: r for r in records}
    assert len(one_per_image) == 4
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(files) == 4 * len(CORRUPTIONS) * len(SEVERITIES)
    for record in one_per_image.values():
        clean = load_image(record.image_path)
        rel = record.image_path.relative_to(image_root).as_posix()
        for corruption in CORRUPTIONS:
            for severity in SEVERITIES:
                path = find_corrupted_image(out, corruption, severity, rel)
                assert path.suffix == ".png" and f"{corruption}/{severity}/" in path.as_posix()
                want = CorruptedImages(corruption, severity, seed=SEED)(clean, record)
                assert not np.array_equal(want, clean)
                np.testing.assert_array_equal(load_image(path), want)


def test_benchmark_on_the_c_folder_scores_exactly_the_on_the_fly_cells(written, models_root,
                                                                       tmp_path):
    annotations, image_root, out = written
    options = dict(onnx=models_root / "blazepose_landmark_lite.onnx", onnx_spec=SPEC,
                   dataset="coco-format", data_root=image_root.parent, annotations=annotations,
                   corruptions=",".join(CORRUPTIONS), severities="1-2", seed=SEED, workers=0,
                   progress=False, plots=False)
    fly = robustpose.benchmark(out=tmp_path / "fly", **options)
    folder = robustpose.benchmark(out=tmp_path / "folder", corrupted_root=out, **options)
    assert "-C folders" in folder["conventions"]["corruption_source"]
    assert folder["clean"] == fly["clean"] and folder["per_cell"] == fly["per_cell"]
    assert sorted(fly["per_cell"]) == sorted(CORRUPTIONS)

    def metrics(run_dir: Path) -> dict:
        return {(r["corruption"], r["severity"]): r["metrics"]
                for r in ResultsStore(run_dir / "results.jsonl").records()}

    on_the_fly = metrics(tmp_path / "fly")
    assert len(on_the_fly) == 1 + len(CORRUPTIONS) * len(SEVERITIES)
    assert metrics(tmp_path / "folder") == on_the_fly  # every COCO stat, not only AP
    # the cells are not trivially equal: noise at severity 2 changes the score
    assert on_the_fly[("gaussian_noise", 2)] != on_the_fly[("clean", 0)]
