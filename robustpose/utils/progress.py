"""When to draw progress bars: only on a terminal.

A tqdm bar redraws itself many times a second; in a redirected log each redraw is a line
(hundreds per run). Every command asks :func:`show_progress` before drawing one and prints
its one line per finished step (cell, epoch) either way.
"""
from __future__ import annotations

import sys
from typing import IO

__all__ = ["show_progress"]


def show_progress(requested: bool = True, stream: IO | None = None) -> bool:
    """Whether to draw a progress bar: ``requested`` and ``stream`` (default: the current
    ``sys.stderr``, where tqdm draws) is a terminal. A Jupyter kernel counts as one (its
    bars are widgets, not redrawn lines).

    >>> import io
    >>> show_progress(True, io.StringIO())
    False
    """
    if not requested:
        return False
    stream = sys.stderr if stream is None else stream
    if stream is None:  # pythonw, detached daemons
        return False
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return "ipykernel" in sys.modules
