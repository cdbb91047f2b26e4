"""GPU check: the CUDA paths of robustpose, run once on one GPU, one line per figure.

    bash benchmarks/gpu_check.sh                        # on the GPU machine (< 8 min on an H200)
    bash benchmarks/gpu_check.sh --device cpu --quick   # dry run of the logic, tiny sizes, any machine
    .venv/bin/python benchmarks/gpu_check.py --prepare  # here: stage data + wheels to carry (docs/gpu.md)

Parts (each in its own process with its own time limit, so a crash or hang in one is
printed and the others still run; the exit code is 1 if any part failed):

1. ``tests``: pytest on the tests whose names say ``cuda`` or ``gpu`` (they skip
   themselves without a GPU; on CUDA at least one must pass), but not this script's own
   tests (tests/test_gpu_check.py).
2. ``amp``: a few training steps of the tiny COCO config with ``train.amp=true`` on
   ``coco_train_mini``: the loss of every step and steps/s, then one short ``Trainer.fit``.
3. ``corrupt``: ``corrupt_batch`` on the device against the numpy engine ``corrupt`` on
   the CPU (one thread), same images (COCO val resized to 640 x 480), all 19 corruptions.
4. ``benchmark``: a reduced ``robustpose benchmark --device ...`` and its wall time.

Every figure is a line starting ``gpu_check:``; a failed part prints
``gpu_check: FAILED <part>: <reason>``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("tests", "amp", "corrupt", "benchmark")
#: per-part wall-clock limits (s) on the GPU; they add up to 7.5 minutes at most
LIMITS = {"tests": 120, "amp": 120, "corrupt": 120, "benchmark": 90}
#: staged copies the device machine receives (docs/gpu.md): ignored by git, named in carry
CARRY_DATA = REPO / ".gpu_carry" / "data"


def say(message: str) -> None:
    print(f"gpu_check: {message}", flush=True)


def data_root() -> Path:
    """ROBUSTPOSE_DATA, else the staged copy, else ../shared/data (as tests/conftest.py)."""
    if os.environ.get("ROBUSTPOSE_DATA"):
        return Path(os.environ["ROBUSTPOSE_DATA"])
    return CARRY_DATA if CARRY_DATA.is_dir() else REPO.parent / "shared" / "data"


# ----------------------------------------------------------------------------- parts


def part_tests(args: argparse.Namespace) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
           "--continue-on-collection-errors",  # a broken unrelated module must not hide them
           "--ignore", str(REPO / "tests" / "test_gpu_check.py"),  # this script's own tests
           "-k", "cuda or gpu", str(REPO / "tests")]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "ROBUSTPOSE_DATA": str(data_root())})
    lines = proc.stdout.strip().splitlines() or ["(no output)"]
    for line in lines[-15:]:
        print(f"    {line}")
    summary = lines[-1].strip("= ")
    say(f"tests -k 'cuda or gpu' on {args.device}: {summary} ({time.perf_counter() - start:.1f} s)")
    if proc.returncode != 0:
        raise RuntimeError(f"pytest exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    if args.device.startswith("cuda") and " passed" not in summary:
        raise RuntimeError("no CUDA test ran (all skipped?)")


def _to_device(value, device):
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def part_amp(args: argparse.Namespace) -> None:
    import torch
    from torch.utils.data import DataLoader

    from robustpose.training import Trainer, load_config

    root = data_root()
    if not (root / "coco_train_mini").is_dir():
        raise FileNotFoundError(f"{root / 'coco_train_mini'}: not found (set ROBUSTPOSE_DATA "
                                "or stage it with --prepare)")
    steps, batch_size = (3, 4) if args.quick else (20, 32)
    size = [] if args.quick else ["data.input_size=[192,256]", "data.heatmap_size=[48,64]",
                                  "data.sigma=2"]
    out = Path(tempfile.mkdtemp(prefix="gpu_check_amp_"))
    config = load_config(REPO / "configs" / "tiny_coco.yaml", [
        f"data.root={root}", f"output_dir={out}", "val.every=0", "train.amp=true",
        f"train.batch_size={batch_size}", "train.epochs=1", f"train.max_iters_per_epoch={steps}",
        *size])
    trainer = Trainer(config, device=args.device, progress=False)
    say(f"amp: Trainer on {trainer.device}, amp {'on' if trainer.amp else 'off (CPU)'}, "
        f"{config['model']['name']} at {config['data']['input_size']}, batch {batch_size}")
    loader = DataLoader(trainer.train_data.dataset, batch_size=batch_size, shuffle=True,
                        drop_last=True, generator=torch.Generator().manual_seed(0))
    batches = [_to_device(b, trainer.device) for b, _ in zip(loader, range(2))]
    if not batches:
        raise RuntimeError(f"fewer than {batch_size} training crops in {root / 'coco_train_mini'}")
    cuda = trainer.device.type == "cuda"
    losses, times = [], []
    for i in range(steps):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        values = trainer.method.train_step(trainer.forward, batches[i % len(batches)], trainer.step)
        loss = float(values["loss"])  # a host sync per step: this is a check, not training
        times.append(time.perf_counter() - start)
        losses.append(loss)
        say(f"amp step {i + 1}/{steps}: loss {loss:.6f}")
    if not all(map(lambda v: v == v and abs(v) != float("inf"), losses)):
        raise RuntimeError(f"non-finite loss: {losses}")
    timed = times[2:] or times  # the first steps include cuDNN autotuning and allocation
    say(f"amp: {len(timed) / sum(timed):.1f} steps/s ({batch_size * len(timed) / sum(timed):.0f} "
        f"img/s) over steps {steps - len(timed) + 1}-{steps}, data on the device; "
        f"loss {losses[0]:.6f} -> {losses[-1]:.6f}")
    scaler = getattr(trainer, "scalers", {}).get("model")
    if trainer.amp and scaler is not None:
        say(f"amp: GradScaler scale {scaler.get_scale():.0f} after {steps} steps")
    start = time.perf_counter()
    rows = trainer.fit()
    row = rows[-1]
    say(f"amp: Trainer.fit, 1 epoch of {steps} iterations (data loading included): "
        f"train_loss {row.get('train_loss', float('nan')):.6f}, "
        f"{row.get('train_images_per_s', float('nan')):.1f} img/s, "
        f"{time.perf_counter() - start:.1f} s")
    shutil.rmtree(out, ignore_errors=True)


def _corrupt_images(count: int, height: int, width: int):
    """``count`` COCO val images resized to height x width (uint8 RGB HWC); seeded random
    images when the data is absent (said in a line, since speed depends on content)."""
    import cv2
    import numpy as np

    folder = data_root() / "coco_val_mini" / "images"
    files = sorted(folder.glob("*.jpg"))[:count] if folder.is_dir() else []
    if len(files) < count:
        say(f"corrupt: {folder} not found: seeded random images instead of COCO photos")
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]
    out = []
    for f in files:
        img = cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        out.append(np.ascontiguousarray(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)))
    return out


def _rate(fn, count: int, sync, min_s: float, max_reps: int) -> float:
    """Images per second of ``fn`` (which handles ``count`` images): repeated until
    ``min_s`` seconds or ``max_reps`` calls, after the caller's warm-up call."""
    reps, elapsed = 0, 0.0
    while reps < max_reps and (reps == 0 or elapsed < min_s):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        elapsed += time.perf_counter() - start
        reps += 1
    return reps * count / elapsed


