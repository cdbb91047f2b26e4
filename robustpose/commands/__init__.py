"""Subcommands of the ``robustpose`` CLI (see robustpose/cli.py)."""
