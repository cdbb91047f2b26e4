"""The stable-heatmap paper's baselines: AT, AugMix, Lipschitz (spectral norm), PG, ST_g, ST_a.

Each trains a few steps on the stand-ins and resumes exactly; the pieces are checked on
their own: Patch Gaussian's patch statistics, the heatmap JS against a hand computation,
spectral normalisation's singular values and its round trip through checkpoints, AT's
crops (eps ball, [0, 1], no weight gradients, the model's mode and buffers untouched).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpose.augment import AugMix, PatchGaussian, augmix_op
from robustpose.models import create_model, load_checkpoint, load_model, save_checkpoint
from robustpose.models.spectral import apply_spectral_norm, is_spectral, spectral_modules, top_singular_value
from robustpose.training import Trainer, build_method, load_config
from robustpose.training.stable_baselines import heatmap_js
from robustpose.training.stability_training import TRAIN10, stability_distance
from training_standins import FakeKeypointDataset, FakeSpec, Split, seeded_standin, tiny_config

REPO = Path(__file__).resolve().parents[1]
METHOD_ARGS = {
    "at": {"eps": 8, "steps": 2, "alpha": 4},
    "augmix": {},
    "lipschitz": {},
    "pg": {},
    "st_g": {},
    "st_a": {},
}


# ---------------------------------------------------------------------------- Patch Gaussian
def test_patch_gaussian_changes_one_clipped_square_with_the_drawn_sigma():
    images = torch.full((3, 3, 64, 48), 0.5)
    aug = PatchGaussian(patch_size=20, max_sigma=0.05, randomize=False)
    out = aug(images, np.random.default_rng(0))
    replay = np.random.default_rng(0)
    for i in range(3):
        top, left, bottom, right, sigma = aug.draw(replay, 64, 48)
        replay.standard_normal((3, bottom - top, right - left))  # the noise the crop drew
        changed = (out[i] != images[i]).any(0)
        inside = torch.zeros(64, 48, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        assert not changed[~inside].any()                    # bit-identical outside
        assert changed[inside].float().mean() > 0.99         # noise almost everywhere inside
        assert bottom - top <= 20 and right - left <= 20 and sigma == 0.05
        diff = (out[i] - images[i])[:, inside]
        assert float(diff.std()) == pytest.approx(0.05, rel=0.15)  # far from the clip


def test_patch_gaussian_draws_up_to_its_maxima_and_is_seeded():
    aug = PatchGaussian()  # patch up to the crop's longer side, sigma up to 1
    rng = np.random.default_rng(1)
    draws = [aug.draw(rng, 32, 24) for _ in range(2000)]
    sigmas = np.array([d[4] for d in draws])
    assert 0 <= sigmas.min() and sigmas.max() < 1.0 and abs(sigmas.mean() - 0.5) < 0.03
    assert max(d[2] - d[0] for d in draws) == 32                # the whole height at most
    assert all(0 <= d[0] < d[2] <= 32 and 0 <= d[1] < d[3] <= 24 for d in draws)
    images = torch.rand(4, 3, 32, 24)
    a = aug(images, np.random.default_rng(5))
    assert torch.equal(a, aug(images, np.random.default_rng(5)))
    assert not torch.equal(a, aug(images, np.random.default_rng(6)))
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(PatchGaussian(prob=0.0)(images, np.random.default_rng(0)), images)
    with pytest.raises(ValueError, match="patch_size"):
        PatchGaussian(patch_size=0)


# ---------------------------------------------------------------------------- AugMix
def test_augmix_is_the_drawn_convex_mix_of_its_chains():
    images = torch.rand(2, 3, 32, 24)
    aug = AugMix(width=3, depth=-1, severity=3)
    out = aug(images, np.random.default_rng(3))
    replay = np.random.default_rng(3)
    for i in range(2):
        weights, m, chains = aug.draw(replay)
        assert weights.sum() == pytest.approx(1.0) and all(1 <= len(c) <= 3 for c in chains)
        assert all(op in ("autocontrast", "equalize", "posterize", "solarize") for c in chains for op, _ in c)
        base = (images[i].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        mixed = np.zeros(base.shape)
        for w, chain in zip(weights, chains):
            image = base
            for op, level in chain:
                image = augmix_op(image, op, level)
            mixed += w * image / 255.0
        expected = (1 - m) * images[i] + m * torch.from_numpy(mixed).float().permute(2, 0, 1)
        assert torch.allclose(out[i], expected.clamp(0, 1), atol=1e-5)
    assert torch.equal(out, aug(images, np.random.default_rng(3)))
    with pytest.raises(ValueError, match="unknown op 'rotate'"):
        AugMix(ops=["rotate"])


# ---------------------------------------------------------------------------- JS
def test_heatmap_js_matches_a_hand_computation():
    h = [torch.tensor([[[[0.0, 1.0], [2.0, 0.5]]]]), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]),
         torch.tensor([[[[0.2, 0.2], [0.2, 3.0]]]])]
    p = [np.exp(x.numpy().ravel()) / np.exp(x.numpy().ravel()).sum() for x in h]
    m = sum(p) / 3
    expected = sum(float((pi * np.log(pi / m)).sum()) for pi in p) / 3
    assert float(heatmap_js(h)) == pytest.approx(expected, rel=1e-5)
    # temperature divides the logits; identical maps diverge by nothing
    p2 = [np.exp(x.numpy().ravel() / 0.5) / np.exp(x.numpy().ravel() / 0.5).sum() for x in h[:2]]
    m2 = (p2[0] + p2[1]) / 2
    expected2 = sum(float((pi * np.log(pi / m2)).sum()) for pi in p2) / 2
    assert float(heatmap_js(h[:2], temperature=0.5)) == pytest.approx(expected2, rel=1e-5)
    assert float(heatmap_js([h[0], h[0].clone()])) == pytest.approx(0.0, abs=1e-7)
    # mean over crops and joints: a batch of two copies of one pair gives the pair's value
    pair = [torch.cat([h[0], h[0]], 1), torch.cat([h[1], h[1]], 1)]
    assert float(heatmap_js(pair)) == pytest.approx(float(heatmap_js(h[:2])), rel=1e-6)
    assert 0 <= expected <= math.log(3)


def test_stability_distances():
    a, b = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    b[1] *= 2
    assert float(stability_distance(a, b, "mse")) == pytest.approx((4 * 1 + 4 * 4) / 8)
    assert float(stability_distance(a, b, "l2")) == pytest.approx((2.0 + 4.0) / 2)


# ---------------------------------------------------------------------------- spectral norm
def test_spectral_norm_bounds_each_convs_top_singular_value():
    model = create_model("mobilenetv2", num_joints=3, spectral_norm="all").train()
    convs = spectral_modules(model)
    n_convs = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in
                  create_model("mobilenetv2", num_joints=3).modules())
    assert len(convs) == n_convs and model.spectral_norm["scope"] == "all"
    with torch.no_grad():
        for _ in range(30):  # one power-method step per training forward
            model(torch.rand(2, 3, 32, 32))
    values = np.array([top_singular_value(m) for m in convs.values()])
    assert np.all(values < 1.02) and np.all(values > 0.98), values
    plain = create_model("mobilenetv2", num_joints=3)
    assert max(top_singular_value(m) for m in plain.modules()
               if isinstance(m, torch.nn.Conv2d)) > 1.5  # what it constrains
    head = create_model("mobilenetv2", num_joints=3, spectral_norm="head")
    assert all(not name.startswith("backbone") for name in spectral_modules(head))
    assert {"deconv_layers.0", "final_layer"} <= set(spectral_modules(head))
    with pytest.raises(ValueError, match="spectral_norm must be"):
        create_model("mobilenetv2", spectral_norm="some")
    # seeded like the weights: the same call gives the same power-method vectors, and the
    # global RNG is left alone
    state = torch.random.get_rng_state()
    a, b = (create_model("mobilenetv2", num_joints=3, spectral_norm="all", seed=1) for _ in range(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_spectral_norm_is_recorded_and_rebuilt_from_the_checkpoint(tmp_path):
    from robustpose.benchmarking.loading import resolve_adapter
    from robustpose.config import build_model_for

    config = load_config(REPO / "configs" / "stable" / "synthpose_mobilenetv2_lipschitz.yaml", [])
    extra = config["model"]["extra"]
    model = create_model("mobilenetv2", num_joints=3, extra=extra, spectral_norm="all", seed=2).train()
    with torch.no_grad():
        model(torch.rand(2, 3, 64, 64))                       # vectors move off their start
    path = save_checkpoint(model.eval(), tmp_path / "sn.pt", meta={"name": "mobilenetv2"})
    assert torch.load(path, weights_only=True)["meta"]["kwargs"] == {"spectral_norm": "all",
                                                                    "spectral_norm_iters": 1}
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        assert torch.equal(load_model(path).eval()(x), reference)
        adapter, _ = resolve_adapter(model="mobilenetv2", checkpoint=path, num_joints=3,
                                     extra=extra)             # --model NAME --checkpoint
        assert is_spectral(adapter.model) and torch.equal(adapter.model.eval()(x), reference)
        net = build_model_for(config, 3)                       # --config
        load_checkpoint(net, path)
        assert is_spectral(net) and torch.equal(net.eval()(x), reference)
    with pytest.raises(ValueError, match="has spectral normalisation"):
        load_checkpoint(create_model("mobilenetv2", num_joints=3), path)


def test_a_plain_checkpoint_initialises_a_spectrally_normalised_model(tmp_path):
    """model.init_from = the shared baseline: its weights become the unnormalised originals
    and the power-method vectors are re-estimated from them."""
    plain = create_model("mobilenetv2", num_joints=3, seed=4)
    path = save_checkpoint(plain, tmp_path / "plain.pt")
    model = create_model("mobilenetv2", num_joints=3, spectral_norm="all", seed=9)
    report = load_checkpoint(model, path, strict=True)
    assert report.ok
    conv = model.backbone.features[0][0]
    assert torch.equal(conv.parametrizations.weight.original, plain.backbone.features[0][0].weight)
    sigma = float(torch.linalg.matrix_norm(plain.backbone.features[0][0].weight.detach().flatten(1), ord=2))
    assert torch.allclose(conv.weight, plain.backbone.features[0][0].weight / sigma, rtol=1e-3, atol=1e-6)


# ---------------------------------------------------------------------------- AT crops
@pytest.mark.parametrize("craft_mode", ["eval", "train"])
def test_at_crops_stay_in_the_ball_and_leave_the_model_as_it_was(tmp_path, craft_mode):
    trainer = trainer_for(tmp_path, "at", {"eps": 8, "steps": 3, "craft_mode": craft_mode})
    batch = next(iter(trainer._train_loader(0)))
    model = trainer.model.train()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    adv = trainer.method.craft(batch)
    delta = (adv - batch["image"]).abs()
    assert float(delta.max()) <= 8 / 255 + 1e-6 and float(delta.max()) > 4 / 255
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert all(p.grad is None for p in model.parameters())
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())
    if craft_mode == "train":
        return
    # the attack raised the task loss over the clean crop's
    with torch.no_grad():
        crit = trainer.method.criterion
        model.eval()
        assert crit(model(adv), batch["target"], batch["target_weight"]) > \
            crit(model(batch["image"]), batch["target"], batch["target_weight"])


def test_at_random_start_comes_from_the_trainers_generator(tmp_path):
    a = trainer_for(tmp_path / "a", "at", METHOD_ARGS["at"])
    b = trainer_for(tmp_path / "b", "at", METHOD_ARGS["at"])
    batch = next(iter(a._train_loader(0)))
    first = a.method.craft(batch)
    assert torch.equal(first, b.method.craft(batch))
    assert not torch.equal(first, a.method.craft(batch))     # the generator moved on


# ---------------------------------------------------------------------------- training + resume
def config_for(tmp_path, method, args, epochs):
    cfg = tiny_config(tmp_path, epochs=epochs, optimizer="adam", max_iters_per_epoch=2, lr_steps=[5])
    cfg["data"]["input_size"], cfg["data"]["heatmap_size"] = [32, 32], [8, 8]  # corruptions: >= 32 px
    cfg["val"]["every"] = 0
    cfg["train"]["method"], cfg["train"]["method_args"] = method, dict(args)
    return cfg


def standin(method):
    model = seeded_standin(1)
    if method == "lipschitz":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            apply_spectral_norm(model)
    return model


def trainer_for(tmp_path, method, args, epochs=1):
    cfg = config_for(tmp_path, method, args, epochs)
    data = Split(FakeKeypointDataset(n=8, size=(32, 32)), FakeSpec())
    return Trainer(cfg, model=standin(method), train_data=data, method=build_method(cfg),
                   device="cpu", progress=False)


@pytest.mark.parametrize("method", sorted(METHOD_ARGS))
def test_each_baseline_trains_and_resumes_exactly(tmp_path, method):
    args = METHOD_ARGS[method]
    straight = trainer_for(tmp_path / "a", method, args, epochs=2)
    start = {k: v.clone() for k, v in straight.model.state_dict().items()}
    history = straight.fit()
    assert all(math.isfinite(v) for row in history for k, v in row.items() if k.startswith("train_"))
    assert any(not torch.equal(v, straight.model.state_dict()[k]) for k, v in start.items())
    extra = {"at": "train_adv", "augmix": "train_js", "st_g": "train_stability",
             "st_a": "train_stability"}.get(method)
    if extra:
        assert history[-1][extra] > 0
    first = trainer_for(tmp_path / "b", method, args, epochs=1)
    first.fit()
    resumed = trainer_for(tmp_path / "b", method, args, epochs=2)
    resumed.resume(tmp_path / "b" / "run" / "checkpoint.pt")
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert straight.np_rng.random() == resumed.np_rng.random()
    assert torch.equal(torch.rand(1, generator=straight.torch_rng), torch.rand(1, generator=resumed.torch_rng))


def test_lipschitz_refuses_a_model_without_spectral_norm(tmp_path):
    cfg = config_for(tmp_path, "lipschitz", {}, 1)
    with pytest.raises(ValueError, match="spectrally normalised model"):
        Trainer(cfg, model=seeded_standin(1), train_data=Split(FakeKeypointDataset(n=8, size=(32, 32)), FakeSpec()),
                method=build_method(cfg), device="cpu", progress=False)


@pytest.mark.parametrize("method, args, message", [
    ("at", {"craft_mode": "both"}, "craft_mode must be one of"),
    ("at", {"adv_weight": 2}, "adv_weight must be in"),
    ("augmix", {"temperature": 0}, "temperature > 0"),
    ("st_g", {"distance": "l1"}, "distance must be one of"),
    ("st_g", {"perturbation": "corruptions"}, "use st_a"),
    ("st_a", {"corruptions": ["fog", "nope"]}, "unknown corruption 'nope'"),
    ("pg", {"max_sigma": -1}, "max_sigma"),
])
def test_bad_method_arguments_are_one_line_errors(tmp_path, method, args, message):
    with pytest.raises(ValueError, match=message):
        build_method(config_for(tmp_path, method, args, 1))


def test_st_a_trains_on_the_ten_training_perturbations():
    from robustpose.corruptions import parse_corruptions
    paper = ("brightness", "defocus_blur", "zoom_blur", "frost", "contrast", "gaussian_noise",
             "glass_blur", "motion_blur", "shot_noise", "snow")
    assert TRAIN10 == paper and tuple(parse_corruptions("train10")) == paper
    method = build_method(config_for(Path("/nowhere"), "st_a", {}, 1))
    assert method.corrupt.names == TRAIN10 and method.corrupt.severities == (1, 2, 3, 4, 5)


# ---------------------------------------------------------------------------- configs
def test_every_baseline_config_loads_and_builds_its_method():
    """Each config trains its method from the shared baseline with the baseline's data and
    model and the fine-tuned rows' schedule (the other rows of the miniature table)."""
    stable = REPO / "configs" / "stable"
    baseline = load_config(stable / "synthpose_mobilenetv2_baseline.yaml", [])
    row = load_config(stable / "synthpose_mobilenetv2_rcc.yaml", [])
    schedule = ("batch_size", "epochs", "max_iters_per_epoch", "lr", "lr_steps", "optimizer")
    names = ["at", "augmix", "lipschitz", "pg", "st_g", "st_a"]
    for name in names:
        path = stable / f"synthpose_mobilenetv2_{name}.yaml"
        config = load_config(path, [])
        assert config["data"] == baseline["data"], path
        assert config["model"]["extra"] == baseline["model"]["extra"], path
        assert config["model"]["init_from"] == row["model"]["init_from"], path
        assert all(config["train"][k] == row["train"][k] for k in schedule), path
        assert build_method(config).name == name == config["train"]["method"], path
        assert config["model"]["name"] == "mobilenetv2", path
        assert config["model"]["init_from"] == "runs/synthpose_mobilenetv2_baseline/best.pt", path
        assert "per-step CPU time" in path.read_text().split("\nseed:")[0], path
        spectral = (config["model"]["kwargs"] or {}).get("spectral_norm")
        assert (spectral == "all") == (name == "lipschitz"), path
