"""The query (SPSA) attack on whole-image models (issue 26 s2) and the int32 feed of SPSA's
queries to a top-down ONNX model (MoveNet Lightning): the objective on known poses, the
query view equal to predict_image, the eps ball and the untouched padding, seeded draws,
the attack run's cells / resume / refusals on the real MultiPose file."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robustpose.benchmarking.whole_image_attack import (Reference, WholeImageSPSA,
                                                        clean_reference, match_loss,
                                                        oks_matrix)
from robustpose.models.whole_image import People, WholeImageCallable

SIGMAS = np.full(17, 0.05)


def _pose(x0: float, y0: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.stack([x0 + rng.uniform(0, 40, 17), y0 + rng.uniform(0, 80, 17),
                     np.ones(17)], axis=1)


def test_objective_on_known_poses():
    a, b = _pose(10, 10), _pose(200, 50)
    ref = Reference(np.stack([a, b]), [1600.0, 1600.0], [1.0, 1.0])
    assert match_loss(People(np.stack([a, b]), [1.0, 1.0]), ref, SIGMAS) == pytest.approx(0.0)
    # one person found with score 0.5, the other missed: 1 - (0.5 + 0) / 2
    assert match_loss(People(a[None], [0.5]), ref, SIGMAS) == pytest.approx(0.75)
    assert match_loss(People(np.zeros((0, 17, 3)), []), ref, SIGMAS) == 1.0
    # every keypoint moved by d px: OKS = exp(-d^2 / (2 area (2 sigma)^2)), COCOeval's formula
    moved = a.copy()
    moved[:, 0] += 6.0
    want = np.exp(-36.0 / (2 * 1600.0 * 0.1 ** 2))
    assert oks_matrix(moved[None], ref, SIGMAS)[0, 0] == pytest.approx(want)
    # an unlabelled keypoint (weight 0) does not count
    half = a.copy()
    half[:8, 2] = 0
    shifted = a.copy()
    shifted[:8, :2] += 500
    assert oks_matrix(shifted[None], Reference(half[None], [1600.0], [1.0]),
                      SIGMAS)[0, 0] == pytest.approx(1.0)
    # the label-free reference: the model's people weighted by its scores
    clean = clean_reference(People(np.stack([a, b]), [0.9, 0.2],
                                   np.asarray([[0, 0, 40, 40], [0, 0, 10, 20]], float)))
    assert clean.areas.tolist() == [1600.0, 200.0] and clean.weights.tolist() == [0.9, 0.2]
    assert match_loss(People(a[None], [1.0]), clean, SIGMAS) == pytest.approx(0.2 / 1.1)


def _multipose(models_root):
    from robustpose.models.onnx_adapter import open_model_file

    path = models_root / "movenet_multipose_lightning.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return open_model_file(path, "movenet-multipose")


def test_query_view_is_predict_image_and_quantises_each_query(models_root, data_root):
    from robustpose.data import load_image

    model = _multipose(models_root)
    image = load_image(sorted((data_root / "coco_val_mini/images").glob("*.jpg"))[0])
    view = model.query_view(image)
    direct = model.predict_image(image)
    via = view.people(view.input[None])[0]
    assert np.array_equal(via.keypoints, direct.keypoints) and len(direct) > 0
    # the mask is the image's pixels in the letterboxed input: the padding is the pad value
    h, w = image.shape[:2]
    scale = 256 / max(h, w)
    assert view.mask.sum() == round(h * scale) * round(w * scale)
    assert torch.all(view.input[:, view.mask[0] == 0] == 0)
    # MultiPose takes int32: each query is rounded to a level, so +0.4 level changes nothing
    fed = []
    run = model.runner._run
    model.runner._run = lambda x: fed.append(x) or run(x)
    nudged = view.people((view.input + 0.4 / 255)[None].clamp(0, 1))[0]
    assert fed[0].dtype == np.int32 and np.array_equal(nudged.keypoints, direct.keypoints)


def test_attack_stays_in_the_ball_off_the_padding_and_is_seeded(models_root, data_root):
    from robustpose.data import load_image

    model = _multipose(models_root)
    image = load_image(sorted((data_root / "coco_val_mini/images").glob("*.jpg"))[0])
    view = model.query_view(image)
    ref = clean_reference(model.predict_image(image))

    def attack(seed):
        atk = WholeImageSPSA(view, ref, SIGMAS, eps=8, steps=2, samples=2, seed=seed)
        return atk, atk(view.input[None], {"reference": "given"})

    atk, adv = attack(0)
    delta = (adv[0] - view.input).abs()
    assert float(delta.max()) <= 8 / 255 + 1e-6 and float(delta.max()) > 0
    assert float(delta[:, view.mask[0] == 0].max()) == 0.0  # padding untouched
    assert atk.queries_used == 2 * 2 * 2
    assert torch.equal(adv, attack(0)[1]) and not torch.equal(adv, attack(1)[1])
    # the label-free reference costs the one clean query
    free = WholeImageSPSA(view, None, SIGMAS, eps=8, steps=1, samples=2, seed=0)
    free(view.input[None])
    assert free.queries_used == 1 + 4


def test_whole_image_spsa_run_cells_resume_and_refusals(models_root, data_root, tmp_path,
                                                        capsys):
    from robustpose.benchmarking.attack_run import run_attack

    path = models_root / "movenet_multipose_lightning.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    kwargs = dict(onnx=path, onnx_spec="movenet-multipose", dataset="coco-format",
                  data_root=data_root / "coco_val_mini", max_images=2, steps="2",
                  spsa_samples=2, out=tmp_path / "run", plots=False)
    card = run_attack("spsa", eps="0,8", **kwargs)
    records = {r["corruption"]: r for r in map(json.loads, (tmp_path / "run/results.jsonl")
                                               .read_text().splitlines())}
    clean, zero, eight = records["clean"], records["spsa-U@0"], records["spsa-U@8"]
    assert clean["metric_value"] > 0
    assert zero["metric_value"] == clean["metric_value"]  # eps 0: the clean input itself
    assert eight["metric_value"] <= clean["metric_value"]
    assert eight["queries_per_crop"] == 8 and eight["loss"] == "oks_match"
    settings = json.loads((tmp_path / "run/run.json").read_text())
    assert settings["conventions"]["boxes"].startswith("none")
    assert card["cells"][-1]["relative_metric"] == pytest.approx(
        eight["metric_value"] / clean["metric_value"])
    capsys.readouterr()
    run_attack("spsa", eps="0,8", **kwargs)
    assert "0 cell(s) to run, 3 done already" in capsys.readouterr().err
    with pytest.raises(ValueError, match="queries only .attack spsa., not igsm"):
        run_attack("igsm", eps="8", **{**kwargs, "out": tmp_path / "igsm"})
    with pytest.raises(ValueError, match="untargeted"):
        run_attack("spsa", eps="8", targeted=True, **{**kwargs, "out": tmp_path / "t"})


def test_callable_queries_are_uint8_images():
    seen = []

    def fn(image):
        seen.append(image.dtype)
        return People(np.asarray([[[float(image.mean()), 0.0, 1.0]] * 17]), [1.0])

    model = WholeImageCallable(fn, name="fn")
    image = np.full((8, 6, 3), 100, np.uint8)
    view = model.query_view(image)
    assert view.mask is None and tuple(view.input.shape) == (3, 8, 6)
    out = view.people(torch.stack([view.input, view.input + 0.6 / 255]))
    assert seen == [np.uint8] * 2
    assert out[0].keypoints[0, 0, 0] == 100.0 and out[1].keypoints[0, 0, 0] == 101.0


def test_spsa_feeds_movenet_lightning_int32_rounded_queries(models_root, data_root, tmp_path):
    """Top-down MoveNet Lightning (int32 input): every SPSA probe reaches the session as
    int32, the probe's float crop * 255 rounded; the attack run works end to end."""
    from robustpose.attacks.spsa import SPSA
    from robustpose.benchmarking.attack_run import run_attack
    from robustpose.models.onnx_adapter import open_model_file

    path = models_root / "movenet_singlepose_lightning.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    model = open_model_file(path, "movenet")
    fed, probes = [], []
    run, prepare = model._run, model._prepare
    model._run = lambda x: fed.append(x) or run(x)
    model._prepare = lambda crops: probes.append(crops.clone()) or prepare(crops)
    crops = torch.rand((1, 3, 192, 192), generator=torch.Generator().manual_seed(0))
    adv = SPSA(model, eps=4, steps=1, samples=2, seed=0)(crops)
    assert float((adv - crops).abs().max()) <= 4 / 255 + 1e-6
    assert fed and all(x.dtype == np.int32 for x in fed)
    want = np.rint(probes[-1].numpy().transpose(0, 2, 3, 1) * 255).astype(np.int32)
    got = np.concatenate(fed[-len(want):])  # a batch-1 model is fed probe by probe
    assert np.array_equal(got, want)
    card = run_attack("spsa", onnx=path, onnx_spec="movenet", dataset="coco-format",
                      data_root=data_root / "coco_val_mini", max_images=1, eps="8",
                      steps="1", spsa_samples=2, out=tmp_path / "lightning", plots=False)
    cell = card["cells"][-1]
    assert cell["queries_per_crop"] == 1 + 4 and cell["relative_metric"] is not None
