"""torch.distributed on CPU (gloo): 2 processes launched with torch.distributed.run give
the same validation as 1 process, a short 2-process training run works, and
``step.no_sync`` keeps one player's gradients local."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robustpose.training import load_config
from robustpose.config import build_model_for
from robustpose.training.evaluate import evaluate_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny_coco.yaml"

torch.set_num_threads(1)


def torchrun(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "robustpose", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_two_processes_validate_like_one(data_root, tmp_path):
    from robustpose.models import save_checkpoint
    config = load_config(TINY, [f"data.root={data_root}"])
    model = build_model_for(config, 17)
    ckpt = save_checkpoint(model, tmp_path / "init.pt")

    one, metric = evaluate_checkpoint(config, ckpt, device="cpu", progress=False)
    proc = torchrun("test", str(TINY), f"data.root={data_root}", "--checkpoint", str(ckpt),
                    "--device", "cpu", "--no-progress", "--out", str(tmp_path / "two.json"),
                    "--predictions", str(tmp_path / "two_preds.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads((tmp_path / "two.json").read_text())
    assert two == one  # every COCO statistic identical
    # Same people, same order, same keypoints (batch composition differs: float noise only).
    mine = metric.predictions()
    theirs = json.loads((tmp_path / "two_preds.json").read_text())
    assert len(theirs) == len(mine) == 68
    assert [p["image_id"] for p in theirs] == [p["image_id"] for p in mine]
    diff = np.abs(np.array([p["keypoints"] for p in theirs]) - np.array([p["keypoints"] for p in mine]))
    assert diff.max() < 1e-4


def test_two_process_training_run(data_root, tmp_path):
    out = tmp_path / "ddp"
    proc = torchrun("train", str(TINY), f"data.root={data_root}", "train.epochs=2",
                    "train.max_iters_per_epoch=1", "train.batch_size=4", "val.every=2",
                    "--out", str(out), "--device", "cpu", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    header, *rows = (out / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 2 and "val_AP" in header
    data = torch.load(out / "checkpoint.pt", weights_only=True)
    assert data["epoch"] == 2 and data["rng"]["world_size"] == 2
    assert len(data["rng"]["ranks"]) == 2  # each rank's generators, for an exact resume
    ranks = data["rng"]["ranks"]
    assert not torch.equal(ranks[0]["torch_cpu"], ranks[1]["torch_cpu"])
    assert all(torch.isfinite(v).all() for v in data["model"].values() if v.is_floating_point())


@pytest.mark.slow
def test_two_process_resume_is_exact(data_root, tmp_path):
    """2 processes: 2 epochs straight == 1 epoch + --resume 1 epoch, bit for bit."""
    common = (str(TINY), f"data.root={data_root}", "train.max_iters_per_epoch=2",
              "train.batch_size=4", "val.every=0", "train.lr_steps=[1]", "--device", "cpu",
              "--no-progress")
    assert torchrun("train", *common, "train.epochs=2", "--out", str(tmp_path / "a")).returncode == 0
    assert torchrun("train", *common, "train.epochs=1", "--out", str(tmp_path / "b")).returncode == 0
    proc = torchrun("train", *common, "train.epochs=2", "--out", str(tmp_path / "b"),
                    "--resume", "auto")
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


NO_SYNC_SCRIPT = """
import torch, torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from robustpose.training.distributed import no_sync

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)  # the same initial weights on both ranks
model = DistributedDataParallel(nn.Linear(3, 1))
x = torch.full((1, 3), float(rank + 1))  # each rank its own input, so its own gradient


def grads_after_backward():
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()
    mine = model.module.weight.grad.clone()
    both = [torch.zeros_like(mine) for _ in range(2)]
    dist.all_gather(both, mine)
    return both


with no_sync(model):
    local = grads_after_backward()
synced = grads_after_backward()
assert not torch.equal(local[0], local[1]), local  # inside: each rank keeps its gradient
assert torch.equal(synced[0], synced[1]), synced    # outside: all-reduced
assert torch.allclose(synced[0], (local[0] + local[1]) / 2)
dist.destroy_process_group()
print("no_sync ok")
"""


@pytest.mark.slow
def test_no_sync_keeps_gradients_local_across_two_processes(tmp_path):
    script = tmp_path / "no_sync_check.py"
    script.write_text(NO_SYNC_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(script)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("no_sync ok") == 2
