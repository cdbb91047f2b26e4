"""The trainer with two players and a teacher: extra optimizers with their own schedule and
clipping, frozen modules (not trained, wrapped or saved; rebuilt from their source on
resume), ``step.no_sync``, and loss logging that reads the device once per epoch."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from robustpose.losses import HeatmapKDLoss
from robustpose.training import OptimizerSpec, StandardHeatmap, Trainer
from training_standins import (FakeKeypointDataset, FakeSpec, Split, TinyHeatmapNet, make_trainer,
                               seeded_standin, tiny_config)


def fit_with(method, config, data_seed: int = 0) -> Trainer:
    data = FakeKeypointDataset(n=8, seed=data_seed)
    trainer = Trainer(config, model=seeded_standin(1), train_data=Split(data, FakeSpec()),
                      method=method, device="cpu", progress=False)
    trainer.fit()
    return trainer


# ---------------------------------------------------------------- two optimizers
class TwoHelpers(StandardHeatmap):
    """The pose model plus two linear 'players': 'gen' with its own schedule and clipping
    (an OptimizerSpec), 'other' a bare optimizer that follows the model's. Every step
    records how far each helper's weights moved."""

    def setup(self, trainer):
        self.helpers, self.opts, self.moves = {}, {}, {"gen": [], "other": []}
        for name in ("gen", "other"):
            layer = nn.Linear(2, 2, bias=False, dtype=torch.float64)  # float64: exact step sizes
            nn.init.ones_(layer.weight)  # gradient norm ~800 >> any clip below
            self.helpers[name] = trainer.wrap_module(layer)
            self.opts[name] = trainer.make_optimizer(layer, lr=1.0)  # sgd, no momentum

    def extra_modules(self):
        return dict(self.helpers)

    def extra_optimizers(self):
        return {"gen": OptimizerSpec(self.opts["gen"], lr_steps=[2], lr_factor=0.5, grad_clip=0.5),
                "other": self.opts["other"]}

    def train_step(self, model, batch, step):
        out = super().train_step(model, batch, step)
        for name, layer in self.helpers.items():
            before = layer.weight.detach().clone()
            step.backward_and_step(layer(torch.full((1, 2), 10.0, dtype=torch.float64)).pow(2).sum(), optimizer=name)
            self.moves[name].append(float((layer.weight.detach() - before).norm()))
        return out


def test_extra_optimizers_step_on_their_own_schedule_and_clip_independently(tmp_path):
    cfg = tiny_config(tmp_path, epochs=3, optimizer="sgd", momentum=0.0, lr_steps=[1, 2],
                      lr_factor=0.1, grad_clip=1e-3, max_iters_per_epoch=1)
    trainer = fit_with(TwoHelpers(), cfg)
    method = trainer.method
    # sgd: a clipped step moves the weights by lr x clip (clip_grad_norm_ adds 1e-6 to the norm)
    assert method.moves["gen"] == pytest.approx([0.5, 0.5, 0.25], rel=1e-6)  # own: x0.5 after 2, clip 0.5
    assert method.moves["other"] == pytest.approx([1e-3, 1e-4, 1e-5], rel=1e-6)  # model's: x0.1 after 1, 2; clip 1e-3
    rows = trainer.history
    assert [r["lr"] for r in rows] == pytest.approx([1e-2, 1e-3, 1e-4])
    assert [r["lr_gen"] for r in rows] == pytest.approx([1.0, 1.0, 0.5])
    assert [r["lr_other"] for r in rows] == pytest.approx([1.0, 0.1, 0.01])
    data = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert set(data["schedulers"]) == {"model", "gen", "other"}
    assert sorted(data["schedulers"]["gen"]["milestones"]) == [2]


def test_resume_keeps_an_extra_optimizers_own_schedule(tmp_path):
    cfg = tiny_config(tmp_path, epochs=2, optimizer="sgd", momentum=0.0, lr_steps=[1],
                      max_iters_per_epoch=1)
    fit_with(TwoHelpers(), cfg)
    data = FakeKeypointDataset(n=8)
    resumed = Trainer(tiny_config(tmp_path, epochs=3, optimizer="sgd", momentum=0.0, lr_steps=[1],
                                  max_iters_per_epoch=1),
                      model=TinyHeatmapNet(), train_data=Split(data, FakeSpec()), method=TwoHelpers(),
                      device="cpu", progress=False)
    resumed.resume(tmp_path / "run" / "checkpoint.pt")
    # after 2 epochs: model and 'other' cut once at 1; 'gen' (steps [2]) cut once at 2
    assert resumed.schedulers["gen"].get_last_lr() == pytest.approx([0.5])
    assert resumed.schedulers["other"].get_last_lr() == pytest.approx([0.1])


def test_a_bad_extra_optimizer_is_refused(tmp_path):
    class Bad(StandardHeatmap):
        def extra_optimizers(self):
            return {"gen": nn.Linear(2, 2)}
    with pytest.raises(ValueError, match="extra optimizer 'gen' is a Linear, not a torch.optim.Optimizer"):
        fit_with(Bad(), tiny_config(tmp_path))


