"""Trainer unit tests on tiny stand-ins (tests/training_standins.py): configs, the loop,
checkpoints (exact resume, weights_only), seeding, clipping, validation plumbing."""
from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpose.training import (ConfigError, JointsMSELoss, StandardHeatmap, Trainer,
                                 config_from_dict, load_config)
from robustpose.training.checkpoint import load_checkpoint_file
from robustpose.config import apply_overrides
from training_standins import (FakeKeypointDataset, FakeSpec, MeanErrorMetric, Split, TinyHeatmapNet,
                               make_trainer, seeded_standin, tiny_config)

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- configs
def test_overrides_parse_yaml_types(tmp_path):
    cfg = tiny_config(tmp_path)
    out = apply_overrides(cfg, ["train.lr=5e-4", "train.lr_steps=[90,120]", "train.amp=false",
                                "data.root=/data/coco", "model.extra={NUM_LAYERS: 50}",
                                "train.grad_clip=null", "data.sigma=3"])
    assert out["train"]["lr"] == 5e-4 and isinstance(out["train"]["lr"], float)
    assert out["train"]["lr_steps"] == [90, 120]
    assert out["train"]["amp"] is False and out["train"]["grad_clip"] is None
    assert out["data"]["root"] == "/data/coco" and out["data"]["sigma"] == 3
    assert out["model"]["extra"] == {"NUM_LAYERS": 50}
    assert cfg["train"]["lr"] == 1e-2  # the input is not modified


