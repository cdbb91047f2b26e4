"""Speed of robustpose.corruptions vs the reference (imagecorruptions-imaug 1.1.5, numba glass blur).

Times every corruption x severity on one image, single-threaded (OpenCV, OpenMP, MKL,
OpenBLAS and numba limited to 1 thread), median of ``--repeats`` runs after one warm-up
run (which absorbs numba's JIT compilation and texture loading), both libraries in the
same process, their runs interleaved. Prints a markdown table (ms, summed over the 5 severities) and the
total ratios for the 15 benchmark corruptions and for all 19.

    .venv/bin/python benchmarks/corruptions.py                 # 480x640, median of 5
    .venv/bin/python benchmarks/corruptions.py --size 720x1280 --repeats 3
    .venv/bin/python benchmarks/corruptions.py --posebench    # PoseBench's three, numpy + torch CPU

``--posebench`` times only color_quant, low_light and mask (ms per image, mean over the 5
severities) in the numpy engine and in ``corrupt_batch`` on the CPU (batch of 1), each beside
gaussian_noise timed in the same run and engine, and prints the ratio to it.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

cv2.setNumThreads(1)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from robustpose.corruptions import corrupt, get_corruption_names  # noqa: E402


def load_image(data_root: Path, size: tuple[int, int]) -> np.ndarray:
    """First coco_val_mini image resized to ``size`` (H, W); a fixed random image if absent."""
    folder = data_root / "coco_val_mini" / "images"
    if folder.is_dir():
        img = np.asarray(Image.open(sorted(folder.iterdir())[0]).convert("RGB"))
        return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    print(f"note: {folder} not found, timing a random image")
    return np.random.RandomState(0).randint(0, 256, (*size, 3)).astype(np.uint8)


def timed_pair(ours, ref, repeats: int) -> tuple[float, float]:
    """Median wall times (s) of ``ours()`` and ``ref()`` over ``repeats`` interleaved runs
    (ours, ref, ours, ref, ...) after one warm-up each, so that load drifts hit both alike.
    ``ref`` may be None."""
    ours()
    if ref is not None:
        ref()
    t_ours, t_ref = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours()
        t_ours.append(time.perf_counter() - start)
        if ref is not None:
            start = time.perf_counter()
            ref()
            t_ref.append(time.perf_counter() - start)
    return statistics.median(t_ours), (statistics.median(t_ref) if t_ref else float("nan"))


def posebench_costs(image: np.ndarray, repeats: int, against: str = "gaussian_noise") -> None:
    """Print ms per image of PoseBench's three (mean over severities 1-5) in both engines,
    and the ratio to ``against`` timed in the same run (torch limited to 1 thread)."""
    import torch

    from robustpose.corruptions import POSEBENCH_EXTRA, corrupt_batch

    torch.set_num_threads(1)
    batch = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].contiguous()
    engines = {
        "numpy corrupt": lambda name, s: corrupt(image, name, s, seed=s),
        "torch corrupt_batch (CPU)": lambda name, s: corrupt_batch(batch, name, s, [s]),
    }
    print(f"image {image.shape[0]}x{image.shape[1]}, median of {repeats} runs, 1 thread; "
          f"ms per image, mean over severities 1-5\n")
    print(f"| corruption | engine | ms / image | x {against} |")
    print("|---|---|---|---|")
    for engine, run in engines.items():
        def cost(name: str) -> float:
            return 1000 * statistics.mean(
                timed_pair(lambda: run(name, s), None, repeats)[0] for s in range(1, 6))

        base = cost(against)
        print(f"| {against} | {engine} | {base:.1f} | 1.0 |", flush=True)
        for name in POSEBENCH_EXTRA:
            ms = cost(name)
            print(f"| {name} | {engine} | {ms:.1f} | {ms / base:.2f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="480x640", help="HxW")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--corruptions", default="all")
    parser.add_argument("--no-reference", action="store_true", help="time robustpose only")
    parser.add_argument("--posebench", action="store_true",
                        help="time PoseBench's three (numpy and torch CPU) against gaussian_noise")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    image = load_image(args.data_root, size)
    if args.posebench:
        posebench_costs(image, args.repeats)
        return 0
    names = get_corruption_names("all") if args.corruptions == "all" else args.corruptions.split(",")
    reference = None
    if not args.no_reference:
        import imagecorruptions

        reference = imagecorruptions.corrupt
    common = set(get_corruption_names("common"))
    print(f"image {size[0]}x{size[1]}, median of {args.repeats} runs, 1 thread; ms summed over severities 1-5\n")
    print("| corruption | robustpose ms | reference ms | speed-up | slowest severity ratio |")
    print("|---|---|---|---|---|")
    totals = {"ours15": 0.0, "ref15": 0.0, "ours": 0.0, "ref": 0.0}
    for name in names:
        ours_s, ref_s = [], []
        for severity in range(1, 6):
            kwargs = {"seed": severity} if name in ("glass_blur", "impulse_noise") else {}
            ref_fn = None if reference is None else (
                lambda: reference(image, severity=severity, corruption_name=name, **kwargs))
            t_ours, t_ref = timed_pair(lambda: corrupt(image, name, severity, seed=severity), ref_fn, args.repeats)
            ours_s.append(t_ours)
            ref_s.append(t_ref)
        ours, ref = 1000 * sum(ours_s), 1000 * sum(ref_s)
        totals["ours"] += ours
        totals["ref"] += ref
        if name in common:
            totals["ours15"] += ours
            totals["ref15"] += ref
        if reference is not None:
            worst = min(r / o for r, o in zip(ref_s, ours_s))
            print(f"| {name} | {ours:.1f} | {ref:.1f} | {ref / ours:.1f}x | {worst:.1f}x |", flush=True)
        else:
            print(f"| {name} | {ours:.1f} | - | - | - |", flush=True)
    print()
    if reference is not None:
        print(f"15 benchmark corruptions x 5 severities: robustpose {totals['ours15'] / 1000:.3f} s, "
              f"reference {totals['ref15'] / 1000:.3f} s, ratio {totals['ref15'] / totals['ours15']:.1f}x")
        print(f"all 19 x 5: robustpose {totals['ours'] / 1000:.3f} s, reference {totals['ref'] / 1000:.3f} s, "
              f"ratio {totals['ref'] / totals['ours']:.1f}x")
    else:
        print(f"15 x 5: robustpose {totals['ours15'] / 1000:.3f} s; all 19 x 5: {totals['ours'] / 1000:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
