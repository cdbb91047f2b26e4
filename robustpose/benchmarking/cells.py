"""Benchmark cells: one (corruption, severity) evaluation each; the clean cell is ('clean', 0).

Parsing of the user's ``--corruptions`` / ``--severities`` choices and the split of the
cell list across shards (``--shard i/n`` or torchrun's RANK / WORLD_SIZE).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

# One grammar for every command (robustpose corrupt reads the same); re-exported here.
from robustpose.corruptions.selection import parse_corruptions, parse_severities  # noqa: F401

CLEAN = "clean"


@dataclass(frozen=True, order=True)
class Cell:
    """One benchmark cell. ``severity`` is 0 for the clean cell."""

    corruption: str
    severity: int

    @property
    def is_clean(self) -> bool:
        return self.corruption == CLEAN

    @property
    def label(self) -> str:
        return CLEAN if self.is_clean else f"{self.corruption}/{self.severity}"

    def to_json(self) -> dict:
        """The ``corruption`` / ``severity`` fields of the cell's record."""
        return {"corruption": self.corruption, "severity": int(self.severity)}

    @classmethod
    def from_json(cls, record: dict) -> "Cell":
        """The cell a record (or its ``to_json`` fields) was written for."""
        return cls(record["corruption"], int(record["severity"]))


def build_cells(corruptions: Sequence[str], severities: Sequence[int],
                include_clean: bool = True) -> list[Cell]:
    """The clean cell first, then corruption-major order (every severity of one corruption)."""
    cells = [Cell(CLEAN, 0)] if include_clean else []
    cells += [Cell(name, int(sev)) for name in corruptions for sev in severities]
    return cells


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' (0-based i) -> (i, n); None -> None."""
    if text is None:
        return None
    try:
        index, count = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ValueError(f"bad shard {text!r}: use i/n, e.g. 0/2") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"bad shard {text!r}: need 0 <= i < n")
    return index, count


def shard_from_env() -> tuple[int, int] | None:
    """torchrun's RANK / WORLD_SIZE (when WORLD_SIZE > 1) as a shard."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    return int(os.environ.get("RANK", "0")), world


def select_shard(cells: Sequence[Cell], index: int, count: int) -> list[Cell]:
    """Round-robin split of ``cells`` (so every shard gets a mix of cheap and costly ones)."""
    return [cell for i, cell in enumerate(cells) if i % count == index]
