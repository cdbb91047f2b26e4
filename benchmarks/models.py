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

Timings on a shared machine are noisy: the table also gives each model's throughput relative
to a reference model (default sbl_resnet50) measured in the same run.

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

# Paper input sizes (height, width): COCO 256x192 for the top-down heatmap models (HRNet,
# SimpleBaseline, mmpose's MobileNetV2/ShuffleNetV2 configs); 256x256 for the hourglasses and
# DeepPose regression (MPII, the attack study's setting).
PAPER_SIZE = {"hourglass": (256, 256), "deeppose": (256, 256)}
DEFAULT_MODELS = ["sbl_resnet18", "sbl_resnet50", "sbl_resnet101", "sbl_resnet152", "hrnet_w32", "hrnet_w48",
                  "mobilenetv2", "shufflenetv2", "hourglass_2", "hourglass_8", "deeppose_resnet50"]


def paper_size(name: str) -> tuple[int, int]:
    for prefix, size in PAPER_SIZE.items():
        if name.startswith(prefix):
            return size
    return (256, 192)


def _maxrss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sync(device: str) -> None:
    import torch
    if device == "cuda":
        torch.cuda.synchronize()


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
        for _ in range(warmup):
            model(x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        _sync(device)
        dt = time.perf_counter() - t0
    result["fwd_img_s"] = batch * iters / dt
    result["fwd_peak_mib"] = peak_end(base)

    # Forward + backward, train mode, loss over every intermediate output.
    model.train()
    base = peak_start() if device == "cuda" else base
    for i in range(warmup + iters):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss = sum(o.float().square().mean() for o in model.forward_all(x))
        loss.backward()
    _sync(device)
    dt = time.perf_counter() - t0
    result["fwdbwd_img_s"] = batch * iters / dt
    result["fwdbwd_peak_mib"] = peak_end(base)
    result["baseline_mib"] = base if device == "cpu" else None
    return result


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
    head = ("| model | device | input HxW | params (M) | GMACs/img | fwd img/s | fwd x ref | fwd peak +MiB "
            "| fwd+bwd img/s | fwd+bwd x ref | fwd+bwd peak +MiB |")
    lines = [head, "|" + "---|" * 11]
    refs = {r["device"]: r for r in rows if r["model"] == reference and "error" not in r}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['device']} | error: {r['error']} |" + " |" * 8)
            continue
        ref = refs.get(r["device"])
        fx = f"{r['fwd_img_s'] / ref['fwd_img_s']:.2f}" if ref else "-"
        bx = f"{r['fwdbwd_img_s'] / ref['fwdbwd_img_s']:.2f}" if ref else "-"
        lines.append(f"| {r['model']} | {r['device']} | {r['input_hw'][0]}x{r['input_hw'][1]} | "
                     f"{r['params'] / 1e6:.2f} | {r['gmacs']:.2f} | {r['fwd_img_s']:.2f} | {fx} | "
                     f"{r['fwd_peak_mib']:.0f} | {r['fwdbwd_img_s']:.2f} | {bx} | {r['fwdbwd_peak_mib']:.0f} |")
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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
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
    print(f"batch {args.batch}, {args.iters} timed iterations after {args.warmup} warm-up, "
          f"{args.threads} CPU thread(s), torch {torch.__version__}")
    print(format_table(rows, args.reference))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
