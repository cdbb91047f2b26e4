"""Subcommands of the ``robustpose`` CLI (see robustpose/cli.py)."""


class CommandError(Exception):
    """An error to show the user as one line (no traceback)."""
