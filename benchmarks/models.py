"""Throughput and peak memory of the registry's architectures (a benchmark, not a test).

For each model, in a fresh subprocess (so peak-memory figures do not leak between models):
parameters, GMACs per image (torch.utils.flop_counter on the meta device, multiply-adds =
FLOPs / 2, convolutions and matmuls only), forward throughput (eval mode, no_grad) and
forward+backward throughput (train mode, sum-of-squares loss over every output) in images/s
at the model's paper input size, batch 8.

Peak memory:
  CPU  - ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the subprocess: the peak resident
         set after each phase, minus the baseline after building the model and the input
         (so "+MiB" = activations, gradients and workspace). Forward runs before backward,
         so the forward figure is not polluted by the backward pass.
  CUDA - ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (tensors
         only, not the caching allocator's reserve), minus the allocation before the phase.

Timings on a shared machine are noisy. Each phase reports the best (minimum) iteration, both
in wall-clock time and in CPU time of the worker process (``time.process_time``). With one
thread, CPU time is what the model would take on a dedicated core: time-slicing by other
jobs does not count (cache and memory-bandwidth contention still does). The "x ref" columns
divide each model's images per CPU-second by the reference model's (default sbl_resnet50)
of the same run (on CUDA, wall-clock images/s, CPU time being meaningless there).

    .venv/bin/python benchmarks/models.py                      # all default models, CPU
    .venv/bin/python benchmarks/models.py --models hrnet_w32 sbl_resnet50 --iters 3
    .venv/bin/python benchmarks/models.py --device cuda --iters 20 --threads 8
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_MODELS = ["sbl_resnet18", "sbl_resnet50", "sbl_resnet101", "sbl_resnet152", "hrnet_w32", "hrnet_w48",
                  "mobilenetv2", "shufflenetv2", "hourglass_2", "hourglass_8", "deeppose_resnet50"]


def paper_size(name: str) -> tuple[int, int]:
    """(height, width) of the model's paper input: its registry ``default_cfg`` (COCO 256x192
    for HRNet / SimpleBaseline / the lightweight models, 256x256 for the hourglasses and
    DeepPose), which stores (width, height)."""
    from robustpose.models import get_default_cfg
    w, h = get_default_cfg(name)["input_size"]
    return h, w


def _maxrss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sync(device: str) -> None:
    import torch
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(step, iters: int, warmup: int, device: str) -> tuple[float, float]:
    """Best per-iteration (wall, CPU) seconds of ``step()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    best_wall = best_cpu = float("inf")
    for _ in range(iters):
        _sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        _sync(device)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu


def measure(name: str, device: str, batch: int, iters: int, warmup: int, threads: int) -> dict:
    """Run in the worker subprocess: one model, one device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from robustpose.models import create_model

    torch.set_num_threads(threads)
    h, w = paper_size(name)
    with torch.device("meta"):
        meta_model = create_model(name)
        with FlopCounterMode(display=False) as counter:
            meta_model(torch.zeros(1, 3, h, w))
    gmacs = counter.get_total_flops() / 2e9
    model = create_model(name).to(device)
    params = sum(p.numel() for p in model.parameters())
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, h, w, generator=gen).to(device)
    result = {"model": name, "device": device, "input_hw": [h, w], "batch": batch, "params": params,
              "gmacs": gmacs, "threads": threads, "iters": iters}

    def peak_start() -> float:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            return torch.cuda.memory_allocated() / 2**20
        return _maxrss_mib()

    def peak_end(start: float) -> float:
        if device == "cuda":
            return torch.cuda.max_memory_allocated() / 2**20 - start
        return _maxrss_mib() - start

    # Forward, eval mode, no autograd graph.
    model.eval()
    base = peak_start()
    with torch.no_grad():
        wall, cpu = _timed(lambda: model(x), iters, warmup, device)
    result["fwd_img_s"], result["fwd_img_cpu_s"] = batch / wall, batch / cpu
    result["fwd_peak_mib"] = peak_end(base)

    # Forward + backward, train mode, loss over every intermediate output.
    def step() -> None:
        model.zero_grad(set_to_none=True)
        sum(o.float().square().mean() for o in model.forward_all(x)).backward()

    model.train()
    base = peak_start() if device == "cuda" else base
    wall, cpu = _timed(step, iters, warmup, device)
    result["fwdbwd_img_s"], result["fwdbwd_img_cpu_s"] = batch / wall, batch / cpu
    result["fwdbwd_peak_mib"] = peak_end(base)
    result["baseline_mib"] = base if device == "cpu" else None
    return result


def static_table() -> str:
    """Parameters and GMACs/img at the paper input size of every registered model (K = 17)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from robustpose.models import create_model, list_models

    lines = ["| model | input HxW | params (M) | GMACs/img | output |", "|---|---|---|---|---|"]
    for name in list_models():
        h, w = paper_size(name)
        with torch.device("meta"):
            model = create_model(name)
            with FlopCounterMode(display=False) as counter:
                outs = model.forward_all(torch.zeros(1, 3, h, w))
        params = sum(p.numel() for p in model.parameters())
        shape = " x ".join(str(d) for d in outs[-1].shape[1:])
        extra = f" ({len(outs)} stacks)" if len(outs) > 1 else ""
        lines.append(f"| {name} | {h}x{w} | {params / 1e6:.2f} | {counter.get_total_flops() / 2e9:.2f} | "
                     f"{model.output_kind} {shape}{extra} |")
    return "\n".join(lines)