def part_corrupt(args: argparse.Namespace) -> None:
    import cv2
    import numpy as np
    import torch

    from robustpose.corruptions import corrupt, corrupt_batch, get_corruption_names
    from robustpose.corruptions.batch import is_native

    cv2.setNumThreads(1)  # the numpy engine's figures are single-threaded (docs/corruptions.md)
    torch.set_num_threads(1)
    height, width = (96, 128) if args.quick else (480, 640)
    batch_n, cpu_n = (2, 1) if args.quick else (16, 2)
    severity = args.severity
    device = torch.device(args.device)
    images = _corrupt_images(batch_n, height, width)
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(device)
    seeds = list(range(batch_n))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    failed = []
    for name in get_corruption_names("all"):
        try:
            native = is_native(name)
            corrupt(images[0], name, severity, seed=0)  # warm-up: numba compilation, caches
            slow = _rate(lambda: [corrupt(im, name, severity, seed=s)
                                  for im, s in zip(images[:cpu_n], seeds)],
                         cpu_n, lambda: None, min_s=0.0, max_reps=1)
            if native:  # warm-up: kernels, frost textures on the device, FFT plans
                check = corrupt_batch(batch, name, severity, seeds)
            else:  # the fallback runs the (now warm) numpy engine per image: time one call
                few = min(4, batch_n)  # of a few images: its rate is the CPU engine's
                start = time.perf_counter()
                check = corrupt_batch(batch[:few], name, severity, seeds[:few])
                sync()
                fast = few / (time.perf_counter() - start)
            if check.device != batch.device or check.shape[1:] != batch.shape[1:] \
                    or check.dtype != torch.uint8:
                raise RuntimeError(f"output {check.dtype} {tuple(check.shape)} on {check.device}")
            if native:
                fast = _rate(lambda: corrupt_batch(batch, name, severity, seeds), batch_n, sync,
                             min_s=0.0 if args.quick else 0.5, max_reps=1 if args.quick else 20)
            path = "" if native else ", numpy fallback"
            say(f"corrupt_batch {name} {height}x{width} sev {severity}: {fast:.1f} img/s on "
                f"{device.type}{path} (cpu numpy {slow:.1f} img/s, x{fast / slow:.1f})")
        except Exception as exc:  # one corruption failing must not hide the others
            failed.append(name)
            say(f"FAILED corrupt_batch {name}: {type(exc).__name__}: {str(exc)[:200]}")
    if failed:
        raise RuntimeError(f"{len(failed)} corruption(s) failed: {', '.join(failed)}")


