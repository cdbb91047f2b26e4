"""Subcommands of the ``robustpose`` CLI (see robustpose/cli.py)."""
from __future__ import annotations

import argparse


class CommandError(Exception):
    """An error to show the user as one line (no traceback)."""


def check_model_arguments(args) -> None:
    """The model choice shared by ``benchmark``, ``stability`` and ``attack``: one-line
    :class:`CommandError` for ``--model`` with ``--config``, or a lone ``--onnx`` /
    ``--onnx-spec``."""
    if getattr(args, "model", None) is not None and getattr(args, "config", None) is not None:
        raise CommandError("give --model or --config, not both")
    if (getattr(args, "onnx", None) is None) != (getattr(args, "onnx_spec", None) is None):
        raise CommandError("--onnx and --onnx-spec go together")


def add_model_arguments(parser: argparse.ArgumentParser, onnx_note: str = "needs the onnx extra",
                        onnx_spec_help: str = "YAML/JSON spec of the ONNX model's input and output"
                        ) -> argparse._ArgumentGroup:
    """The model choice of every command that runs a model (``benchmark``, ``stability``,
    ``attack``): ``--model``/``--checkpoint``, ``--config``, ``--onnx``/``--onnx-spec``,
    ``--input-size``; the group is returned for command-specific additions."""
    model = parser.add_argument_group("model (default: the bundled SynthPose model)")
    model.add_argument("--model", help="registry model name (robustpose.models.list_models())")
    model.add_argument("--checkpoint", help="weights for --model / --config (official or robustpose)")
    model.add_argument("--config", help="training YAML config (architecture, inference setting)")
    model.add_argument("--onnx", help=f"ONNX model file ({onnx_note})")
    model.add_argument("--onnx-spec", help=onnx_spec_help)
    model.add_argument("--input-size", help="crop WIDTHxHEIGHT for --model (default 192x256)")
    return model
