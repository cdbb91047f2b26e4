"""Subcommands of the ``robustpose`` CLI (see robustpose/cli.py).

The argument groups they share live in :mod:`robustpose.commands._args`; the names below
are kept for the callers that import them from here.
"""
from __future__ import annotations

from robustpose.commands._args import CommandError, add_model_arguments, check_model_arguments

__all__ = ["CommandError", "add_model_arguments", "check_model_arguments"]
