"""Benchmark cells: one (corruption, severity) evaluation each; the clean cell is ('clean', 0).

Parsing of the user's ``--corruptions`` / ``--severities`` choices and the split of the
cell list across shards (``--shard i/n`` or torchrun's RANK / WORLD_SIZE).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

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


def parse_corruptions(choice: str | Sequence[str] | None) -> list[str]:
    """'benchmark' (the paper's 15), 'all' (19), 'validation' (4), a family name
    ('noise', 'blur', 'weather', 'digital'), 'none', or comma-separated names."""
    if choice is None:
        choice = "benchmark"
    if isinstance(choice, str):
        items = [part.strip() for part in choice.split(",") if part.strip()]
    else:
        items = [str(part) for part in choice]
    subsets = {"benchmark": "common", "common": "common", "all": "all",
               "validation": "validation", "noise": "noise", "blur": "blur",
               "weather": "weather", "digital": "digital"}
    names: list[str] = []
    if all(item == "none" for item in items):
        return names
    from robustpose.corruptions import get_corruption_names

    known = list(get_corruption_names("all"))
    for item in items:
        if item == "none":
            continue
        if item in subsets:
            new = list(get_corruption_names(subsets[item]))
        elif item in known:
            new = [item]
        else:
            raise ValueError(f"unknown corruption {item!r}; choose from benchmark, all, "
                             f"validation, a family or names: {', '.join(known)}")
        names.extend(n for n in new if n not in names)
    return names


def parse_severities(choice: str | int | Iterable[int] | None) -> list[int]:
    """'1-5', '3', '1,3,5' or a list of ints -> sorted unique severities in 1..5."""
    if choice is None:
        return [1, 2, 3, 4, 5]
    if isinstance(choice, int):
        values = [choice]
    elif isinstance(choice, str):
        values = []
        for part in choice.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                if "-" in part:
                    low, high = (int(p) for p in part.split("-", 1))
                    values.extend(range(low, high + 1))
                else:
                    values.append(int(part))
            except ValueError:
                raise ValueError(f"bad severities {choice!r}: use e.g. 1-5, 3 or 1,3,5") from None
    else:
        values = [int(v) for v in choice]
    bad = [v for v in values if not 1 <= v <= 5]
    if bad or not values:
        raise ValueError(f"severities must lie in 1..5, got {choice!r}")
    return sorted(set(values))


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
