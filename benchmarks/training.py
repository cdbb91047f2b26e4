"""Cost of an AdvMix step against a standard step, in one run on the same batches.

For each setup (SBL-R50 256x192 batch 8 on real COCO crops; the SynthPose CPU
configuration, ShuffleNetV2 128x96 batch 24) it builds one trainer per method from the
same seed, takes the same batches, runs ``--warmup`` untimed steps, then times ``--steps``
steps of each method in turn (interleaved, so load changes on a shared machine hit every
method alike) and prints the median seconds per step and the ratio to the standard step,
both in wall time and in this process's CPU time (``time.process_time``: with
``--threads 1`` the work itself, insensitive to other jobs on a shared machine).

Methods: standard; advmix alternating and reversal with the paper's KD (student on the
clean crop, ``kd_on: clean``: one more student forward / backward); the same two with the
official code's KD on the mixed crop (``kd_on: mix``). The teacher is the seeded student
saved to a temporary file (its weights do not change the cost).

    python benchmarks/training.py                      # both setups
    python benchmarks/training.py --setups synthpose --steps 3 --ngf 64
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

import torch  # noqa: E402

from robustpose.config import build_model_for  # noqa: E402
from robustpose.models import save_checkpoint  # noqa: E402
from robustpose.training import Trainer, load_config  # noqa: E402

METHODS = {
    "standard": ("standard", {}),
    "alternating": ("advmix", {"updates": "alternating"}),
    "reversal": ("advmix", {"updates": "reversal"}),
    "alternating kd_on=mix": ("advmix", {"updates": "alternating", "kd_on": "mix"}),
    "reversal kd_on=mix": ("advmix", {"updates": "reversal", "kd_on": "mix"}),
}


def setup_overrides(name: str, data_root: Path, tmp: Path) -> tuple[Path, list[str]]:
    if name == "sbl_r50":
        return REPO / "configs" / "coco" / "sbl_resnet50_256x192.yaml", [
            f"data.root={data_root}", "data.train.annotations=coco_train_mini/annotations.json",
            "data.train.images=coco_train_mini/images", "data.val=null", "train.batch_size=8",
            "data.num_workers=0"]
    if name == "synthpose":
        return REPO / "configs" / "synthpose_shufflenetv2.yaml", [
            "data.train=null", f"data.train={{split: train, num_images: 48, seed: 1, root: {tmp}}}",
            "data.val=null", "data.num_workers=0"]
    raise SystemExit(f"unknown setup {name!r}; choose sbl_r50 or synthpose")


def time_setup(name: str, data_root: Path, steps: int, warmup: int, ngf: int,
               device: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        path, overrides = setup_overrides(name, data_root, tmp)
        base = load_config(path, overrides + ["val.every=0", f"output_dir={tmp / 'run'}"])
        teacher = save_checkpoint(build_model_for(base, 17), tmp / "teacher.pt")
        trainers = {}
        for label, (method, args) in METHODS.items():
            args = {**args, "ngf": ngf} if method == "advmix" else args
            arg_text = "{" + ", ".join(f"{k}: {v}" for k, v in args.items()) + "}"
            config = load_config(path, overrides + [
                "val.every=0", f"output_dir={tmp / 'run'}", f"model.init_from={teacher}",
                f"train.method={method}", f"train.method_args={arg_text}"])
            trainers[label] = Trainer(config, device=device, progress=False)
        first = next(iter(trainers.values()))
        loader = iter(first._train_loader(0))
        batches = [next(loader) for _ in range(warmup + steps)]
        times: dict[str, list[float]] = {label: [] for label in trainers}
        cpu: dict[str, list[float]] = {label: [] for label in trainers}
        for i, batch in enumerate(batches):
            for label, trainer in trainers.items():
                trainer.forward.train()
                on_device = {k: v.to(trainer.device) if isinstance(v, torch.Tensor) else v
                             for k, v in batch.items()}
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                start, start_cpu = time.perf_counter(), time.process_time()
                trainer.method.train_step(trainer.forward, on_device, trainer.step)
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    times[label].append(time.perf_counter() - start)
                    cpu[label].append(time.process_time() - start_cpu)
        return {label: (statistics.median(times[label]), statistics.median(cpu[label]))
                for label in times}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default="sbl_r50,synthpose")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--ngf", type=int, default=64, help="generator width (paper: 64)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, generator ngf {args.ngf}, "
          f"{args.steps} timed steps (median) after {args.warmup} warm-up")
    for name in args.setups.split(","):
        result = time_setup(name.strip(), args.data_root, args.steps, args.warmup, args.ngf, args.device)
        ref, ref_cpu = result["standard"]
        print(f"\n{name}: standard step {ref:.3f} s wall, {ref_cpu:.3f} s CPU")
        print(f"  {'method':24s} {'wall s':>8s} {'ratio':>6s} {'CPU s':>8s} {'ratio':>6s}")
        for label, (value, value_cpu) in result.items():
            print(f"  {label:24s} {value:8.3f} {value / ref:5.2f}x {value_cpu:8.3f} {value_cpu / ref_cpu:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
