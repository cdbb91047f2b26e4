"""Cost of the benchmark pipeline around the model, in one run (timings are noisy on a
shared machine, so every figure is paired with a reference measured in the same run).

1. The whole default benchmark (``robustpose benchmark`` with no model/data arguments =
   ``make demo``: bundled model, SynthPose validation, clean + 15 x 5 cells) in a
   subprocess: wall time and peak memory (RSS summed over the process and its DataLoader
   workers, sampled every 0.1 s).
2. The model's forward passes alone (the same adapter call, flip test included) on the
   same crops, preloaded in memory, once per cell: the ratio benchmark / forward-only is
   the pipeline's overhead (target <= 1.3: loading and corruption hidden behind inference).
3. Peak memory of the same run at two dataset sizes (SynthPose with N and 4N images,
   ``--memory-cells`` cells each): flat means streaming works.

    python benchmarks/pipeline.py                # everything (several minutes)
    python benchmarks/pipeline.py --quick        # 2 corruptions x 2 severities smoke run
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's robustpose, whatever the install


def _tree_rss_kib(pid: int) -> int:
    """RSS (KiB) of ``pid`` and all its descendants, read from /proc."""
    total, stack, seen = 0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_measured(command: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak tree RSS in MiB, stderr tail) of a subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(0.1)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return wall, peak / 1024.0, out


def forward_only_seconds(corruptions: str, severities: str, batch_size: int,
                         passes: int | None, model_args: dict) -> tuple[float, int, int, float]:
    """Forward passes of the bundled adapter over the SynthPose validation crops, once
    per cell. Returns (seconds for all cells, cells, crops per cell, seconds per pass)."""
    import torch

    from robustpose.benchmarking.cells import build_cells, parse_corruptions, parse_severities
    from robustpose.benchmarking.loading import resolve_adapter
    from robustpose.benchmarking.sources import resolve_source
    from robustpose.data import TopDownDataset

    adapter, _ = resolve_adapter(**model_args)
    source = resolve_source("synth", input_size=adapter.input_size, padding=adapter.padding)
    w, h = adapter.input_size
    dataset = TopDownDataset(source.records, source.spec, input_size=(w, h),
                             heatmap_size=(w // 4, h // 4))
    items = [dataset[i] for i in range(len(dataset))]
    batches = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        meta = {k: torch.as_tensor([list(it["meta"][k]) for it in chunk])
                for k in ("center", "scale")}
        batches.append((torch.stack([it["image"] for it in chunk]), meta))
    cells = len(build_cells(parse_corruptions(corruptions), parse_severities(severities)))
    passes = cells if passes is None else min(passes, cells)
    flip = adapter.default_flip_test
    adapter.predict(batches[0][0], batches[0][1], source.spec, flip)  # warm-up
    start = time.perf_counter()
    for _ in range(passes):
        for images, meta in batches:
            adapter.predict(images, meta, source.spec, flip)
    per_pass = (time.perf_counter() - start) / passes
    return per_pass * cells, cells, len(items), per_pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 corruptions x 2 severities instead of 15 x 5")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the model (both measurements)")
    parser.add_argument("--forward-passes", type=int, default=None,
                        help="time this many passes and scale to all cells (default: all)")
    parser.add_argument("--memory-sizes", default="64,256",
                        help="two SynthPose sizes (images) for the memory check")
    parser.add_argument("--memory-cells", default="gaussian_noise,motion_blur",
                        help="corruptions of the memory runs (severity 3)")
    parser.add_argument("--config", help="measure this training config's model instead of "
                        "the bundled one (with --checkpoint)")
    parser.add_argument("--checkpoint")
    args = parser.parse_args()
    model_args = {"config": args.config, "checkpoint": args.checkpoint} if args.config else {}
    model_flags = ["--config", args.config, "--checkpoint", args.checkpoint] if args.config \
        else []
    corruptions, severities = ("gaussian_noise,glass_blur", "1,5") if args.quick else \
        ("benchmark", "1-5")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    import torch

    torch.set_num_threads(args.threads)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; torch "
          f"threads {args.threads}, DataLoader workers {args.workers}, batch {args.batch_size}")
    with tempfile.TemporaryDirectory(prefix="rp-pipeline-") as tmp:
        tmp = Path(tmp)
        base = [sys.executable, "-m", "robustpose", "benchmark", "--no-progress",
                "--workers", str(args.workers), "--batch-size", str(args.batch_size)] + model_flags
        demo = base + ["--out", str(tmp / "demo")]
        if args.quick:
            demo += ["--corruptions", corruptions, "--severities", severities]
        # materialise the SynthPose validation split first, so no timing includes it
        forward_only_seconds(corruptions, severities, args.batch_size, 1, model_args)
        wall, peak, out = run_measured(demo, env)
        fwd, cells, crops, per_pass = forward_only_seconds(
            corruptions, severities, args.batch_size, args.forward_passes, model_args)
        print(f"\n[1] default benchmark ({cells} cells x {crops} crops), `robustpose "
              f"benchmark{' (quick)' if args.quick else ''}`: {wall:.1f} s wall, "
              f"peak RSS {peak:.0f} MiB")
        print(f"[2] forward passes alone on the same crops: {fwd:.1f} s "
              f"({per_pass:.2f} s per cell{'' if args.forward_passes is None else ', scaled from %d passes' % min(args.forward_passes, cells)})")
        print(f"    ratio benchmark / forward-only = {wall / fwd:.2f}  (target <= 1.3)")
        sizes = [int(s) for s in args.memory_sizes.split(",")]
        peaks = []
        for size in sizes:
            root = tmp / f"synth{size}"
            subprocess.run([sys.executable, "-m", "robustpose", "synth", str(root),
                            "--num-images", str(size), "--seed", "7"], cwd=REPO, env=env,
                           check=True, capture_output=True)
            command = base + ["--dataset", "coco-format", "--data-root", str(root),
                              "--corruptions", args.memory_cells, "--severities", "3",
                              "--no-plots", "--out", str(tmp / f"mem{size}")]
            mem_wall, mem_peak, _ = run_measured(command, env)
            peaks.append(mem_peak)
            print(f"[3] SynthPose {size} images: peak RSS {mem_peak:.0f} MiB "
                  f"({mem_wall:.1f} s)")
        print(f"    peak memory ratio {sizes[1]}/{sizes[0]} images = {peaks[1] / peaks[0]:.2f} "
              f"(target: flat, ~1.0)")
        print("\nbenchmark table of [1]:\n" + out.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
