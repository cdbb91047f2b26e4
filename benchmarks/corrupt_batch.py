"""Measure ``corrupt_batch`` against the numpy ``corrupt``: agreement and speed, all 19 x 5.

    .venv/bin/python benchmarks/corrupt_batch.py --images 4 --seeds 8 --size 320x240

Prints a markdown table (docs/writing-c-datasets.md holds a copy): for deterministic
corruptions the largest |difference| and the share of identical values; for random ones
the mean PSNR over seeds of both paths (and its standard error); for fallbacks whether the
bytes are identical; and the time per image of both paths in this run (single thread).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's robustpose, whatever the install
from robustpose.corruptions import corrupt  # noqa: E402
from robustpose.corruptions.batch import corrupt_batch, is_native  # noqa: E402
from robustpose.corruptions.params import CORRUPTION_NAMES  # noqa: E402

DETERMINISTIC = {"defocus_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast",
                 "saturate", "pixelate"}


def _load(data_root: Path, count: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    from PIL import Image

    from robustpose.data import load_image

    files = sorted((data_root / "coco_val_mini" / "images").glob("*.jpg"))[:count]
    images = [load_image(f) for f in files]
    if size is not None:
        images = [np.asarray(Image.fromarray(im).resize(size, Image.BILINEAR)) for im in images]
    return images


def _psnr(out: np.ndarray, ref: np.ndarray) -> float:
    mse = max(float(((out.astype(np.float64) - ref.astype(np.float64)) ** 2).mean()), 1e-12)
    return 10 * np.log10(255.0 ** 2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get(
        "ROBUSTPOSE_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=8, help="seeds per image for random ones")
    parser.add_argument("--size", default="320x240", help="WxH all images are resized to")
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--corruptions", default=",".join(CORRUPTION_NAMES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    w, h = (int(v) for v in args.size.split("x"))
    images = _load(Path(args.data_root), args.images, (w, h))
    seeds = list(range(args.seeds))
    print(f"{len(images)} COCO val images at {w}x{h}, {len(seeds)} seeds, torch "
          f"{torch.__version__} CPU, 1 thread\n")
    print("| corruption | sev | path | agreement with numpy `corrupt` | numpy ms/img | torch ms/img | speed-up |")
    print("|---|---|---|---|---|---|---|")
    totals = [0.0, 0.0]
    for name in args.corruptions.split(","):
        for severity in (int(s) for s in args.severities.split(",")):
            native = is_native(name)
            batch = torch.from_numpy(np.stack([im for im in images for _ in seeds])).permute(0, 3, 1, 2).contiguous()
            batch_seeds = [s for _ in images for s in seeds]
            start = time.perf_counter()
            ours = corrupt_batch(batch, name, severity, batch_seeds).permute(0, 2, 3, 1).numpy()
            t_torch = (time.perf_counter() - start) / len(batch_seeds)
            start = time.perf_counter()
            theirs = [corrupt(im, name, severity, seed=s) for im in images for s in seeds]
            t_numpy = (time.perf_counter() - start) / len(batch_seeds)
            totals[0] += t_numpy
            totals[1] += t_torch
            if not native:
                same = all(np.array_equal(a, b) for a, b in zip(ours, theirs))
                agree = "identical bytes" if same else "DIFFERENT"
            elif name in DETERMINISTIC:
                diff = np.abs(np.stack(ours).astype(int) - np.stack(theirs).astype(int))
                agree = f"max diff {diff.max()}, {100 * (diff == 0).mean():.3f}% identical"
            else:
                clean = [im for im in images for _ in seeds]
                p_ours = np.array([_psnr(o, c) for o, c in zip(ours, clean)])
                p_np = np.array([_psnr(o, c) for o, c in zip(theirs, clean)])
                se = np.sqrt(p_ours.var() / len(p_ours) + p_np.var() / len(p_np))
                agree = f"PSNR {p_ours.mean():.2f} vs {p_np.mean():.2f} dB (se {se:.2f})"
            print(f"| {name} | {severity} | {'torch' if native else 'numpy fallback'} | {agree} | "
                  f"{1000 * t_numpy:.1f} | {1000 * t_torch:.1f} | {t_numpy / t_torch:.2f}x |", flush=True)
    print(f"\ntotal ms/img over the cells: numpy {1000 * totals[0]:.0f}, torch {1000 * totals[1]:.0f} "
          f"(ratio {totals[0] / totals[1]:.2f}x)")


if __name__ == "__main__":
    main()
