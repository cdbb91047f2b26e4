"""Typed cell keys of ``robustpose attack`` runs, and their JSON form in the records.

An attack cell is (attack, eps, steps, targeted, all_stacks, surrogate) plus the loss it
ascended; the clean cell (the reference of every relative number) is ``Cell('clean', 0)``.
Records carry the key as ``cell`` (run schema 2, :mod:`run_layer`). The store's identity
stays the string of schema 1, ``corruption='<attack>-<U|T>[-ALL]@<eps>'``
(``transfer[<surrogate>]-igsm-...`` for transfer) and ``severity=steps``, so folders of
either version resume; :func:`key_from_json` parses that string once, for a record of a
folder written before the typed keys (nothing downstream reads the string).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from robustpose.benchmarking.cells import CLEAN, Cell

_LEGACY = re.compile(r"^(?:transfer\[(?P<surrogate>.*)\]-igsm|(?P<attack>[a-z]+))"
                     r"-(?P<mode>[UT])(?P<all>-ALL)?@(?P<eps>[^@]+)$")


@dataclass(frozen=True)
class AttackCell:
    """One attack cell. ``eps`` on the 0..255 scale; ``steps``: iterations (IGSM, SPSA),
    epochs (UAP), 1 (FGSM); ``surrogate``: the transfer source (None: the model itself);
    ``loss``: the loss ascended (not part of the identity: run.json fixes it)."""

    attack: str
    eps: float
    steps: int
    targeted: bool = False
    all_stacks: bool = False
    surrogate: str | None = None
    loss: str | None = field(default=None, compare=False)

    is_clean = False

    @property
    def mode(self) -> str:
        """``U`` / ``T`` (targeted), with ``-ALL`` when every stack's output is attacked."""
        return ("T" if self.targeted else "U") + ("-ALL" if self.all_stacks else "")

    @property
    def corruption(self) -> str:
        """The store's identity (schema 1's string): ``<attack>-<mode>@<eps %g>``."""
        head = f"transfer[{self.surrogate}]-igsm" if self.attack == "transfer" else self.attack
        return f"{head}-{self.mode}@{self.eps:g}"

    @property
    def severity(self) -> int:
        return int(self.steps)

    @property
    def label(self) -> str:
        return f"{self.corruption}/{self.steps}"


def key_to_json(cell: Any) -> dict:
    """The ``cell`` field of a record (the clean cell: ``{'attack': 'clean'}``)."""
    if cell.is_clean:
        return {"attack": CLEAN}
    return {"attack": cell.attack, "eps": float(cell.eps), "steps": int(cell.steps),
            "targeted": bool(cell.targeted), "all_stacks": bool(cell.all_stacks),
            "surrogate": cell.surrogate, "loss": cell.loss}


def key_from_json(record: dict) -> Cell | AttackCell:
    """A record's typed key: its ``cell`` (schema 2), else (schema 1) the record's own
    fields where it has them and the ``corruption`` string parsed for the rest."""
    if record.get("corruption") == CLEAN:
        return Cell(CLEAN, 0)
    typed = record.get("cell")
    if isinstance(typed, dict):
        return AttackCell(typed["attack"], float(typed["eps"]), int(typed["steps"]),
                          bool(typed["targeted"]), bool(typed["all_stacks"]),
                          typed.get("surrogate"), typed.get("loss"))
    match = _LEGACY.match(str(record.get("corruption")))
    if match is None:
        raise ValueError(f"attack record {record.get('corruption')!r}/{record.get('severity')}: "
                         "not an attack cell key of run schema 1 or 2")
    attack = "transfer" if match["surrogate"] is not None else match["attack"]
    return AttackCell(record.get("attack") or attack, float(match["eps"]),
                      int(record["severity"]), match["mode"] == "T", bool(match["all"]),
                      match["surrogate"], record.get("loss"))
