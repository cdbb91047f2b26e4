"""``robustpose attack {fgsm,igsm,uap,transfer,spsa}``: adversarial attacks, one cell per
(attack, eps, steps), resumable in a benchmark run folder (docs/attacks.md)."""
from __future__ import annotations

import argparse

from robustpose.commands._args import (add_data_arguments, add_model_arguments,
                                      add_out_argument, add_progress_argument, add_run_arguments,
                                      attack_choices, attack_loss_choices)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attack", choices=attack_choices())
    add_model_arguments(parser, onnx_note="spsa / transfer only")
    add_data_arguments(parser)
    run = parser.add_argument_group("attack")
    run.add_argument("--eps", default="0.25,0.5,1,2,4,8,16,32", help="l_inf budgets, 0..255 scale")
    run.add_argument("--steps", help="iterations (igsm, transfer; default 10,100; spsa: 10) "
                     "or epochs (uap; default 10,100); fgsm is one step")
    run.add_argument("--alpha", type=float, help="step size, 0..255 scale (default 2.5 eps / "
                     "steps; uap: eps / 10)")
    run.add_argument("--targeted", action="store_true", help="target: another person's pose")
    run.add_argument("--all-stacks", action="store_true", help="loss over every stack (ALL)")
    run.add_argument("--loss", default="auto", choices=attack_loss_choices(),
                     help="auto (the model's recorded training loss, else mse / coord_l2) or a "
                     "loss for the model's output kind")
    run.add_argument("--reference", default="gt", choices=("gt", "clean"),
                     help="untargeted: ascend the loss to the GT targets or to the clean prediction")
    run.add_argument("--surrogate", action="append", default=[],
                     help="transfer: model to craft on (registry name or 'bundled'); repeatable")
    run.add_argument("--spsa-samples", type=int, default=8, help="directions per SPSA step "
                     "(2 queries each per crop: 1 + 2 x 8 x 10 = 161 queries per crop by default)")
    run.add_argument("--max-queries", type=int, help="SPSA per-crop query budget")
    run.add_argument("--uap-fit-images", type=int, default=32,
                     help="uap: images outside the evaluation set to fit on")
    run.add_argument("--uap-fit-annotations", help="uap: fit on this annotation file instead")
    run.add_argument("--uap-holdout-images", type=int, default=0, help="uap: the next N unseen "
                     "images give the held-out relative-PCK curve per epoch")
    run.add_argument("--uap-patience", type=int, default=0, help="uap: stop when the held-out "
                     "curve has not improved by > --uap-min-delta over N epochs (0: all --steps)")
    run.add_argument("--uap-min-delta", type=float, default=0.005)
    add_run_arguments(run, batch_size=16, workers=False)
    add_out_argument(run, help="run folder (default runs/attack/<attack>-<model>__<dataset>)")
    run.add_argument("--no-plots", action="store_true")
    add_progress_argument(run, help="no start line and no line per cell")


def run(args: argparse.Namespace) -> int:
    from robustpose.benchmarking.attack_card import format_attack_table
    from robustpose.benchmarking.attack_run import run_attack
    from robustpose.commands._args import (CommandError, check_model_arguments, data_options,
                                          resolve_device)

    if args.batch_size < 1 or args.spsa_samples < 1:
        raise CommandError("--batch-size and --spsa-samples must be >= 1")
    check_model_arguments(args)
    data = data_options(args, run_attack, "attack")
    try:
        card = run_attack(args.attack, args.model, checkpoint=args.checkpoint, config=args.config,
                          onnx=args.onnx, onnx_spec=args.onnx_spec, **data, input_size=args.input_size,
                          eps=args.eps, steps=args.steps, targeted=args.targeted,
                          all_stacks=args.all_stacks, loss=args.loss, reference=args.reference,
                          alpha=args.alpha, surrogates=args.surrogate,
                          spsa_samples=args.spsa_samples, max_queries=args.max_queries,
                          uap_fit_images=args.uap_fit_images,
                          uap_fit_annotations=args.uap_fit_annotations,
                          uap_holdout_images=args.uap_holdout_images,
                          uap_patience=args.uap_patience, uap_min_delta=args.uap_min_delta,
                          batch_size=args.batch_size, device=resolve_device(args.device),
                          seed=args.seed,
                          out=args.out, plots=not args.no_plots, progress=not args.no_progress)
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    print(format_attack_table(card))
    print(f"results: {card['run_dir']} (attack.json, attack.md" +
          (", plots)" if not args.no_plots else ")"))
    return 0
