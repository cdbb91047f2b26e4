"""Reading ground-truth and prediction files with one-line errors naming the file.

Every check here raises ``ValueError`` (or ``FileNotFoundError``) whose message starts
with the file path and says what is wrong and where (entry index, image id).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def read_json(path: str | Path, what: str = "file") -> Any:
    """Load a JSON file; missing / unreadable / malformed -> one-line error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 JSON text file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None


def finite_numbers(values: Any, path: str | Path, where: str, what: str,
                   length: int | None = None, stride: int | None = None) -> np.ndarray:
    """A list of numbers as float64, checking its length and that every value is finite.

    Raises ``ValueError('<path>: <where>: ...')`` for non-numbers, a wrong length, NaN or inf.
    ``stride`` (3 for x, y, score triplets; 2 for x, y) names the bad keypoint and field.
    """
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{path}: {where}: {what} must be a list of numbers, "
                         f"got {type(values).__name__}")
    flat: list[Any] = []
    for v in values:
        flat.extend(v if isinstance(v, (list, tuple)) else [v])
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in flat):
        raise ValueError(f"{path}: {where}: {what} contains a non-number "
                         "(null, string or nested value)")
    if length is not None and len(flat) != length:
        raise ValueError(f"{path}: {where}: {what} has {len(flat)} values, expected {length}")
    arr = np.asarray(flat, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        kind = "NaN" if math.isnan(arr[first]) else "inf"
        at = f"position {first}"
        if stride in (2, 3):
            at = f"keypoint {first // stride} {('x', 'y', 'score')[first % stride]}"
        raise ValueError(f"{path}: {where}: {what} has {int(bad.sum())} non-finite value(s) "
                         f"({kind} at {at})")
    return arr


def check_finite_array(arr: np.ndarray, source: str, what: str,
                       ids: np.ndarray | None = None) -> None:
    """Raise one ``ValueError`` when ``arr`` (N, ...) has NaN/inf, naming the first bad row."""
    arr = np.asarray(arr, dtype=np.float64)
    bad_rows = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1) if len(arr) else np.zeros(0, bool)
    if bad_rows.any():
        row = int(np.flatnonzero(bad_rows)[0])
        ident = f" (image_id {ids[row]!r})" if ids is not None and len(ids) > row else ""
        raise ValueError(f"{source}: {what} of {int(bad_rows.sum())} prediction(s) are NaN/inf; "
                         f"first at row {row}{ident}")


def as_list_of_dicts(data: Any, path: str | Path, what: str = "results") -> list[dict]:
    """Check that a JSON value is a list of objects (a COCO results file)."""
    if not isinstance(data, list):
        raise ValueError(f"{path}: {what} must be a JSON list of objects, "
                         f"got {type(data).__name__}")
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: entry {i}: expected an object, got {type(entry).__name__}")
    return data
