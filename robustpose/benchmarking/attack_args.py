"""The numeric arguments of ``robustpose attack``, checked before any work.

``--eps 8,8`` (or ``8,8.000001``, equal once written ``%g`` as the cell key is) names one
cell: keys are deduplicated here, so a run never computes a cell twice and then fails
"already stored". Counts must be >= 1: ``--max-queries 0`` would store an "attacked" cell in
which no query ran, ``--uap-fit-images -1`` would slice ``[:-1]``.
"""
from __future__ import annotations

from typing import Sequence

#: ``--steps`` when not given: 10 and 100 iterations for the gradient attacks; 10 for SPSA,
#: whose crops are fed one query batch at a time (docs/attacks.md: 1 + 2 x samples x steps
#: queries per crop and cell: 161 with the default 8 samples, was 3,522 with 16 samples
#: and steps 10,100, over 10 minutes on 4 images of BlazePose lite on CPU)
DEFAULT_STEPS = "10,100"
SPSA_STEPS = "10"
SPSA_SAMPLES = 8


def default_steps(attack: str) -> str:
    """The ``--steps`` of ``attack`` when none is given (SPSA: :data:`SPSA_STEPS`)."""
    return SPSA_STEPS if attack == "spsa" else DEFAULT_STEPS


def parse_numbers(text: str | Sequence[float], what: str, integer: bool = False) -> list:
    """'0.25,0.5,1' -> [0.25, 0.5, 1.0] (ints with ``integer``), one value per cell key
    (``%g``; the first spelling kept, in order); one-line error naming ``what``."""
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else map(str, text))]
    try:
        values = [int(p) if integer else float(p) for p in parts if p]
    except ValueError:
        raise ValueError(f"bad {what} {text!r}: use comma-separated numbers") from None
    if not values or any(not v < float("inf") or v < (1 if integer else 0) for v in values):
        raise ValueError(f"bad {what} {text!r}: need "
                         f"{'integers >= 1' if integer else 'finite numbers >= 0'}")
    unique: dict[str, float] = {}
    for value in values:
        unique.setdefault(f"{value:g}", value)
    return list(unique.values())


def check_counts(**counts: int | None) -> None:
    """Each given count (None = its default) must be an integer >= 1; one line naming the
    option (``max_queries`` -> ``--max-queries``)."""
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"--{name.replace('_', '-')} {value}: need an integer >= 1")


def check_alpha(alpha: float | None) -> None:
    """``--alpha`` (None = its default) must be finite and > 0 on the 0..255 scale: 0 would
    store an "attacked" cell in which no step moved the crop. Checked before any work."""
    if alpha is None:
        return
    value = float(alpha)
    if not (0.0 < value < float("inf")):
        raise ValueError(f"--alpha {alpha}: need a finite step size > 0 (0..255 scale)")
