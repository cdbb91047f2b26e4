"""``robustpose card [MODEL ...]``: the robustness card of one or several models (clean,
corruption, adversarial and stability faces in one run; docs/card.md), and with several
models their comparison (table, bar figure, mCE, the AdvMix figures)."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robustpose.commands._args import (add_data_arguments, add_model_arguments,
                                          add_out_argument, add_progress_argument,
                                          add_run_arguments)

    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="bundled | NAME[=CHECKPOINT] | CONFIG.yaml[=CHECKPOINT] | "
                        "MODEL.onnx[=SPEC] | a card or run folder (read, not run); "
                        "default: the bundled model, or the --model/--config/--onnx choice")
    add_model_arguments(parser, onnx_note="the card attacks it with SPSA (queries)")
    add_data_arguments(parser)
    run = parser.add_argument_group("card")
    run.add_argument("--budget", default="quick", choices=("quick", "paper"),
                     help="quick: severities 1,3,5, eps 8, stability severity 3, 16 images; "
                     "paper: 15x5, eps 2 and 8, heldout5 x 5, every image (docs/card.md)")
    run.add_argument("--attack", default="auto", choices=("auto", "igsm", "spsa"),
                     help="auto: IGSM-10 for torch weights, SPSA for a query-only model")
    run.add_argument("--sort-by", help="comparison column to sort by (best first), e.g. mPC")
    add_run_arguments(run, batch_size=32)
    add_out_argument(run, help="card folder (default runs/card/<model>__<dataset>); with "
                     "several models, one subfolder per model and compare/")
    run.add_argument("--no-plots", action="store_true")
    add_progress_argument(run, help="no start lines and no line per cell")


def _choices(args: argparse.Namespace) -> list:
    """The models of the command line, in order: the flags' model first, then MODEL words."""
    from robustpose.benchmarking.card_models import parse_model
    from robustpose.benchmarking.run_layer import ModelChoice

    chosen = []
    if args.model or args.config or args.onnx:
        chosen.append(ModelChoice(args.model, args.checkpoint, args.config, args.onnx,
                                  args.onnx_spec, args.input_size))
    chosen += [parse_model(word, args.onnx_spec) for word in args.models]
    for choice in chosen:  # configs of one architecture: told apart by their folders
        if isinstance(choice, ModelChoice) and choice.config and not choice.name:
            choice.name = _label(choice)
    return chosen or [ModelChoice(input_size=args.input_size)]


def _label(choice) -> str:
    """A readable folder name for a model choice (its file, config folder or name)."""
    from pathlib import Path

    if choice.onnx:
        return Path(choice.onnx).stem
    if choice.config:
        return choice.name or Path(choice.config).parent.name
    return choice.model or "bundled"


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robustpose.benchmarking.card_models import compare_models
    from robustpose.benchmarking.card_run import run_card
    from robustpose.benchmarking.run_layer import DataChoice
    from robustpose.commands._args import (CommandError, check_model_arguments,
                                          check_run_arguments, resolve_device)
    from robustpose.reports.card import format_card
    from robustpose.reports.card_compare import load_card

    check_run_arguments(args)
    check_model_arguments(args)
    if args.detections or args.corrupted_root:
        raise CommandError("--detections / --corrupted-root are not supported by "
                           "`robustpose card` yet (the attack face needs GT boxes)")
    data = DataChoice(args.dataset, args.data_root, args.annotations, None, args.max_images,
                      args.spec, None, None, "robustpose", args.seed)
    try:
        chosen = _choices(args)
        several = len(chosen) > 1
        base = Path(args.out) if args.out else None
        cards, adapters = [], {}
        for i, choice in enumerate(chosen):
            if isinstance(choice, Path):
                cards.append(load_card(choice))
                continue
            out = None
            if base is not None:
                out = base / f"{i + 1}-{_label(choice)}" if several else base
            card = run_card(choice, data, budget=args.budget, attack=args.attack, out=out,
                            device=resolve_device(args.device), batch_size=args.batch_size,
                            workers=args.workers, progress=not args.no_progress,
                            plots=not args.no_plots, keep_adapter=several)
            adapter = card.pop("_adapter", None)
            if adapter is not None:
                adapters[card["model"]["name"]] = adapter
            cards.append(card)
            if not several:
                print(format_card(card), end="")
                print(f"results: {card['run_dir']} (card.json, card.md"
                      + (", card.png)" if not args.no_plots else ")"))
        if several:
            where = (base or Path("runs") / "card") / "compare"
            got = compare_models(cards, where, adapters=adapters, data=data,
                                 sort_by=args.sort_by, plots=not args.no_plots)
            print(got["table"].to_markdown(), end="")
            print(f"comparison: {where} ({', '.join(sorted(p.name for p in got['files'].values()))})")
    except ImportError as exc:  # the onnx extra missing: one line naming it
        raise CommandError(str(exc)) from None
    return 0
