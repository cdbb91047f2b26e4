"""``robustpose synth OUT_DIR``: write a SynthPose split (images/ + annotations.json, COCO format).

    robustpose synth out/synth_val --split val               # the fixed validation split
    robustpose synth out/synth_train --num-images 4000 --seed 1
"""
from __future__ import annotations

import argparse

from robustpose.commands._args import add_progress_argument


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 256x192, got {text!r}") from None
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="output folder (images/ and annotations.json go inside)")
    parser.add_argument("--split", choices=("train", "val"), default="train",
                        help="which stream of images (default train)")
    parser.add_argument("--num-images", type=int, default=None,
                        help="number of images (default: 64 for val, 1000 for train)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed (default: 0 = the fixed validation split for val, 1 for train)")
    parser.add_argument("--image-size", type=_size, default=None, metavar="WxH",
                        help="image width x height in pixels (default 256x192)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a split already in OUT_DIR (its images are removed first)")
    add_progress_argument(parser, help="no progress bar (drawn only when stderr is a terminal)")


def run(args: argparse.Namespace) -> int:
    from robustpose.data.synth import DEFAULT_IMAGE_SIZE, VAL_NUM_IMAGES, VAL_SEED, SynthPose
    from robustpose.utils.progress import show_progress

    val = args.split == "val"
    num = args.num_images if args.num_images is not None else (VAL_NUM_IMAGES if val else 1000)
    seed = args.seed if args.seed is not None else (VAL_SEED if val else 1)
    dataset = SynthPose(num_images=num, seed=seed, split=args.split,
                        image_size=args.image_size or DEFAULT_IMAGE_SIZE)
    ann = dataset.write(args.out_dir, progress=show_progress(not args.no_progress),
                        overwrite=args.overwrite)
    print(f"wrote {num} images ({dataset!r}) to {ann.parent}/images and {ann}")
    return 0
