"""advmix under torchrun: 2 CPU processes (gloo), pose model and generator DDP-wrapped,
teacher not; the alternating generator step runs in ``no_sync`` with the pose model
frozen, and with ``kd_on: clean`` the student runs two DDP forwards before one backward."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustpose.config import build_model_for
from robustpose.models import save_checkpoint
from robustpose.training import load_config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny_coco.yaml"


@pytest.mark.slow
@pytest.mark.parametrize("updates", ["alternating", "reversal"])
def test_two_process_advmix_run(data_root, tmp_path, updates):
    teacher = save_checkpoint(build_model_for(load_config(TINY, [f"data.root={data_root}"]), 17),
                              tmp_path / "standard.pt")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "robustpose", "train", str(TINY), f"data.root={data_root}", "train.epochs=1",
           "train.max_iters_per_epoch=2", "train.batch_size=2", "val.every=0",
           f"model.init_from={teacher}", "train.method=advmix",
           f"train.method_args={{ngf: 8, updates: {updates}}}",
           "--out", str(out), "--device", "cpu", "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    header, row = (out / "log.csv").read_text().strip().splitlines()
    values = dict(zip(header.split(","), row.split(",")))
    for key in ("train_loss", "train_kd", "train_generator"):
        assert math.isfinite(float(values[key])), values
    data = torch.load(out / "checkpoint.pt", weights_only=True)
    assert set(data["extra_modules"]) == {"generator"} and data["rng"]["world_size"] == 2
    assert not any(k.startswith("module.") for k in data["extra_modules"]["generator"])
