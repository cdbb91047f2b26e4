"""Cost of an AdvMix step against a standard step, on the same batches.

For each setup (SBL-R50 256x192 batch 8 on real COCO crops; the SynthPose CPU
configuration, ShuffleNetV2 128x96 batch 24) it builds a trainer per method from the same
seed, takes the same batches, runs ``--warmup`` untimed steps, then times ``--steps``
steps and prints the median seconds per step and the ratio to the standard step, in wall
time and in CPU time (user + sys of the process: with ``--threads 1`` the work itself,
insensitive to other jobs on a shared machine), plus the median sys seconds and minor page
faults per step (memory the step had to take from the kernel afresh).

``--mode isolated`` (default): each method runs in its own process, as in a training run
(the workers check that they saw the same batches). ``--mode interleaved``: one process
holds every trainer and times one step of each in turn (the original harness). Interleaved
trainers share one allocator, so a method with a large peak of memory can pay for page
faults that depend on what the other methods did just before; on SBL-R50 this moved up to
one standard step of CPU time between methods (docs/advmix.md, "Cost").

Methods: standard; advmix alternating and reversal with the paper's KD (student on the
clean crop, ``kd_on: clean``: one more student forward / backward); the same two with the
official code's KD on the mixed crop (``kd_on: mix``); and ``generator alone`` (not a step:
the views, the generator's forward and a backward into it, the work an adversarial step
adds to the pose model's passes; off by default, name it in ``--methods``). The teacher is
the seeded student saved to a temporary file (its weights do not change the cost).

    python benchmarks/training.py                      # both setups, every method
    python benchmarks/training.py --setups sbl_r50 --steps 2 --threads 1
    python benchmarks/training.py --setups synthpose --ngf 16 \\
        --methods "standard,alternating,alternating kd_on=mix"
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
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
    # not a training step: the views and the generator's forward / backward alone, the part
    # of every adversarial step a standard step does not have (docs/advmix.md, "Cost")
    "generator alone": ("advmix", {"updates": "alternating"}),
}
COLUMNS = ("wall", "cpu", "sys", "faults")


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


def build(name: str, labels: list[str], data_root: Path, steps: int, warmup: int, ngf: int,
          device: str, tmp: Path) -> tuple[dict[str, Trainer], list[dict]]:
    """One trainer per method label (same seed, same teacher file) and the batches to time."""
    path, overrides = setup_overrides(name, data_root, tmp)
    base = load_config(path, overrides + ["val.every=0", f"output_dir={tmp / 'run'}"])
    teacher = save_checkpoint(build_model_for(base, 17), tmp / "teacher.pt")
    trainers = {}
    for label in labels:
        method, args = METHODS[label]
        args = {**args, "ngf": ngf} if method == "advmix" else args
        arg_text = "{" + ", ".join(f"{k}: {v}" for k, v in args.items()) + "}"
        config = load_config(path, overrides + [
            "val.every=0", f"output_dir={tmp / 'run'}", f"model.init_from={teacher}",
            f"train.method={method}", f"train.method_args={arg_text}"])
        trainers[label] = Trainer(config, device=device, progress=False)
    loader = iter(next(iter(trainers.values()))._train_loader(0))
    return trainers, [next(loader) for _ in range(warmup + steps)]


def _usage() -> tuple[float, float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime, r.ru_stime, r.ru_minflt


def _generator_alone(method, images: torch.Tensor) -> None:
    """The views, the generator's weights and the mix, and one backward into the generator
    (its gradients are dropped: nothing is stepped)."""
    _, mixed, _ = method.mixed_input(images)
    mixed.mean().backward()
    method.opt_g.zero_grad(set_to_none=True)


def time_steps(trainers: dict[str, Trainer], batches: list[dict], warmup: int) -> dict[str, dict]:
    """Per method the median wall s, CPU s, sys s and minor faults of the timed steps;
    one step of each method in turn (interleaved when there are several)."""
    samples: dict[str, dict[str, list[float]]] = {label: {c: [] for c in COLUMNS} for label in trainers}
    for i, batch in enumerate(batches):
        for label, trainer in trainers.items():
            trainer.forward.train()
            on_device = {k: v.to(trainer.device) if isinstance(v, torch.Tensor) else v
                         for k, v in batch.items()}
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            start = _usage()
            if label == "generator alone":
                _generator_alone(trainer.method, on_device["image"])
            else:
                trainer.method.train_step(trainer.forward, on_device, trainer.step)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                for column, a, b in zip(COLUMNS, start, _usage()):
                    samples[label][column].append(b - a)
    return {label: {c: statistics.median(v) for c, v in s.items()} for label, s in samples.items()}


def batch_digest(batches: list[dict]) -> str:
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(batch["image"].numpy().tobytes())
    return digest.hexdigest()[:16]


def run_isolated(args: argparse.Namespace, name: str, labels: list[str]) -> dict[str, dict]:
    """Each method in a fresh process (``--worker``); the batches must agree."""
    result, digests = {}, {}
    for label in labels:
        cmd = [sys.executable, __file__, "--worker", label, "--setups", name, "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--ngf", str(args.ngf), "--device", args.device,
               "--threads", str(args.threads), "--data-root", str(args.data_root)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"worker {label!r} failed:\n{done.stderr[-2000:]}")
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        result[label], digests[label] = answer["times"], answer["batches"]
    if len(set(digests.values())) != 1:
        raise SystemExit(f"the workers saw different batches: {digests}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default="sbl_r50,synthpose")
    parser.add_argument("--methods", default=",".join(m for m in METHODS if m != "generator alone"),
                        help="comma list of: " + ", ".join(METHODS))
    parser.add_argument("--mode", choices=("isolated", "interleaved"), default="isolated")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--ngf", type=int, default=64, help="generator width (paper: 64)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one method, JSON out
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        with tempfile.TemporaryDirectory() as tmp:
            trainers, batches = build(args.setups, [args.worker], args.data_root, args.steps,
                                      args.warmup, args.ngf, args.device, Path(tmp))
            times = time_steps(trainers, batches, args.warmup)[args.worker]
        print(json.dumps({"times": times, "batches": batch_digest(batches)}))
        return 0
    labels = [m.strip() for m in args.methods.split(",")]
    unknown = [m for m in labels if m not in METHODS]
    if unknown or "standard" not in labels:
        raise SystemExit(f"--methods must name 'standard' and only: {', '.join(METHODS)}; got {unknown}")
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, generator ngf {args.ngf}, "
          f"{args.steps} timed steps (median) after {args.warmup} warm-up, {args.mode}")
    for name in args.setups.split(","):
        name = name.strip()
        if args.mode == "isolated":
            result = run_isolated(args, name, labels)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                trainers, batches = build(name, labels, args.data_root, args.steps, args.warmup,
                                          args.ngf, args.device, Path(tmp))
                result = time_steps(trainers, batches, args.warmup)
        ref = result["standard"]
        print(f"\n{name}: standard step {ref['wall']:.3f} s wall, {ref['cpu']:.3f} s CPU")
        print(f"  {'method':24s} {'wall s':>8s} {'ratio':>6s} {'CPU s':>8s} {'ratio':>6s} "
              f"{'sys s':>6s} {'faults':>7s}")
        for label, t in result.items():
            print(f"  {label:24s} {t['wall']:8.3f} {t['wall'] / ref['wall']:5.2f}x {t['cpu']:8.3f} "
                  f"{t['cpu'] / ref['cpu']:5.2f}x {t['sys']:6.2f} {t['faults'] / 1e3:6.0f}k")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
