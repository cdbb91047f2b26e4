"""The resumable results store: one JSON line per (model, dataset, corruption, severity) cell.

Each record holds the cell key, ``metrics`` (every number of the metric) and
``conventions`` (boxes gt/det, flip, shift, thresholds, seed, ...), plus anything else the
writer adds. ``append`` writes the whole line with ONE ``os.write`` on an ``O_APPEND``
descriptor, then ``fsync``: a crash (even SIGKILL) leaves either the complete line or a
torn last line without its newline. A torn last line is ignored by readers and cut off
before the next append, so that cell is simply recomputed. One writer per file (the run
folder's lock sees to it); parallel shards write their own files and
:meth:`ResultsStore.merge` joins them. Two records of one cell in one file are collapsed
when identical and refused when they differ (two writers raced), unless the later one was
appended with ``overwrite=True`` (it carries ``replaces: true`` and wins).
"""
from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from robustpose.utils.io import atomic_write_text

CellKey = tuple[str, str, str, int]
KEY_FIELDS = ("model", "dataset", "corruption", "severity")
#: fields that may differ between two runs of the same cell without being a conflict
VOLATILE_FIELDS = ("recorded_at", "elapsed_s", "host", "pid", "shard", "replaces")


def _jsonable(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars/arrays -> Python, so every line is strict JSON."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cell_key(record: Mapping[str, Any]) -> CellKey:
    """``(model, dataset, corruption, severity)`` of a record, checked."""
    missing = [f for f in KEY_FIELDS if f not in record]
    if missing:
        raise ValueError(f"results record lacks {', '.join(missing)}")
    model, dataset, corruption = (str(record[f]) for f in KEY_FIELDS[:3])
    severity = record["severity"]
    if isinstance(severity, bool) or not isinstance(severity, int) or severity < 0:
        raise ValueError(f"results record {model}/{dataset}/{corruption}: severity must be an "
                         f"int >= 0, got {severity!r}")
    if (corruption == "clean") != (severity == 0):
        raise ValueError(f"results record {model}/{dataset}: the clean cell is "
                         f"('clean', 0); got ({corruption!r}, {severity})")
    return model, dataset, corruption, severity


def _comparable(record: Mapping[str, Any]) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE_FIELDS}


class ResultsStore:
    """JSON-lines store of benchmark cells at ``path`` (created on first append)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.torn_tail = False      # set by records() when a torn last line was ignored
        self._keys: set[CellKey] | None = None

    # -- reading -------------------------------------------------------------------
    def records(self) -> list[dict]:
        """Every complete record in file order (a torn last line is skipped)."""
        return [rec for _, rec in self._numbered()]

    def _numbered(self) -> list[tuple[int, dict]]:
        """(line number, record) of every complete record, in file order."""
        self.torn_tail = False
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        out = []
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            is_last_unterminated = lineno == len(lines)  # no "\n" after it
            try:
                rec = json.loads(line.decode("utf-8"))
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
                cell_key(rec)
            except (ValueError, UnicodeDecodeError) as exc:
                if is_last_unterminated:
                    self.torn_tail = True   # interrupted append: that cell is not done
                    continue
                raise ValueError(f"{self.path}: line {lineno}: corrupt record "
                                 f"({str(exc).splitlines()[0][:80]})") from None
            out.append((lineno, rec))
        return out

    def done_keys(self) -> set[CellKey]:
        """Keys of the finished cells (re-read from disk)."""
        self._keys = {cell_key(r) for r in self.records()}
        return set(self._keys)

    def is_done(self, key: CellKey | Mapping[str, Any]) -> bool:
        """Whether a cell (key tuple or record-like mapping) is already stored."""
        if isinstance(key, Mapping):
            key = cell_key(key)
        model, dataset, corruption, severity = key
        if self._keys is None:
            self.done_keys()
        return (str(model), str(dataset), str(corruption), int(severity)) in self._keys

    # -- writing -------------------------------------------------------------------
    def _cut_torn_tail(self) -> None:
        """Drop bytes after the last newline (left by a killed writer)."""
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        if size == 0:
            return
        with open(self.path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            data = self.path.read_bytes()
            cut = data.rfind(b"\n") + 1
            fh.truncate(cut)
            fh.flush()
            os.fsync(fh.fileno())

    def append(self, record: Mapping[str, Any], overwrite: bool = False) -> None:
        """Append one cell atomically (one write + fsync).

        Raises ValueError if the cell is already stored (a rerun should check
        :meth:`is_done` first) unless ``overwrite`` (the newer line then carries
        ``replaces: true`` and wins on read in :meth:`latest`).
        """
        key = cell_key(record)
        done = self.is_done(key)
        if done and not overwrite:
            raise ValueError(f"{self.path}: cell {'/'.join(map(str, key))} is already stored")
        rec = dict(_jsonable(dict(record)))
        if done:
            rec["replaces"] = True
        rec["severity"] = key[3]
        rec.setdefault("recorded_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        try:
            line = (json.dumps(rec, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
        except TypeError as exc:
            raise ValueError(f"{self.path}: cell {'/'.join(map(str, key))} is not JSON-serialisable "
                             f"({exc})") from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cut_torn_tail()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # never seen for small writes on local disks
                raise OSError(f"{self.path}: short write ({written} of {len(line)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)
        self._keys.add(key)

    # -- views ---------------------------------------------------------------------
    def latest(self) -> list[dict]:
        """One record per cell: identical duplicates collapse to the first, a record
        written with ``overwrite`` (``replaces: true``) replaces the earlier one, and two
        records of one cell that differ otherwise raise a one-line ValueError naming the
        lines (two processes wrote this store at once)."""
        by_key: dict[CellKey, tuple[int, dict]] = {}
        for lineno, rec in self._numbered():
            key = cell_key(rec)
            if key in by_key and not rec.get("replaces"):
                first, old = by_key[key]
                if _comparable(old) != _comparable(rec):
                    raise ValueError(f"{self.path}: conflicting records for cell "
                                     f"{'/'.join(map(str, key))} at lines {first} and "
                                     f"{lineno} (two runs wrote this store at once?); keep "
                                     "the right line or rerun that cell in a fresh --out")
                continue
            by_key[key] = (lineno, rec)
        return [rec for _, rec in by_key.values()]

    @staticmethod
    def merge(paths: Iterable[str | os.PathLike], out_path: str | os.PathLike | None = None) -> list[dict]:
        """Join shard stores: identical duplicates are kept once, conflicting ones raise
        (within one file too, :meth:`latest`).

        Two records of one cell conflict when they differ in anything but the volatile
        fields (time, host, pid, shard, elapsed). Returns the merged records (sorted by
        key) and, with ``out_path``, writes them there atomically as a new store.
        """
        merged: dict[CellKey, tuple[dict, Path]] = {}
        for p in paths:
            store = ResultsStore(p)
            if not store.path.exists():
                raise FileNotFoundError(f"{store.path}: results store not found")
            for rec in store.latest():
                key = cell_key(rec)
                if key in merged and _comparable(merged[key][0]) != _comparable(rec):
                    raise ValueError(f"conflicting results for cell {'/'.join(map(str, key))} "
                                     f"in {merged[key][1]} and {store.path}")
                merged.setdefault(key, (rec, store.path))
        records = [merged[k][0] for k in sorted(merged, key=lambda k: (k[0], k[1], k[2] != "clean", k[2], k[3]))]
        if out_path is not None:
            atomic_write_text(out_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        return records
