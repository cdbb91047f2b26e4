"""``robustpose <command>``: one entry point, one module per command.

Each command lives in ``robustpose/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs, so ``robustpose --help`` stays fast and a command's optional dependency
never breaks another.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from robustpose.commands import CommandError

#: command name -> (module under robustpose.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "corrupt": ("corrupt", "write a corrupted (-C) copy of an image folder"),
    "evaluate": ("evaluate", "score a predictions file against ground truth"),
    "train": ("train", "train a pose model from a YAML experiment config"),
    "test": ("test", "evaluate a trained checkpoint with its config"),
    "synth": ("synth", "write a SynthPose dataset (images + COCO annotations)"),
    "benchmark": ("benchmark", "corruption benchmark: AP*/PCKh*, mPC, rPC, tables, plots"),
    "report": ("report", "rebuild a run's reports (any kind) from its store; compare runs or cards; mCE vs a baseline"),
    "stability": ("stability", "stability metrics R, RUC, D_n, D_(1)(2) under perturbations"),
    "attack": ("attack", "adversarial attacks: FGSM, IGSM, UAP, transfer, SPSA (relative metric)"),
    "advmix-preview": ("advmix_preview", "AdvMix picture of one batch: views, mixing weights, mix, skeletons"),
    "card": ("card", "robustness card: clean, corruption, adversarial and stability faces; compare models"),
    "inspect": ("inspect", "a model file's inputs and outputs and the spec preset that fits"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustpose",
        description="Robustness benchmarks, robust training and attacks for 2D pose estimators.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = build_parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
        parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(f"robustpose.commands.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("robustpose.commands"):
            print(f"robustpose {name}: not available in this build", file=sys.stderr)
            return 2
        raise
    parser = argparse.ArgumentParser(prog=f"robustpose {name}", description=help_text)
    module.add_arguments(parser)
    # intermixed: `train CFG --flag key=value` keeps overrides after options
    args = parser.parse_intermixed_args(rest)
    from robustpose.utils.processes import Terminated, sigterm_raises

    try:
        with sigterm_raises():  # a scheduler's SIGTERM stops the run as Ctrl-C does
            return int(module.run(args) or 0)
    except (CommandError, ValueError) as exc:
        print(f"robustpose {name}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # FileNotFoundError, PermissionError, disk full, ...
        print(f"robustpose {name}: error: {os_error_text(exc, args)}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"robustpose {name}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + int(Terminated.signum)
    except KeyboardInterrupt:
        print(f"robustpose {name}: interrupted", file=sys.stderr)
        return 130


#: argument names under which commands take the folder they write (benchmark: --out,
#: synth: OUT_DIR, corrupt: OUTPUT_DIR)
OUTPUT_ARGUMENTS = ("out", "out_dir", "output_dir")


def os_error_text(exc: OSError, args: argparse.Namespace | None = None) -> str:
    """One line for a file-system error: ``PATH: problem`` (``PATH -> OTHER`` for a
    failed rename). An error raised on an open descriptor (disk full in ``os.write`` or
    ``fsync``) carries no file name; the command's output folder is named instead."""
    if exc.strerror is None:  # raised by the project with its own message
        return str(exc)
    problem = exc.strerror
    if isinstance(exc, NotADirectoryError):
        problem += " (a part of the path is a file)"
    if exc.filename is not None:
        where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        return f"{where}: {problem}"
    out = next((getattr(args, k) for k in OUTPUT_ARGUMENTS if getattr(args, k, None)), None)
    return f"{problem} while writing under {out}" if out else problem
