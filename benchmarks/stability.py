"""What the stability metrics cost on top of the model's forward passes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stability.py --max-images 16 --repeats 3

1. Overhead: the crops of the clean cell and one perturbed cell are loaded once (the
   benchmark's CellStream, so loading and corrupting are out of both timings); then, on
   the same crops in one run, (a) plain ``adapter.forward`` per batch, and (b) what
   ``robustpose stability`` does per batch: the forward pass, the heatmap maxima, the
   decoding for AUC/EPE, D_n's top-64 and D_(1)(2), and the cell's stats. Ratio b / a
   (target <= 1.3x). Best of ``--repeats`` for each.
2. D_n's top-64 extraction (:func:`topk_positions`: a top-65 + the tie check) against a
   plain ``torch.topk`` of 64 on a batch of N x K x h x w heatmaps, in process CPU time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's robustpose, whatever the install
from robustpose.benchmarking.cells import Cell  # noqa: E402
from robustpose.benchmarking.loading import resolve_adapter  # noqa: E402
from robustpose.benchmarking.sources import resolve_source  # noqa: E402
from robustpose.benchmarking.stability_run import batch_outputs  # noqa: E402
from robustpose.benchmarking.stream import CellImages, CellStream, collate_cell_batch  # noqa: E402
from robustpose.evaluation.stability import StabilityMetric, topk_positions  # noqa: E402


def best_of(fn, repeats: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        started = clock()
        fn()
        times.append(clock() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-images", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--perturbation", default="gaussian_blur")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    adapter, _ = resolve_adapter(None, None, None, None, None, device=args.device,
                                 input_size=None, num_joints=17, adapter_options={})
    source = resolve_source("synth", input_size=adapter.input_size, padding=adapter.padding,
                            max_images=args.max_images, subset_dir=Path("runs/stability/subsets"))
    cells = [Cell("clean", 0), Cell(args.perturbation, 3)]
    stream = CellStream(cells, source.records, source.spec, adapter.input_size, CellImages(0),
                        image_root=source.image_root)
    n = len(source.records)
    batches = [[collate_cell_batch([stream[(c, i)] for i in range(s, min(s + args.batch_size, n))])
                for s in range(0, n, args.batch_size)] for c in range(len(cells))]

    def plain() -> None:
        for cell in batches:
            for b in cell:
                adapter.forward(b["image"])

    def stability() -> None:
        reference = None
        for index, cell in enumerate(batches):
            metric = None
            for b in cell:
                out = batch_outputs(adapter, b["image"], b["meta"], source.spec)
                if metric is None:
                    metric = StabilityMetric(n, out["stride"], reference if index else None)
                metric.accumulate(out, b["meta"])
            metric.stats()
            reference = metric.positions()

    plain()  # warm-up (first-call allocations)
    walls, cpus = ([], []), ([], [])
    for _ in range(args.repeats):  # interleaved, so a load change hits both alike
        for i, fn in enumerate((plain, stability)):
            walls[i].append(best_of(fn, 1))
            cpus[i].append(best_of(fn, 1, time.process_time))
    a, b = min(walls[0]), min(walls[1])
    ca, cb = min(cpus[0]), min(cpus[1])
    print(f"model {adapter.name}, {n} crops x {len(cells)} cells, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"forward only {a * 1e3:.1f} ms; stability run {b * 1e3:.1f} ms; ratio {b / a:.2f}x (wall)")
    print(f"forward only {ca * 1e3:.1f} ms; stability run {cb * 1e3:.1f} ms; ratio {cb / ca:.2f}x "
          f"(process CPU time: what the work costs when other jobs share the cores)")

    gen = torch.Generator().manual_seed(0)
    maps = torch.rand(args.batch_size, 17, 64, 48, generator=gen)
    flat = maps.flatten(2)
    # process CPU time, interleaved: wall time on a shared machine swung 2x between calls
    # of the same op; with one torch thread CPU time is the op's own work
    plain, ours = [], []
    for _ in range(max(5, args.repeats)):
        plain.append(best_of(lambda: torch.topk(flat, 64, dim=2), 3, time.process_time))
        ours.append(best_of(lambda: topk_positions(maps, 64), 3, time.process_time))
    t_plain, t_ours = min(plain), min(ours)
    print(f"top-64 of {args.batch_size}x17x64x48 (CPU time, {torch.get_num_threads()} thread(s)): "
          f"torch.topk {t_plain * 1e3:.2f} ms; topk_positions {t_ours * 1e3:.2f} ms; "
          f"ratio {t_ours / t_plain:.2f}x")


if __name__ == "__main__":
    main()
