"""The generator's step of advmix on stand-ins: it ascends the pose loss at a fixed pose
model (and descends it with the sign flipped), leaving the pose model untouched."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.augment import make_views, mix
from robustpose.training import AdvMix, Trainer
from training_standins import FakeKeypointDataset, FakeSpec, Split, TinyHeatmapNet, seeded_standin, tiny_config


class StandinTeacher(AdvMix):
    """The teacher is the stand-in net (the registry cannot build 'standin')."""

    def _build_teacher(self, config, num_joints):
        teacher = TinyHeatmapNet()
        teacher.load_state_dict(torch.load(config["model"]["init_from"], weights_only=True)["model"])
        return teacher


def trainer_for(tmp_path, method, lr=1e-3):
    from robustpose.models import save_checkpoint
    cfg = tiny_config(tmp_path, epochs=1, optimizer="adam", max_iters_per_epoch=1, lr=lr)
    cfg["val"]["every"] = 0
    cfg["model"]["init_from"] = str(save_checkpoint(seeded_standin(7), tmp_path / "teacher.pt"))
    data = Split(FakeKeypointDataset(n=8, seed=0), FakeSpec())
    return Trainer(cfg, model=seeded_standin(1), train_data=data, method=method, device="cpu",
                   progress=False)


def first_batch(trainer):
    return next(iter(trainer._train_loader(0)))


def states(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_a_generator_step_moves_the_pose_loss_at_a_fixed_pose_model(tmp_path, direction):
    """Fixed pose model (eval mode: BatchNorm on its running statistics), fixed batch and
    views: each generator step raises L(D(I_mix), H_gt) (generator_weight 1), and lowers
    it with the sign flipped (generator_weight -1: the check sees the direction)."""
    trainer = trainer_for(tmp_path, StandinTeacher(ngf=4, generator_lr=1e-3,
                                                   generator_weight=direction))
    method, model = trainer.method, trainer.forward.eval()
    batch = first_batch(trainer)
    images, target, weight = batch["image"], batch["target"], batch["target_weight"]
    views = make_views(images, method.augs, np.random.default_rng(0))
    pose_before = states(trainer.model)

    def pose_loss():
        with torch.no_grad():
            return float(method.criterion(model(mix(views, method.generator(views))), target, weight))

    losses = [pose_loss()]
    for _ in range(3):
        adv = method.generator_step(model, mix(views, method.generator(views)), target, weight, trainer.step)
        assert float(adv) == pytest.approx(-direction * losses[-1], rel=1e-5)  # the loss it ascended
        losses.append(pose_loss())
    steps = np.diff(losses) * direction
    assert (steps > 0).all(), losses
    assert direction * (losses[-1] - losses[0]) > 0.005 * losses[0], losses  # not a rounding-level move
    after = trainer.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in pose_before.items())  # the pose model stayed fixed
    assert all(p.grad is None and p.requires_grad for p in trainer.model.parameters())