def part_benchmark(args: argparse.Namespace) -> None:
    images = 2 if args.quick else 8
    corruptions, severities = ("gaussian_noise", "1") if args.quick else ("gaussian_noise,motion_blur", "1,3")
    out = Path(tempfile.mkdtemp(prefix="gpu_check_bench_"))
    cmd = [sys.executable, "-m", "robustpose", "benchmark", "--device", args.device,
           "--max-images", str(images), "--corruptions", corruptions, "--severities", severities,
           "--workers", "0" if args.quick else "2", "--out", str(out / "run"), "--no-plots",
           "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    for line in (proc.stdout.strip().splitlines() or [])[-12:]:
        print(f"    {line}")
    shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise RuntimeError(f"robustpose benchmark exited {proc.returncode}: {err[:300]}")
    say(f"benchmark --device {args.device} --max-images {images} --corruptions {corruptions} "
        f"--severities {severities}: {wall:.1f} s wall")


RUNNERS = {"tests": part_tests, "amp": part_amp, "corrupt": part_corrupt,
           "benchmark": part_benchmark}


# ----------------------------------------------------------------------------- driver


def prepare() -> int:
    """On the machine that calls the device: stage what a bare GPU machine lacks (the mini
    COCO sets; a pycocotools wheel for its Python 3.12) in git-ignored folders to carry."""
    source = REPO.parent / "shared" / "data"
    for name in ("coco_train_mini", "coco_val_mini"):
        if not (source / name).is_dir():
            say(f"FAILED prepare: {source / name} not found")
            return 1
        if not (CARRY_DATA / name).is_dir():  # staged once (the copies keep read-only modes)
            shutil.copytree(source / name, CARRY_DATA / name)
    exclude = REPO / ".git" / "info" / "exclude"  # staged copies never show in git status
    known = exclude.read_text().splitlines() if exclude.is_file() else []
    if (REPO / ".git").is_dir() and "/.gpu_carry/" not in known:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as fh:
            fh.write("/.gpu_carry/\n")
    say(f"prepare: data staged in {CARRY_DATA.relative_to(REPO)}")
    platforms = [a for n in (28, 27, 17) for a in ("--platform", f"manylinux_2_{n}_x86_64")]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", *platforms,
           "--platform", "manylinux2014_x86_64", "-d", str(REPO / ".whl"), "pycocotools==2.0.11"]
    if subprocess.run(cmd).returncode != 0:
        say("FAILED prepare: pip download pycocotools (the benchmark part needs it there)")
        return 1
    say("prepare: pycocotools wheel in .whl; run with carry ['.gpu_carry', '.whl']")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument("--severity", type=int, default=3, help="severity of the corrupt part")
    parser.add_argument("--limit-scale", type=float, default=None,
                        help="multiply the per-part time limits (default 1 on CUDA, 3 on cpu)")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # one part, in-process
    parser.add_argument("--prepare", action="store_true", help="stage data and wheels to carry")
    args = parser.parse_args(argv)
    if args.prepare:
        return prepare()
    if args.part:
        try:
            RUNNERS[args.part](args)
            return 0
        except Exception as exc:
            traceback.print_exc(limit=3)
            say(f"FAILED {args.part}: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
            return 1

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    try:
        import torch
    except ImportError as exc:
        say(f"FAILED: torch does not import with {sys.executable}: {exc}")
        return 1
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        say(f"torch.cuda is NOT available (torch {torch.__version__}, {sys.executable}): nothing "
            "to check here; run on a GPU machine, or `--device cpu --quick` for a dry run")
        return 2
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    say(f"torch {torch.__version__}, {where}, python {sys.version.split()[0]}, data {data_root()}")
    failed = []
    total = time.perf_counter()
    for part in parts:
        scale = args.limit_scale or (3.0 if args.device == "cpu" else 1.0)  # dry runs: slow CPUs
        limit = LIMITS[part] * scale
        start = time.perf_counter()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--part", part, "--device",
               args.device, "--severity", str(args.severity)] + (["--quick"] if args.quick else [])
        # its own session, so a hung part is ended with the processes it started
        proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True)
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            say(f"FAILED {part}: over its {limit:.0f} s limit")
            code = -1
        if code != 0:
            failed.append(part)
        say(f"part {part}: {'FAILED (exit %d)' % code if code else 'ok'} in "
            f"{time.perf_counter() - start:.1f} s")
    say(f"{len(parts) - len(failed)}/{len(parts)} parts ok in {time.perf_counter() - total:.1f} s"
        + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
