"""What stable heatmap regression costs: the RCC layer against its head, an MST step against
a standard step.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stable.py --threads 1

1. RCC: the layer (``robustpose.models.rcc.RCC``, default options) on the output of the
   MobileNetV2 SimpleBaseline head at 256x256 input: a batch of ``--batch`` x 17 x 64 x 64
   maps, against that head's own forward (``deconv_layers`` + ``final_layer``: 3 x (256,
   4x4) deconvolutions + the 1x1 classifier, from the backbone's N x 1280 x 8 x 8
   features). Also the 64 x 48 maps of a 256x192 input (zero-padded to 64 x 64). Median
   process CPU time of ``--repeats`` runs, in eval mode without gradients.
2. Training steps: the SynthPose miniature configuration (configs/stable/, MobileNetV2
   128x96, batch 16): one trainer per row from the same seed and the same batches,
   ``--warmup`` untimed steps, then ``--steps`` steps of each in turn (interleaved, so load
   changes on a shared machine hit every row alike). Median seconds per step, wall and
   process CPU (``time.process_time``: with ``--threads 1`` the work itself), and the
   ratio to the standard step (target for MST <= 2.2x: a second forward / backward plus
   the numpy corruption of every crop). ``perturb`` alone is timed too.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's robustpose, whatever the install

import numpy as np  # noqa: E402
import torch  # noqa: E402

from robustpose.models import create_model  # noqa: E402
from robustpose.models.rcc import RCC  # noqa: E402
from robustpose.training import Trainer, load_config  # noqa: E402

CONFIG = REPO / "configs" / "stable" / "synthpose_mobilenetv2_baseline.yaml"
ROWS = {"standard": "{rcc: false, hdhr: false, mst: false}", "rcc": "{rcc: true}",
        "hdhr": "{hdhr: true}", "mst": "{mst: true}", "rhm": "{rcc: true, hdhr: true, mst: true}"}


def cpu_median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


@torch.no_grad()
def time_rcc(batch: int, repeats: int) -> None:
    model = create_model("mobilenetv2", num_joints=17).eval()
    layer = RCC()
    print(f"\n1. RCC vs the MobileNetV2 SBL head (3 x 256 deconv + 1x1), batch {batch}, "
          f"median CPU s of {repeats}")
    for h, w in ((256, 256), (256, 192)):
        features = model.backbone(model.normalize(torch.rand(batch, 3, h, w)))
        head = lambda: model.final_layer(model.deconv_layers(features))  # noqa: E731
        maps = head()
        t_head = cpu_median(head, repeats)
        t_rcc = cpu_median(lambda: layer(maps), repeats)
        shape = "x".join(str(s) for s in maps.shape[1:])
        print(f"  maps {batch}x{shape}: head {t_head:.4f} s, RCC {t_rcc:.5f} s "
              f"= {100 * t_rcc / t_head:.2f}% of the head")


def time_steps(steps: int, warmup: int, rows: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        images = 16 * (warmup + steps)  # batch 16 (the config's): one batch per step
        overrides = ["data.train=null",
                     f"data.train={{split: train, num_images: {images}, seed: 1, root: {tmp}}}",
                     "data.val=null", "val.every=0", "data.num_workers=0",
                     f"output_dir={tmp / 'run'}", "model.init_from=null"]
        trainers = {row: Trainer(load_config(CONFIG, overrides + [f"train.method_args={ROWS[row]}"]),
                                 device="cpu", progress=False) for row in rows}
        first = next(iter(trainers.values()))
        loader = iter(first._train_loader(0))
        batches = [next(loader) for _ in range(warmup + steps)]
        wall: dict[str, list[float]] = {row: [] for row in rows + ["perturb"]}
        cpu: dict[str, list[float]] = {row: [] for row in rows + ["perturb"]}
        rng = np.random.default_rng(0)
        perturb = next((t.method.perturb for t in trainers.values() if t.method.mst), None)
        for i, batch in enumerate(batches):
            for row, trainer in trainers.items():
                trainer.forward.train()
                start, start_cpu = time.perf_counter(), time.process_time()
                trainer.method.train_step(trainer.forward, batch, trainer.step)
                if i >= warmup:
                    wall[row].append(time.perf_counter() - start)
                    cpu[row].append(time.process_time() - start_cpu)
            if perturb is not None and i >= warmup:
                start, start_cpu = time.perf_counter(), time.process_time()
                perturb(batch["image"], rng)
                wall["perturb"].append(time.perf_counter() - start)
                cpu["perturb"].append(time.process_time() - start_cpu)
    ref, ref_cpu = statistics.median(wall["standard"]), statistics.median(cpu["standard"])
    print(f"\n2. training steps, MobileNetV2 128x96 batch {len(batches[0]['image'])} "
          f"(SynthPose), median of {steps} after {warmup} warm-up")
    print(f"  {'row':10s} {'wall s':>8s} {'ratio':>6s} {'CPU s':>8s} {'ratio':>6s}")
    for row in rows + (["perturb"] if perturb is not None else []):
        w, c = statistics.median(wall[row]), statistics.median(cpu[row])
        print(f"  {row:10s} {w:8.3f} {w / ref:5.2f}x {c:8.3f} {c / ref_cpu:5.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="maps batch of part 1")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rows", default="standard,mst,rhm",
                        help=f"training rows of part 2 (of {', '.join(ROWS)}; standard first)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = ["standard"] + [r for r in args.rows.split(",") if r and r != "standard"]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    print(f"CPU, torch threads {torch.get_num_threads()}")
    time_rcc(args.batch, args.repeats)
    time_steps(args.steps, args.warmup, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
