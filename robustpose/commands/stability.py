"""``robustpose stability``: how far predictions move under small perturbations.

R, RUC, D_n, D_(1)(2), AUC and EPE (the stable-heatmap paper's metrics, docs/stability.md)
per (perturbation, severity) cell, resumable in a benchmark run folder; ``--loss-surface``
adds the loss around a few crops (Fig. 10).
"""
from __future__ import annotations

import argparse

from robustpose.commands._args import (add_data_arguments, add_model_arguments,
                                      add_out_argument, add_progress_argument, add_run_arguments)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, onnx_spec_help="YAML/JSON spec of the ONNX model (a heatmap "
                        "output gives D_n and D_(1)(2), e.g. "
                        "configs/onnx/blazepose_landmark_lite_heatmaps.yaml)")
    add_data_arguments(parser)
    run = parser.add_argument_group("run")
    run.add_argument("--perturbations", default="heldout5",
                     help="train10 (the paper's 10 training perturbations), heldout5 (its 5 "
                     "held-out ones), or anything --corruptions takes (names, families, ...)")
    run.add_argument("--severities", default="1-5", help="e.g. 1-5, 3 or 1,3,5")
    run.add_argument("--dn-n", type=int, default=64, help="n of D_n (Eq. 11; default 64)")
    run.add_argument("--normalisation", choices=("auto", "raw", "softmax"), default="auto",
                     help="D_(1)(2) on the raw maps (Gaussian-trained models) or after a "
                     "per-map softmax (weighted cross-entropy models); auto (default): "
                     "softmax for a checkpoint trained with the hdhr codec, else raw")
    run.add_argument("--ruc-p-max", type=int, default=10, help="RUC's last P (heatmap px)")
    add_run_arguments(run, batch_size=32)
    add_out_argument(run, help="run folder (default runs/stability/<model>__<dataset>)")
    run.add_argument("--no-plots", action="store_true")
    add_progress_argument(run, help="no start line and no line per cell")
    surface = parser.add_argument_group("loss surface (Fig. 10)")
    surface.add_argument("--loss-surface", action="store_true",
                         help="also write loss_surface.png/.json: the loss around a few crops "
                         "along (perturbed - clean) and a seeded Rademacher direction")
    surface.add_argument("--surface-crops", type=int, default=4)
    surface.add_argument("--surface-steps", type=int, default=11, help="grid points per axis")
    surface.add_argument("--surface-perturbation", help="default: the first of --perturbations")
    surface.add_argument("--surface-severity", type=int, default=3)


def run(args: argparse.Namespace) -> int:
    from robustpose.benchmarking.stability_card import format_stability_table
    from robustpose.benchmarking.stability_run import run_stability
    from robustpose.commands._args import (CommandError, check_model_arguments,
                                          check_run_arguments, data_options, resolve_device)

    check_run_arguments(args)
    check_model_arguments(args)
    data = data_options(args, run_stability, "stability")
    device = resolve_device(args.device)
    if args.dn_n < 2 or args.ruc_p_max < 1:
        raise CommandError("--dn-n must be >= 2 and --ruc-p-max >= 1")
    try:
        if args.loss_surface:  # before the run: a bad one must not cost the whole run first
            from robustpose.benchmarking.loss_surface import check_surface_arguments

            check_surface_arguments(args.surface_crops, args.surface_steps,
                                    args.surface_perturbation, args.surface_severity,
                                    args.perturbations)
        card = run_stability(args.model, checkpoint=args.checkpoint, config=args.config,
                             onnx=args.onnx, onnx_spec=args.onnx_spec, **data,
                             perturbations=args.perturbations, severities=args.severities,
                             dn_n=args.dn_n, d12_normalisation=args.normalisation,
                             ruc_p_max=args.ruc_p_max, batch_size=args.batch_size,
                             workers=args.workers, device=device, seed=args.seed,
                             out=args.out, input_size=args.input_size, plots=not args.no_plots,
                             progress=not args.no_progress)
        if args.loss_surface:
            from robustpose.benchmarking.loss_surface import run_loss_surface

            surface = run_loss_surface(card["run_dir"], model=args.model,
                                       checkpoint=args.checkpoint, config=args.config,
                                       onnx=args.onnx, onnx_spec=args.onnx_spec,
                                       dataset=args.dataset, data_root=args.data_root,
                                       annotations=args.annotations, spec=args.spec,
                                       input_size=args.input_size, device=device,
                                       seed=args.seed, crops=args.surface_crops,
                                       steps=args.surface_steps,
                                       perturbation=args.surface_perturbation,
                                       severity=args.surface_severity,
                                       perturbations=args.perturbations)
            print(f"loss surface: {surface['plot']}")
    except ImportError as exc:  # the onnx extra missing: one line naming it
        raise CommandError(str(exc)) from None
    print(format_stability_table([card]))
    print(f"results: {card['run_dir']} (stability.json, stability.md"
          + (", plots)" if not args.no_plots else ")")
          + ("  [incomplete]" if card.get("incomplete") else ""))
    return 0