# ---------------------------------------------------------------- frozen teacher
class WithTeacher(StandardHeatmap):
    """Ground truth + KD against a frozen teacher loaded from a weights file in setup."""

    def __init__(self, teacher_path, **kwargs):
        super().__init__(**kwargs)
        self.teacher_path = teacher_path
        self.kd = HeatmapKDLoss()

    def setup(self, trainer):
        self.teacher = TinyHeatmapNet()
        self.teacher.load_state_dict(torch.load(self.teacher_path, weights_only=True))

    def frozen_modules(self):
        return {"teacher": self.teacher}

    def losses(self, model, batch):
        out = model(batch["image"])
        with torch.no_grad():
            taught = self.teacher(batch["image"])
        gt = self.criterion(out, batch["target"], batch["target_weight"])
        kd = self.kd(out, taught, batch["target_weight"])
        return {"loss": 0.9 * gt + 0.1 * kd, "kd": kd}


def same_weights(module: nn.Module, state: dict) -> bool:
    return all(torch.equal(v, state[k]) for k, v in module.state_dict().items())


def test_frozen_teacher_is_not_trained_wrapped_or_saved_and_comes_back_from_its_source(tmp_path):
    source = seeded_standin(7).state_dict()
    torch.save(source, tmp_path / "teacher.pt")
    trainer = fit_with(WithTeacher(tmp_path / "teacher.pt"), tiny_config(tmp_path, epochs=1))
    teacher = trainer.method.teacher
    assert trainer.frozen == {"teacher": teacher} and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    in_optimizers = {id(p) for o in trainer.optimizers.values() for g in o.param_groups for p in g["params"]}
    assert not in_optimizers & {id(p) for p in teacher.parameters()}
    # an epoch of training (BatchNorm included) left every teacher tensor as loaded
    assert same_weights(teacher, source) and "train_kd" in trainer.history[-1]
    data = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert data["extra_modules"] == {}  # the teacher is not in the checkpoint
    assert not same_weights(trainer.model, source)

    data_split = Split(FakeKeypointDataset(n=8), FakeSpec())
    resumed = Trainer(tiny_config(tmp_path, epochs=2), model=TinyHeatmapNet(), train_data=data_split,
                      method=WithTeacher(tmp_path / "teacher.pt"), device="cpu", progress=False)
    resumed.resume(tmp_path / "run" / "checkpoint.pt")
    assert same_weights(resumed.method.teacher, source)  # the source, not anything trained
    assert same_weights(resumed.model, data["model"])
    resumed.fit()
    assert same_weights(resumed.method.teacher, source)


@pytest.mark.parametrize("frozen, message", [
    ("helper", "module 'helper' is both frozen and trained"),
    ("model", "frozen module 'teacher' has parameters in optimizer 'model'"),
])
def test_a_frozen_module_that_is_also_trained_is_refused(tmp_path, frozen, message):
    class Confused(StandardHeatmap):
        def setup(self, trainer):
            self.helper = nn.Linear(2, 2)
            self.model = trainer.model

        def extra_modules(self):
            return {"helper": self.helper}

        def frozen_modules(self):
            return {"helper": self.helper} if frozen == "helper" else {"teacher": self.model}
    with pytest.raises(ValueError, match=message):
        fit_with(Confused(), tiny_config(tmp_path))


# ---------------------------------------------------------------- no_sync
def test_no_sync_is_a_no_op_in_a_single_process(tmp_path):
    trainer = make_trainer(tiny_config(tmp_path))
    layer = nn.Linear(2, 1)
    layer(torch.ones(1, 2)).sum().backward()
    with trainer.step.no_sync(layer, trainer.forward):
        layer(torch.ones(1, 2)).sum().backward()  # accumulates as usual
    assert torch.equal(layer.weight.grad, torch.full((1, 2), 2.0))


def test_no_sync_switches_ddp_gradient_sync_off_inside_the_block(tmp_path):
    """A one-process gloo group: DDP's sync flag is off inside, back on after."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from robustpose.training.distributed import no_sync
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        a, b = DistributedDataParallel(nn.Linear(2, 1)), DistributedDataParallel(nn.Linear(2, 1))
        with no_sync(a, nn.Linear(1, 1)):
            assert not a.require_backward_grad_sync and b.require_backward_grad_sync
        assert a.require_backward_grad_sync
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------- loss logging
class CountingTensor(torch.Tensor):
    """Counts reads back to the host (float(), .item())."""

    reads = 0

    def __float__(self):
        CountingTensor.reads += 1
        return super().__float__()

    def item(self):
        CountingTensor.reads += 1
        return super().item()


def test_losses_are_read_back_once_per_epoch_and_log_what_floats_log(tmp_path):
    class Counting(StandardHeatmap):
        def train_step(self, model, batch, step):
            return {k: v.as_subclass(CountingTensor) for k, v in super().train_step(model, batch, step).items()}

    class Floats(StandardHeatmap):  # what every method did before: a float per step
        def train_step(self, model, batch, step):
            return {k: float(v) for k, v in super().train_step(model, batch, step).items()}

    CountingTensor.reads = 0
    counted = fit_with(Counting(), tiny_config(tmp_path / "a", epochs=2))  # 2 steps per epoch
    assert CountingTensor.reads == 2  # one loss key, read once per epoch
    floats = fit_with(Floats(), tiny_config(tmp_path / "b", epochs=2))
    assert [r["train_loss"] for r in counted.history] == [r["train_loss"] for r in floats.history]
    assert same_weights(counted.model, floats.model.state_dict())
