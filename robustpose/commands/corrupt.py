"""``robustpose corrupt INPUT_DIR OUTPUT_DIR``: write a corrupted (-C) copy of an image folder.

The writer is :func:`robustpose.data.write_corrupted_dataset`; ``--corruptions`` and
``--severities`` use the grammar of ``robustpose benchmark`` (robustpose.corruptions).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input_dir", metavar="INPUT_DIR", help="folder of images (searched recursively)")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR",
                        help="writes OUTPUT_DIR/<corruption>/<severity>/<relative path>")
    parser.add_argument("--annotations", metavar="FILE", default=None,
                        help="COCO-format (or HRNet MPII) json of the set: write its images, "
                             "seeded by image id exactly as `robustpose benchmark` corrupts "
                             "them on the fly (default: every image, id = relative path)")
    parser.add_argument("--corruptions", default="benchmark",
                        help="benchmark (the 15, default), all (19), validation or extra (4), "
                             "common, noise, blur, weather, digital, posebench (10), or "
                             "comma-separated names; not the box family (it moves the crop, "
                             "not the pixels: refused)")
    parser.add_argument("--severities", default="1-5",
                        help="e.g. 1-5 (default), 3, 1,3,5 or all")
    parser.add_argument("--seed", type=int, default=None,
                        help="base seed (default 0; 1 with --layout advmix, as its script)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--format", dest="image_format", choices=("png", "jpg"), default=None,
                        help="png (lossless, default) or jpg (default with --layout advmix)")
    parser.add_argument("--quality", type=int, default=None,
                        help="JPEG quality for --format jpg (default 75, Pillow's default)")
    parser.add_argument("--layout", choices=("robustpose", "advmix"), default="robustpose",
                        help="robustpose: severity folders 1-5, relative paths kept; advmix: "
                             "folders 0-4, file names only, JPEG q75, seed 1 for every image")
    parser.add_argument("--overwrite", action="store_true",
                        help="rewrite existing outputs (default: a rerun skips them)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 3 when any input was skipped (default: 0, "
                             "skips listed in the summary)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (drawn only when stderr is a terminal)")


def run(args: argparse.Namespace) -> int:
    from robustpose.corruptions import parse_corruptions, parse_severities
    from robustpose.data.corrupted_writer import (DEFAULT_JPEG_QUALITY, SUMMARY_NAME,
                                                  WriterSettings, write_corrupted_dataset)
    from robustpose.utils.progress import show_progress

    input_dir = Path(args.input_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder {input_dir} does not exist or is not a folder")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    advmix = args.layout == "advmix"
    image_format = args.image_format or ("jpg" if advmix else "png")
    if args.quality is not None and image_format != "jpg":
        raise ValueError("--quality applies to --format jpg only")
    settings = WriterSettings(
        layout=args.layout,
        seed=args.seed if args.seed is not None else (1 if advmix else 0),
        image_format=image_format,
        quality=args.quality if args.quality is not None else DEFAULT_JPEG_QUALITY,
    )
    corruptions = parse_corruptions(args.corruptions)
    severities = parse_severities(args.severities)
    if not corruptions:
        raise ValueError("--corruptions none selects nothing to write")
    summary = write_corrupted_dataset(input_dir, args.output_dir, corruptions, severities,
                                      settings=settings, workers=args.workers,
                                      overwrite=args.overwrite,
                                      progress=show_progress(not args.no_progress),
                                      annotations=args.annotations)
    failed_inputs = sorted({f["path"] for f in summary.failed})
    seeding = (f"seed {settings.seed} for every image (advmix)" if advmix else
               f"seeded by image id from {Path(args.annotations).name}" if args.annotations
               else "seeded by relative path (--annotations seeds by image id, as the "
                    "benchmark on the fly)")
    print(f"robustpose corrupt: {summary.images} images x {len(corruptions)} corruptions x "
          f"{len(severities)} severities, {seeding}: {summary.written} written, "
          f"{summary.skipped_existing} already there, {len(summary.failed)} failed "
          f"({len(failed_inputs)} inputs) in {summary.seconds:.1f} s; "
          f"summary in {Path(args.output_dir) / SUMMARY_NAME}")
    for rel in failed_inputs[:20]:
        reasons = {f["error"] for f in summary.failed if f["path"] == rel}
        print(f"  skipped {rel}: {'; '.join(sorted(reasons))}")
    if len(failed_inputs) > 20:
        print(f"  ... and {len(failed_inputs) - 20} more (see the summary file)")
    return 3 if (args.strict and summary.failed) else 0