@pytest.mark.parametrize("override, message", [
    ("train.lrr=1", "unknown key 'train.lrr'"),
    ("train.lr", "not of the form key=value"),
    ("train=3", "'train' must be a mapping"),
    ("train.lr_steps=[1,", "not valid YAML"),
])
def test_bad_override_is_one_line_error(tmp_path, override, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(tiny_config(tmp_path), [override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: x}\ntrain: {epochs: -3}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: train\.epochs must be a positive integer"):
        load_config(bad)
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_cli_bad_config_prints_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: sbl_resnet18}\nmodle: {}\n")
    proc = subprocess.run([sys.executable, "-m", "robustpose", "train", str(bad)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.yaml: unknown key 'modle'" in lines[0], proc.stderr


def test_shipped_configs_mirror_the_hrnet_experiments():
    from robustpose.models import list_models
    configs = sorted((REPO / "configs" / "coco").glob("*.yaml")) + \
        sorted((REPO / "configs" / "mpii").glob("*.yaml")) + [REPO / "configs" / "tiny_coco.yaml"]
    assert len(configs) == 16
    registered = set(list_models())
    for path in configs:
        cfg = load_config(path, ["data.root=/nowhere"])
        assert cfg["model"]["name"] in registered, path
        train, data = cfg["train"], cfg["data"]
        if path.parent.name in ("coco", "mpii"):
            assert train["lr"] == 1e-3 and train["optimizer"] == "adam", path
            hrnet = cfg["model"]["name"].startswith("hrnet")
            # HRNet repo: pose_hrnet 210 epochs (170, 200); pose_resnet 140 epochs (90, 120)
            assert (train["epochs"], train["lr_steps"]) == ((210, [170, 200]) if hrnet
                                                           else (140, [90, 120])), path
            w, h = data["input_size"]
            assert data["heatmap_size"] == [w // 4, h // 4], path
            assert data["sigma"] == {256: 2, 384: 3, 128: 1}[h], path
            assert data["augment"]["rotation_factor"] == (
                30 if data["type"] == "mpii" else 45 if hrnet else 40), path


# ---------------------------------------------------------------- training loop
def test_training_lowers_loss_on_standin(tmp_path):
    trainer = make_trainer(tiny_config(tmp_path, epochs=6, lr_steps=[100]))
    history = trainer.fit()
    losses = [row["train_loss"] for row in history]
    assert losses[-1] < 0.6 * losses[0], losses
    assert (tmp_path / "run" / "log.csv").is_file() and (tmp_path / "run" / "checkpoint.pt").is_file()
    assert "val_AP" in history[-1] and (tmp_path / "run" / "best.pt").is_file()


def test_lr_follows_multistep_schedule(tmp_path):
    trainer = make_trainer(tiny_config(tmp_path, epochs=3, lr_steps=[1, 2], lr_factor=0.5))
    history = trainer.fit()
    assert [row["lr"] for row in history] == pytest.approx([1e-2, 5e-3, 2.5e-3])


def test_resume_continues_exactly(tmp_path):
    straight = make_trainer(tiny_config(tmp_path / "a", epochs=2))
    straight.model.load_state_dict(seeded_standin(1).state_dict())
    straight.fit()

    first = make_trainer(tiny_config(tmp_path / "b", epochs=1))
    first.model.load_state_dict(seeded_standin(1).state_dict())
    first.fit()
    resumed = make_trainer(tiny_config(tmp_path / "b", epochs=2))
    resumed.resume(tmp_path / "b" / "run" / "checkpoint.pt")
    assert resumed.start_epoch == 1
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    a = straight.optimizers["model"].state_dict()["state"]
    b = resumed.optimizers["model"].state_dict()["state"]
    assert all(torch.equal(a[i]["exp_avg_sq"], b[i]["exp_avg_sq"]) for i in a)
    assert straight.np_rng.random() == resumed.np_rng.random()


def test_resume_with_a_lengthened_schedule_follows_the_config(tmp_path):
    """2 epochs with the lr cut after epoch 1, resumed as 4 epochs cut after epoch 3: the
    lr goes back to its base value for epoch 3 and is cut for epoch 4, as in a 4-epoch run."""
    short = make_trainer(tiny_config(tmp_path, epochs=2))
    short.fit()
    assert short.optimizers["model"].param_groups[0]["lr"] == pytest.approx(1e-3)
    longer = make_trainer(tiny_config(tmp_path, epochs=4, lr_steps=[3]))
    longer.resume(tmp_path / "run" / "checkpoint.pt")
    assert longer.optimizers["model"].param_groups[0]["lr"] == pytest.approx(1e-2)
    # the scheduler itself agrees (public API only: no stale private _last_lr)
    assert longer.schedulers["model"].get_last_lr() == pytest.approx([1e-2])
    assert longer.schedulers["model"].last_epoch == 2
    longer.fit()
    rows = (tmp_path / "run" / "log.csv").read_text().strip().splitlines()
    lrs = [float(r.split(",")[1]) for r in rows[1:]]
    assert lrs == pytest.approx([1e-2, 1e-3, 1e-2, 1e-3])
    assert longer.optimizers["model"].param_groups[0]["lr"] == pytest.approx(1e-3)


def test_seeded_run_is_repeatable_and_seed_matters(tmp_path):
    def run(seed, sub):
        cfg = tiny_config(tmp_path / sub, epochs=1)
        cfg["seed"] = seed
        trainer = make_trainer(cfg)
        trainer.model.load_state_dict(seeded_standin(0).state_dict())
        return trainer.fit()[-1]["train_loss"], trainer.model.state_dict()

    loss1, w1 = run(5, "x")
    loss2, w2 = run(5, "y")
    loss3, _ = run(6, "z")
    assert loss1 == loss2 and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert loss3 != loss1  # another seed shuffles differently


def test_checkpoint_is_weights_only_and_complete(tmp_path):
    trainer = make_trainer(tiny_config(tmp_path, epochs=1))
    trainer.fit()
    path = tmp_path / "run" / "checkpoint.pt"
    data = torch.load(path, weights_only=True)  # must not need pickled code
    assert data["format"] == "robustpose-train" and data["epoch"] == 1
    assert set(data) >= {"model", "meta", "optimizers", "schedulers", "scalers", "rng", "best_metric",
                         "config"}
    assert isinstance(data["rng"]["ranks"][0]["torch_cpu"], torch.Tensor)
    assert not any(k.startswith("module.") for k in data["model"])


def test_pickled_code_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    path = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    torch.save({"format": "robustpose-train", "x": Evil()}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match=r"evil\.pt: cannot be loaded with weights_only=True"):
        load_checkpoint_file(path)
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="evil.pt"):
        load_checkpoint_file(path)


def test_grad_clip_limits_update(tmp_path):
    def one_step(clip, sub):
        trainer = make_trainer(tiny_config(tmp_path / sub, epochs=1, grad_clip=clip,
                                           optimizer="sgd", lr=1.0, momentum=0.0,
                                           max_iters_per_epoch=1))
        trainer.model.load_state_dict(seeded_standin(2).state_dict())
        before = {k: v.clone() for k, v in trainer.model.named_parameters()}
        trainer.fit()
        params = dict(trainer.model.named_parameters())
        return torch.sqrt(sum(((params[k].detach() - before[k]) ** 2).sum() for k in params)).item()

    free, clipped = one_step(None, "free"), one_step(1e-3, "clipped")
    assert free > 1e-2  # the unclipped gradient is much larger than the limit
    assert clipped == pytest.approx(1e-3, rel=1e-2)  # sgd, lr 1: the step is the clipped gradient


def test_validation_sees_every_item_once_in_order(tmp_path):
    trainer = make_trainer(tiny_config(tmp_path, epochs=1))
    seen = []

    class Recording(MeanErrorMetric):
        def accumulate(self, keypoints, meta):
            seen.append(np.asarray(meta["index"]))
            super().accumulate(keypoints, meta)
    trainer.val_data.metric_factory = lambda: Recording(trainer.val_data.dataset)
    stats = trainer.validate()
    assert set(stats) == {"AP"} and stats["AP"] <= 0
    assert np.array_equal(np.concatenate(seen), np.arange(12))


def test_method_interface_extra_optimizer_is_checkpointed(tmp_path):
    class WithHelper(StandardHeatmap):
        """A method with its own module and optimizer (like AdvMix's generator)."""

        def setup(self, trainer):
            self.helper = trainer.wrap_module(torch.nn.Linear(2, 2))
            self.opt = torch.optim.Adam(self.helper.parameters(), lr=1e-3)

        def extra_modules(self):
            return {"helper": self.helper}

        def extra_optimizers(self):
            return {"helper": self.opt}

        def train_step(self, model, batch, step):
            out = super().train_step(model, batch, step)
            helper_loss = self.helper(torch.ones(1, 2)).pow(2).sum()
            step.backward_and_step(helper_loss, optimizer="helper")
            return {**out, "helper": float(helper_loss.detach())}

    cfg = tiny_config(tmp_path, epochs=1)
    data = FakeKeypointDataset(n=8)
    trainer = Trainer(cfg, model=TinyHeatmapNet(), train_data=Split(data, FakeSpec()),
                      method=WithHelper(), device="cpu", progress=False)
    history = trainer.fit()
    assert "train_helper" in history[-1]
    data = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert set(data["optimizers"]) == {"model", "helper"} and "helper" in data["extra_modules"]
    assert set(data["schedulers"]) == {"model", "helper"}


def test_overrides_inside_free_form_blocks_merge(tmp_path):
    cfg = config_from_dict({"model": {"name": "m"},
                            "data": {"val": {"annotations": "a.json", "images": "img",
                                             "detections": "d.json"}}})
    out = apply_overrides(cfg, ["data.val.detections=null", "data.augment.flip=false"])
    assert out["data"]["val"] == {"annotations": "a.json", "images": "img", "detections": None}
    assert out["data"]["augment"] == {"flip": False}
    out = apply_overrides(cfg, ["data.val=null", "data.val={split: val}"])
    assert out["data"]["val"] == {"split": "val"}


def test_stacked_outputs_get_intermediate_supervision():
    class TwoStacks(TinyHeatmapNet):
        def forward_all(self, x):
            first = self.body(x - 0.5)
            return [first, 2 * first]

    from robustpose.training.trainer import PoseForward
    model = PoseForward(TwoStacks())
    data = FakeKeypointDataset(n=2)
    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in ("image", "target", "target_weight")}
    outs = model.model.forward_all(batch["image"])
    crit = JointsMSELoss(True)
    both = StandardHeatmap().losses(model, batch)["loss"]
    last = StandardHeatmap(intermediate_supervision=False).losses(model, batch)["loss"]
    assert torch.allclose(both, crit(outs[0], batch["target"], batch["target_weight"]) +
                          crit(outs[1], batch["target"], batch["target_weight"]))
    assert torch.allclose(last, crit(outs[1], batch["target"], batch["target_weight"]))


def test_standard_method_can_train_with_the_official_advmix_criterion(tmp_path):
    from robustpose.losses import JointsSmoothL1Loss
    from robustpose.training import build_method
    cfg = tiny_config(tmp_path)
    cfg["train"]["method_args"] = {"loss": "smoothl1"}
    method = build_method(cfg)
    assert isinstance(method.criterion, JointsSmoothL1Loss) and method.criterion.use_target_weight
    assert isinstance(StandardHeatmap().criterion, JointsMSELoss)  # HRNet's is the default
    cfg["train"]["method_args"] = {"loss": "coord_l1"}
    with pytest.raises(ValueError, match="method 'standard': loss must be 'mse' or 'smoothl1'"):
        build_method(cfg)


def test_standard_method_refuses_coordinate_models(tmp_path):
    class Coords(TinyHeatmapNet):
        output_kind = "coords"
    data = FakeKeypointDataset(n=4)
    with pytest.raises(ValueError, match="trains heatmap models"):
        Trainer(tiny_config(tmp_path), model=Coords(), train_data=Split(data, FakeSpec()),
                device="cpu", progress=False)


def test_overrides_may_follow_options():
    """robustpose.cli parses every command with parse_intermixed_args."""
    import argparse
    from robustpose.commands import test as test_cmd
    from robustpose.commands import train as train_cmd
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    args = parser.parse_intermixed_args(["c.yaml", "a=1", "--no-progress", "b=2", "--resume", "auto", "c=3"])
    assert args.overrides == ["a=1", "b=2", "c=3"] and args.resume == "auto" and args.no_progress
    parser = argparse.ArgumentParser()
    test_cmd.add_arguments(parser)
    args = parser.parse_intermixed_args(["c.yaml", "--checkpoint", "x.pt", "a=1"])
    assert args.overrides == ["a=1"] and args.checkpoint == "x.pt"
