"""AdvMix end to end on real crops (../shared/data/coco_train_mini, tiny config, 64x96,
generator width 8): finite losses, both players trained, the checkpoint holds the
generator but not the teacher, and resume is exact (2 steps straight == 1 + resume 1)."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from robustpose.config import build_model_for
from robustpose.models import save_checkpoint
from robustpose.training import Trainer, load_config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny_coco.yaml"

torch.set_num_threads(1)


def advmix_config(data_root: Path, out: Path, teacher: Path, epochs: int, updates: str) -> dict:
    return load_config(TINY, [f"data.root={data_root}", f"output_dir={out}", "val.every=0",
                              "train.batch_size=4", "train.max_iters_per_epoch=1",
                              "train.lr_steps=[1]", f"train.epochs={epochs}",
                              f"model.init_from={teacher}", "train.method=advmix",
                              f"train.method_args={{ngf: 8, updates: {updates}}}"])


def test_advmix_trains_checkpoints_and_resumes_exactly(data_root, tmp_path):
    base = load_config(TINY, [f"data.root={data_root}"])
    teacher = save_checkpoint(build_model_for(base, 17), tmp_path / "standard.pt")
    source = torch.load(teacher, weights_only=True)["model"]

    straight = Trainer(advmix_config(data_root, tmp_path / "a", teacher, 2, "alternating"),
                       device="cpu", progress=False)
    gen0 = {k: v.clone() for k, v in straight.method.generator.state_dict().items()}
    straight.fit()
    for row in straight.history:
        for key in ("train_loss", "train_pose_gt", "train_kd", "train_generator", "lr_generator"):
            assert math.isfinite(row[key]), (key, row)
    gen = straight.method.generator.state_dict()
    assert any(not torch.equal(gen0[k], gen[k]) for k in gen0)
    pose = straight.model.state_dict()
    assert any(not torch.equal(source[k], pose[k]) for k in source)
    assert all(torch.equal(source[k], v) for k, v in straight.method.teacher.state_dict().items())

    data = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    assert set(data["extra_modules"]) == {"generator"}
    assert all(torch.equal(v, gen[k]) for k, v in data["extra_modules"]["generator"].items())
    assert set(data["optimizers"]) == {"model", "generator"}
    assert not any("teacher" in key for key in data)  # the teacher is rebuilt, never saved

    half = Trainer(advmix_config(data_root, tmp_path / "b", teacher, 1, "alternating"),
                   device="cpu", progress=False)
    half.fit()
    resumed = Trainer(advmix_config(data_root, tmp_path / "b", teacher, 2, "alternating"),
                      device="cpu", progress=False)
    resumed.resume(tmp_path / "b" / "checkpoint.pt")
    assert all(torch.equal(source[k], v) for k, v in resumed.method.teacher.state_dict().items())
    resumed.fit()
    for name, a, b in (("model", straight.model, resumed.model),
                       ("generator", straight.method.generator, resumed.method.generator)):
        sa, sb = a.state_dict(), b.state_dict()
        mismatched = [k for k in sa if not torch.equal(sa[k], sb[k])]
        assert not mismatched, (name, mismatched[:5])
    assert resumed.optimizers["generator"].param_groups[0]["lr"] == straight.optimizers["generator"].param_groups[0]["lr"]


def test_reversal_trains_both_players_on_real_crops(data_root, tmp_path):
    base = load_config(TINY, [f"data.root={data_root}"])
    teacher = save_checkpoint(build_model_for(base, 17), tmp_path / "standard.pt")
    trainer = Trainer(advmix_config(data_root, tmp_path / "r", teacher, 1, "reversal"),
                      device="cpu", progress=False)
    gen0 = {k: v.clone() for k, v in trainer.method.generator.state_dict().items()}
    trainer.fit()
    row = trainer.history[-1]
    assert math.isfinite(row["train_loss"]) and row["train_generator"] < 0
    gen = trainer.method.generator.state_dict()
    assert any(not torch.equal(gen0[k], gen[k]) for k in gen0)
