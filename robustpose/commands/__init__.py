"""Subcommands of the ``robustpose`` CLI (see robustpose/cli.py)."""


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
