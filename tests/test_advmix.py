"""The advmix method on stand-ins: the mix, both update rules, the teacher, the ablations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.augment import AutoAugment, GridMask, make_views, mix
from robustpose.models import IMAGENET_MEAN, IMAGENET_STD
from robustpose.training import AdvMix, AugmentedHeatmap, Trainer, build_method
from training_standins import FakeKeypointDataset, FakeSpec, Split, TinyHeatmapNet, seeded_standin, tiny_config


def test_the_pixel_space_mix_equals_the_normalised_space_mix():
    images = torch.rand(2, 3, 32, 24)
    views = make_views(images, [AutoAugment(), GridMask(prob=1.0)], np.random.default_rng(0))
    logits = torch.randn(2, 3, 32, 24)
    weights = torch.softmax(logits, 1)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
    official = mix((views - mean) / std, weights)  # the official order: normalise, mix
    ours = mix(views, weights)
    assert torch.allclose(ours, official * std[:, 0] + mean[:, 0], atol=1e-6)
    assert float(ours.min()) >= 0 and float(ours.max()) <= 1


def teacher_file(tmp_path):
    from robustpose.models import save_checkpoint
    return str(save_checkpoint(seeded_standin(7), tmp_path / "teacher.pt"))


def trainer_for(tmp_path, method, epochs=1, data_seed=0, **train):
    cfg = tiny_config(tmp_path, epochs=epochs, optimizer="adam", max_iters_per_epoch=1, **train)
    cfg["val"]["every"] = 0
    cfg["model"]["init_from"] = teacher_file(tmp_path)
    data = Split(FakeKeypointDataset(n=8, seed=data_seed), FakeSpec())
    return Trainer(cfg, model=seeded_standin(1), train_data=data, method=method, device="cpu",
                   progress=False)


class StandinTeacher(AdvMix):
    """The teacher is the stand-in net (the registry cannot build 'standin')."""

    def _build_teacher(self, config, num_joints):
        teacher = TinyHeatmapNet()
        state = torch.load(config["model"]["init_from"], weights_only=True)["model"]
        teacher.load_state_dict(state)
        return teacher


def one_step(trainer):
    batch = next(iter(trainer._train_loader(0)))
    return trainer.method.train_step(trainer.forward, batch, trainer.step)


def states(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_one_alternating_step_trains_both_players_and_never_the_teacher(tmp_path):
    trainer = trainer_for(tmp_path, StandinTeacher(ngf=4))
    method = trainer.method
    pose0, gen0, teacher0 = states(trainer.model), states(method.generator), states(method.teacher)
    logs = one_step(trainer)
    assert set(logs) == {"loss", "pose_gt", "kd", "generator"}
    assert all(torch.isfinite(v) for v in logs.values())
    assert torch.allclose(logs["loss"], 0.9 * logs["pose_gt"] + 0.1 * logs["kd"])
    assert float(logs["generator"]) < 0
    assert any(not torch.equal(v, trainer.model.state_dict()[k]) for k, v in pose0.items())
    assert any(not torch.equal(v, method.generator.state_dict()[k]) for k, v in gen0.items())
    assert all(torch.equal(v, method.teacher.state_dict()[k]) for k, v in teacher0.items())
    # the generator step left the pose model's parameters trainable and without gradients
    assert all(p.requires_grad for p in trainer.model.parameters())
    assert trainer.frozen == {"teacher": method.teacher}


def test_reversal_and_alternating_agree_where_they_should(tmp_path):
    """Same batch: the pose update is the same (the reversal layer only flips what reaches
    the generator); with the pose model's lr at 0 the generator updates agree too, since
    the alternating re-forward then sees an unchanged pose model."""
    def run(updates, lr, sub):
        trainer = trainer_for(tmp_path / sub, StandinTeacher(ngf=4, updates=updates))
        for group in trainer.optimizers["model"].param_groups:
            group["lr"] = lr  # 0 is refused by the config check, not by Adam
        one_step(trainer)
        return states(trainer.model), states(trainer.method.generator)
    pose_a, gen_a = run("alternating", 1e-2, "a")
    pose_r, gen_r = run("reversal", 1e-2, "r")
    assert all(torch.allclose(pose_a[k], pose_r[k], atol=1e-7) for k in pose_a)
    assert any(not torch.allclose(gen_a[k], gen_r[k], atol=1e-7) for k in gen_a)
    _, gen_a0 = run("alternating", 0.0, "a0")
    _, gen_r0 = run("reversal", 0.0, "r0")
    assert all(torch.allclose(gen_a0[k], gen_r0[k], atol=1e-6) for k in gen_a0)
    assert any(not torch.equal(gen_a0[k], gen_a[k]) for k in gen_a)


def test_kd_on_mix_uses_the_mixed_output(tmp_path):
    clean = one_step(trainer_for(tmp_path / "c", StandinTeacher(ngf=4)))
    on_mix = one_step(trainer_for(tmp_path / "m", StandinTeacher(ngf=4, kd_on="mix")))
    assert torch.equal(clean["pose_gt"], on_mix["pose_gt"])  # same batch, same mix
    assert not torch.equal(clean["kd"], on_mix["kd"])


@pytest.mark.parametrize("mixing", ["image", "equal", "dirichlet", "sequential", "none"])
def test_each_mixing_ablation_trains(tmp_path, mixing):
    trainer = trainer_for(tmp_path, StandinTeacher(ngf=4, mixing=mixing))
    pose0 = states(trainer.model)
    logs = one_step(trainer)
    assert all(torch.isfinite(v) for v in logs.values())
    assert ("generator" in logs) == (mixing == "image")
    assert set(trainer.optimizers) == ({"model", "generator"} if mixing == "image" else {"model"})
    assert any(not torch.equal(v, trainer.model.state_dict()[k]) for k, v in pose0.items())


def test_alpha_zero_needs_no_teacher_and_trains_on_the_mix_only(tmp_path):
    cfg = tiny_config(tmp_path, epochs=1, max_iters_per_epoch=1)
    cfg["val"]["every"] = 0
    trainer = Trainer(cfg, model=seeded_standin(1), train_data=Split(FakeKeypointDataset(n=8), FakeSpec()),
                      method=AdvMix(alpha=0.0, ngf=4), device="cpu", progress=False)
    logs = one_step(trainer)
    assert trainer.frozen == {} and "kd" not in logs and torch.equal(logs["loss"], logs["pose_gt"])


def test_augment_method_is_standard_training_on_augmented_crops(tmp_path):
    cfg = tiny_config(tmp_path, epochs=1, max_iters_per_epoch=1)
    cfg["train"]["method"], cfg["train"]["method_args"] = "augment", {"augmentations": ["gridmask"]}
    method = build_method(cfg)
    assert isinstance(method, AugmentedHeatmap)
    trainer = Trainer(cfg, model=seeded_standin(1), train_data=Split(FakeKeypointDataset(n=8), FakeSpec()),
                      method=method, device="cpu", progress=False)
    batch = next(iter(trainer._train_loader(0)))
    seen = []
    trainer.method.criterion.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    state = trainer.np_rng.bit_generator.state
    trainer.method.train_step(trainer.forward, batch, trainer.step)
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    expected = GridMask()(batch["image"], rng)
    assert not torch.equal(expected, batch["image"])
    with torch.no_grad():
        assert torch.allclose(seen[0], seeded_standin(1)(expected), atol=1e-6)


@pytest.mark.parametrize("args, message", [
    ({"mixing": "cutmix"}, "mixing must be one of"),
    ({"updates": "both"}, "updates must be one of"),
    ({"kd_on": "teacher"}, "kd_on must be one of"),
    ({"loss": "l1"}, "loss must be one of"),
    ({"alpha": 1.5}, "alpha must be in"),
    ({"augmentations": [{"type": "mixup"}]}, "unknown augmentation 'mixup'"),
    ({"ngf": 4, "teacher": None}, "alpha > 0 needs a teacher"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, args, message):
    cfg = tiny_config(tmp_path, epochs=1)
    cfg["train"]["method"], cfg["train"]["method_args"] = "advmix", args
    with pytest.raises(ValueError, match=message):
        method = build_method(cfg)
        Trainer(cfg, model=seeded_standin(1), train_data=Split(FakeKeypointDataset(n=8), FakeSpec()),
                method=method, device="cpu", progress=False)


def test_one_backward_can_step_several_optimizers_each_with_its_own_clip(tmp_path):
    """The trainer hook behind ``updates: reversal``: backward_and_step(loss, optimizer=(a, b))."""
    from torch import nn

    from robustpose.training import OptimizerSpec, StandardHeatmap

    class Two(StandardHeatmap):
        def setup(self, trainer):
            self.layer = nn.Linear(2, 1, bias=False, dtype=torch.float64)
            nn.init.ones_(self.layer.weight)
            self.opt = torch.optim.SGD(self.layer.parameters(), lr=1.0)

        def extra_optimizers(self):
            return {"g": OptimizerSpec(self.opt, grad_clip=0.5)}

    cfg = tiny_config(tmp_path, optimizer="sgd", momentum=0.0)
    trainer = Trainer(cfg, model=seeded_standin(1), train_data=Split(FakeKeypointDataset(n=8), FakeSpec()),
                      method=Two(), device="cpu", progress=False)
    layer = trainer.method.layer
    model_w = trainer.model.body[0].weight.detach().clone()
    trainer.model.body[0].weight.grad = torch.ones_like(model_w)  # stale: must be zeroed
    x = torch.full((1, 2), 10.0, dtype=torch.float64)
    loss = layer(x).sum() + trainer.model(torch.rand(1, 3, 32, 24)).double().sum()
    trainer.step.backward_and_step(loss, optimizer=("model", "g"))
    moved = float((layer.weight.detach() - 1).norm())
    assert moved == pytest.approx(0.5, rel=1e-5)  # clipped to its own norm
    grad = trainer.model.body[0].weight.grad
    assert not torch.equal(trainer.model.body[0].weight.detach(), model_w)
    assert torch.allclose(trainer.model.body[0].weight.detach(), model_w - 1e-2 * grad)  # one fresh gradient


def test_kd_only_trains_on_the_clean_crop_with_one_student_forward(tmp_path):
    trainer = trainer_for(tmp_path, StandinTeacher(mixing="none"))
    calls = []
    trainer.model.register_forward_hook(lambda m, args, out: calls.append(args[0]))
    batch = next(iter(trainer._train_loader(0)))
    trainer.method.train_step(trainer.forward, batch, trainer.step)
    assert len(calls) == 1 and torch.equal(calls[0], batch["image"])


def test_every_advmix_config_loads_and_builds_its_method():
    from pathlib import Path

    from robustpose.training import load_config
    configs = sorted((Path(__file__).resolve().parents[1] / "configs" / "advmix").glob("*.yaml"))
    assert len(configs) >= 2
    for path in configs:
        config = load_config(path, [])
        method = build_method(config)
        assert method.name == config["train"]["method"], path
        if method.name == "advmix":
            assert config["model"]["init_from"] or method.alpha == 0, path


def test_the_synthpose_advmix_config_trains_from_the_cli(tmp_path, capsys):
    """configs/advmix/synthpose_advmix.yaml: the bundled SynthPose model as student start and
    teacher, two steps on a 4-image SynthPose split rendered here."""
    from pathlib import Path

    from robustpose.cli import main
    config = Path(__file__).resolve().parents[1] / "configs" / "advmix" / "synthpose_advmix.yaml"
    out = tmp_path / "run"
    code = main(["train", str(config), f"data.train={{split: train, num_images: 4, seed: 1, root: {tmp_path}}}",
                 "data.val=null", "val.every=0", "train.epochs=1", "train.max_iters_per_epoch=2",
                 "train.batch_size=2", "data.num_workers=0", "--out", str(out),
                 "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    header, row = (out / "log.csv").read_text().strip().splitlines()
    values = dict(zip(header.split(","), row.split(",")))
    assert float(values["train_generator"]) < 0 < float(values["train_kd"])
    assert float(values["lr_generator"]) == 1e-3
    data = torch.load(out / "checkpoint.pt", weights_only=True)
    assert set(data["extra_modules"]) == {"generator"}


def test_clean_identical_weight_counts_the_weight_on_pixels_equal_to_the_clean_crop():
    from robustpose.augment import clean_identical_weight
    clean = torch.rand(2, 3, 8, 6, generator=torch.Generator().manual_seed(0))
    kept = clean.clone()
    kept[..., :, 3:] += 0.1                                       # right half changed
    changed = clean + 0.2                                         # changed everywhere
    views = torch.stack([clean, kept, changed], 1)
    assert clean_identical_weight(views, torch.tensor([[1.0, 0.0, 0.0]]).expand(2, 3)) == 1.0
    assert clean_identical_weight(views, torch.tensor([[0.0, 0.0, 1.0]]).expand(2, 3)) == 0.0
    assert clean_identical_weight(views, torch.full((2, 3), 1 / 3)) == pytest.approx(0.5)  # 1/3 + 1/6
    weights = torch.zeros(2, 3, 8, 6)
    weights[:, 1, :, :3] = 1.0   # all weight on the kept half of view 1
    weights[:, 2, :, 3:] = 1.0   # and on changed pixels of view 2
    assert clean_identical_weight(views, weights) == pytest.approx(0.5)
    # GridMask's kept pixels count, its masked ones do not
    views = make_views(clean, [GridMask(prob=1.0)], np.random.default_rng(0))
    kept_fraction = float((views[:, 1] == views[:, 0]).all(1).float().mean())
    assert 0 < kept_fraction < 1
    assert clean_identical_weight(views, torch.tensor([[0.0, 1.0]]).expand(2, 2)) == pytest.approx(kept_fraction)
    with pytest.raises(ValueError, match="do not match"):
        clean_identical_weight(views, torch.ones(2, 3))


@pytest.mark.parametrize("ngf", [0, -4, 2.5, "16"])
def test_a_generator_width_below_one_is_one_line_naming_the_key(ngf):
    """Issue 24 item 11: ``ngf: 0`` (or negative) used to fail deep inside the U-Net."""
    from robustpose.training.advmix import AdvMix

    with pytest.raises(ValueError, match=r"train\.method_args\.ngf must be an integer >= 1"):
        AdvMix(ngf=ngf)