def run_worker(name: str, args: argparse.Namespace, device: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--device", device, "--batch", str(args.batch),
           "--iters", str(args.iters), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": name, "device": device, "error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def format_table(rows: list[dict], reference: str) -> str:
    head = ("| model | device | input HxW | params (M) | GMACs/img | fwd img/s wall | fwd img/s CPU | fwd x ref "
            "| fwd peak +MiB | fwd+bwd img/s wall | fwd+bwd img/s CPU | fwd+bwd x ref | fwd+bwd peak +MiB |")
    lines = [head, "|" + "---|" * 13]
    refs = {r["device"]: r for r in rows if r["model"] == reference and "error" not in r}

    def ratio(r: dict, phase: str) -> str:
        ref = refs.get(r["device"])
        if ref is None:
            return "-"
        key = f"{phase}_img_cpu_s" if r["device"] == "cpu" else f"{phase}_img_s"
        return f"{r[key] / ref[key]:.2f}"

    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['device']} | error: {r['error']} |" + " |" * 10)
            continue
        cpu_f = f"{r['fwd_img_cpu_s']:.2f}" if r["device"] == "cpu" else "-"
        cpu_b = f"{r['fwdbwd_img_cpu_s']:.2f}" if r["device"] == "cpu" else "-"
        lines.append(f"| {r['model']} | {r['device']} | {r['input_hw'][0]}x{r['input_hw'][1]} | "
                     f"{r['params'] / 1e6:.2f} | {r['gmacs']:.2f} | {r['fwd_img_s']:.2f} | {cpu_f} | "
                     f"{ratio(r, 'fwd')} | {r['fwd_peak_mib']:.0f} | {r['fwdbwd_img_s']:.2f} | {cpu_b} | "
                     f"{ratio(r, 'fwdbwd')} | {r['fwdbwd_peak_mib']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--reference", default="sbl_resnet50", help="model the ratios are relative to")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="'all' = CPU, plus CUDA when available")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--static", action="store_true",
                        help="only parameters and GMACs of every registered model (no timing)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.static:
        print(static_table())
        return 0
    if args.worker:
        print(json.dumps(measure(args.worker, args.device, args.batch, args.iters, args.warmup, args.threads)))
        return 0
    import torch
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if args.device == "cuda":
            print("CUDA requested but not available", file=sys.stderr)
            return 1
        devices.remove("cuda")
    models = list(dict.fromkeys([args.reference] + args.models))
    rows = []
    from tqdm import tqdm
    for device in devices:
        for name in tqdm(models, desc=f"models on {device}", file=sys.stderr):
            rows.append(run_worker(name, args, device))
    print(f"batch {args.batch}, best of {args.iters} timed iterations after {args.warmup} warm-up, "
          f"{args.threads} CPU thread(s), torch {torch.__version__}")
    print(format_table(rows, args.reference))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
