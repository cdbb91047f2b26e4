"""The AdvMix paper's comparison figures (Fig. 4, 5, 6) from tiny real benchmark runs:
the bundled model with and without flip test (two real runs of one corruption at
severities 1 and 3 on 2 SynthPose images)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robustpose.reports.advmix_figures import (benchmark_view, gain, plot_ap_rpc, plot_gain,
                                               predict_image, skeleton_comparison)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from robustpose.benchmarking import run_benchmark

    root = tmp_path_factory.mktemp("advmix_figures")
    common = {"max_images": 2, "corruptions": "gaussian_noise", "severities": "1,3",
              "workers": 0, "progress": False, "plots": False}
    run_benchmark(out=root / "a", flip_test=True, save_predictions=True, **common)
    run_benchmark(out=root / "b", flip_test=False, name="bundled-noflip", **common)
    return root


def test_gain_is_b_minus_a_per_cell(runs):
    a = json.loads((runs / "a" / "summary.json").read_text())
    b = json.loads((runs / "b" / "summary.json").read_text())
    g = gain(runs / "a", runs / "b")
    cells = a["per_cell"]["gaussian_noise"], b["per_cell"]["gaussian_noise"]
    assert g["per_severity"]["0"] == pytest.approx(b["clean"] - a["clean"])
    for s in ("1", "3"):
        assert g["per_severity"][s] == pytest.approx(cells[1][s] - cells[0][s])
    assert g["per_corruption"]["gaussian_noise"] == pytest.approx(
        np.mean([cells[1][s] - cells[0][s] for s in ("1", "3")]))
    assert g["b"]["model"] == "bundled-noflip"


def test_gain_refuses_runs_without_shared_cells(runs):
    a = benchmark_view(runs / "a")
    other = dict(json.loads((runs / "b" / "summary.json").read_text()),
                 per_cell={"motion_blur": {"1": 10.0}})
    with pytest.raises(ValueError, match="share no corrupted cell"):
        gain(runs / "a", other)
    with pytest.raises(FileNotFoundError, match="no summary.json nor card.json"):
        benchmark_view(runs)
    assert a["clean"] is not None


def test_fig4_and_fig5_are_written_and_deterministic(runs, tmp_path):
    first = plot_gain(runs / "a", runs / "b", tmp_path / "fig4.png").read_bytes()
    assert first[:8] == PNG
    assert plot_gain(runs / "a", runs / "b", tmp_path / "again.png").read_bytes() == first
    fig5 = plot_ap_rpc([runs / "a", runs / "b"], tmp_path / "fig5.png", labels=["A", "B"])
    assert fig5.read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="1 labels for 2 runs"):
        plot_ap_rpc([runs / "a", runs / "b"], tmp_path / "x.png", labels=["A"])


def test_fig6_predicts_what_the_benchmark_scored(runs, tmp_path):
    """The corrupted image and the keypoints of Fig. 6 are the benchmark's: the same
    seeded corruption, the same adapter path (its saved predictions of the cell)."""
    from robustpose.benchmarking.loading import resolve_adapter
    from robustpose.data.synth import materialize, validation_split

    adapter, _ = resolve_adapter(None)
    settings = json.loads((runs / "a" / "run.json").read_text())
    images = materialize(validation_split(), None) / "images"
    image, truth, predicted, spec = predict_image(
        adapter, settings["annotation_file"], images, "gaussian_noise", 3,
        seed=settings["conventions"]["seed"], flip_test=True)
    saved = json.loads((runs / "a" / "predictions" / "gaussian_noise-3.json").read_text())
    first = min((p["image_id"] for p in saved), key=str)
    scored = np.array([np.reshape(p["keypoints"], (-1, 3)) for p in saved
                       if p["image_id"] == first])
    assert predicted.shape == truth.shape == (len(scored), len(spec.keypoint_names), 3)
    for person in predicted:  # every person of the figure is one the benchmark scored
        assert np.abs(scored[:, :, :2] - person[None, :, :2]).max(axis=(1, 2)).min() < 1e-3
    clean, *_ = predict_image(adapter, settings["annotation_file"], images)
    assert clean.shape == image.shape and np.abs(clean.astype(int) - image).mean() > 1.0
    path = skeleton_comparison({"A: flip": adapter}, settings["annotation_file"], images,
                               tmp_path / "fig6.png", "gaussian_noise", 3)
    assert path.read_bytes()[:8] == PNG
