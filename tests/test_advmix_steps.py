"""The two players' steps of advmix on stand-ins: the generator step ascends the pose loss
at a fixed pose model; the paper's KD (``kd_on: clean``) pose step runs as two passes that
never hold both student graphs and give the one-backward update bit for bit."""
from __future__ import annotations

import weakref

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


class OneBackward(StandinTeacher):
    """The pose step as it was: one backward over both student forwards."""

    @property
    def _clean_forward(self):
        return False


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


def test_the_two_pass_clean_kd_pose_step_is_the_one_backward_step_bit_for_bit(tmp_path):
    """alternating, kd_on clean: both players, the optimizers' states and the logs after
    two steps equal those of the single backward over both student forwards."""
    results = []
    for cls in (StandinTeacher, OneBackward):
        trainer = trainer_for(tmp_path / cls.__name__, cls(ngf=4))
        batch, logs = first_batch(trainer), []
        for _ in range(2):
            logs.append(trainer.method.train_step(trainer.forward, batch, trainer.step))
        results.append((trainer, logs))
    (a, logs_a), (b, logs_b) = results
    for module_a, module_b in ((a.model, b.model), (a.method.generator, b.method.generator)):
        sa, sb = module_a.state_dict(), module_b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    for name in ("model", "generator"):
        for pa, pb in zip(a.optimizers[name].state.values(), b.optimizers[name].state.values()):
            assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert all(torch.equal(x[k], y[k]) for x, y in zip(logs_a, logs_b) for k in x)


class Box(list):
    """A list a weakref can point at (a plain list cannot)."""


class SavedBytes:
    """Bytes of the tensors autograd holds for backward, now and at the peak (a tensor
    saved twice counts twice: the measure compares steps, it is not a memory profile)."""

    def __init__(self):
        self.live = self.peak = 0

    def _free(self, n):
        self.live -= n

    def pack(self, tensor):
        box = Box([tensor])
        n = tensor.numel() * tensor.element_size()
        self.live += n
        self.peak = max(self.peak, self.live)
        weakref.finalize(box, self._free, n)
        return box

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda box: box[0])


def test_the_clean_kd_pose_step_never_holds_both_student_graphs(tmp_path):
    """The peak of saved tensors in an alternating step with KD on the clean crop is that
    of the step with KD on the mix (generator graph + one student graph), not one student
    graph more (the single backward held both)."""
    peaks = {}
    for kd_on in ("clean", "mix"):
        trainer = trainer_for(tmp_path / kd_on, StandinTeacher(ngf=4, kd_on=kd_on))
        batch = first_batch(trainer)
        trainer.method.train_step(trainer.forward, batch, trainer.step)  # Adam state etc.
        meter = SavedBytes()
        with meter.hooks():
            trainer.method.train_step(trainer.forward, batch, trainer.step)
        peaks[kd_on] = meter.peak
    meter = SavedBytes()
    with meter.hooks():
        trainer.forward.train()(batch["image"])
    student = meter.peak  # one student forward's saved tensors
    assert student > 0
    assert peaks["clean"] - peaks["mix"] < 0.5 * student, (peaks, student)

