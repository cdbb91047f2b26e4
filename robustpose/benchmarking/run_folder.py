"""The run folder of a benchmark as one object: settings, per-shard stores, records, reports.

A run folder holds ``run.json`` (the run's settings; a rerun with other settings is
refused), one results store per shard (``results.jsonl``, or ``results.shard-I-of-N.jsonl``)
with one record per finished cell, and the reports (``summary.json``, ``table.md``,
``table.csv``, the PNGs). A rerun skips every cell already in any store of the folder, so
a killed run resumes where it stopped; a cell interrupted half-way is simply evaluated
again (records are appended only once a cell is complete).

>>> folder = RunFolder("runs/x").claim(settings)         # doctest: +SKIP
>>> todo = folder.todo(cells, shard)                    # doctest: +SKIP
>>> folder.append(record)                               # doctest: +SKIP
>>> card = folder.finalize()                            # doctest: +SKIP

:meth:`RunFolder.claim` is the single way in for a command that writes: it takes an
exclusive lock on this shard's store (``results.jsonl.lock``, or
``results.shard-I-of-N.jsonl.lock``) for the folder object's lifetime (until
:meth:`RunFolder.close`, the end of a ``with`` block, or the process's exit), so a second
process on the same ``--out`` and shard is refused at once with one line naming the
holder's pid; a different ``--shard`` runs beside it. Commands other than ``benchmark``
(attacks, stability) reuse the folder with their own settings and cells.

The lock is a POSIX record lock (``fcntl.lockf``), not ``flock``: a forked DataLoader
worker inherits an ``flock`` lock and would keep the folder locked after its main process
was killed; a record lock belongs to the process alone and goes with it however it ends.
"""
from __future__ import annotations

import json
import os
import socket
import weakref
from pathlib import Path
from typing import Any, Sequence

from robustpose.benchmarking.cells import Cell, select_shard
from robustpose.utils.io import atomic_write_text
from robustpose.utils.locks import (acquire_lock as _acquire, holder_text as _holder_text,
                                    lock_holder, lock_key as _key, now_text as _now,
                                    release_locks as _release_locks, short_lock)

RUN_FILE = "run.json"
#: the settings that must agree for a rerun to add to a folder
CLAIM_KEYS = ("model", "dataset", "conventions")
#: content identities that must agree too: the model's (``model_info.identity``, from
#: :func:`~robustpose.benchmarking.loading.resolve_adapter`) and the input files' hashes
#: (``annotation_file`` and every path in ``input_files``). A run.json written before they
#: were recorded adopts them on its next claim.
IDENTITY_KEYS = ("model_identity", "input_hashes")


class RunFolder:
    """One run folder at ``path``: claim it, append cells to this shard's store, report.

    Records are read from disk once and cached; :meth:`append` invalidates the cache and
    :meth:`refresh` re-reads explicitly (another process's shard may have written).
    A claimed folder holds its shard's lock until :meth:`close` (also a context manager).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._settings: dict | None = None
        self._records: list[dict] | None = None
        self._store: Any = None     # this process's ResultsStore, set by claim()
        self._locks: list[str] = []  # lock files this object holds (released by close())
        self._release = weakref.finalize(self, _release_locks, self._locks)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the lock ------------------------------------------------------------------
    def lock_path(self, shard: tuple[int, int] | None = None) -> Path:
        """The lock file of one shard's store (``<store file name>.lock``)."""
        store = self.store_path(shard)
        return store.with_name(store.name + ".lock")

    def close(self) -> None:
        """Release this object's lock (the store stays as it is); claim() again to write."""
        _release_locks(self._locks)
        self._store = None

    def _lock(self, shard: tuple[int, int] | None) -> None:
        lock = self.lock_path(shard)
        if _key(lock) in self._locks:
            return
        label = None if shard is None or shard[1] == 1 else f"{shard[0]}/{shard[1]}"
        if not _acquire(lock, {"pid": os.getpid(), "host": socket.gethostname(),
                               "shard": label, "since": _now()}):
            holder = _holder_text(lock)
            other = " (a different --shard may run beside it)" if label else ""
            raise ValueError(f"{self.path}: in use by {holder}, writing "
                             f"{self.store_path(shard).name}; wait for it to end or use "
                             f"another --out{other}")
        self._locks.append(_key(lock))

    # -- settings ------------------------------------------------------------------
    @property
    def settings_file(self) -> Path:
        return self.path / RUN_FILE

    def claim(self, settings: dict, shard: tuple[int, int] | None = None) -> "RunFolder":
        """Lock this shard's store, write ``run.json`` on the first run; refuse a rerun
        whose settings differ.

        ``shard`` (i, n) picks this process's results store. Returns ``self``. Raises a
        one-line ValueError naming the holder's pid when another process holds the lock.
        """
        path = self.settings_file
        settings = json.loads(json.dumps(settings))  # as run.json gives it back (lists, str keys)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock(shard)  # before run.json: two first runs must not both write it
        try:
            settings = _with_identities(settings)
            # run.json is rewritten after creation (identity adoption, add_requested) while
            # each shard holds only its own store lock: read-check-write under the folder's
            # short lock, so two shards starting at once never overwrite each other's write
            with self._settings_lock():
                if path.exists():
                    old = self._read_settings()
                    self._check_rerun(old, settings)
                    adopt = {k: settings[k] for k in IDENTITY_KEYS
                             if k not in old and k in settings}
                    if adopt:  # a folder from before identities were recorded
                        old = {**old, **adopt}
                        atomic_write_text(path, json.dumps(old, indent=2, sort_keys=True))
                    self._settings = old
                else:
                    atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True))
                    self._settings = settings
        except BaseException:
            self.close()
            raise
        from robustpose.evaluation import ResultsStore

        self._store = ResultsStore(self.store_path(shard))
        return self

    def _check_rerun(self, old: dict, settings: dict) -> None:
        """Refuse a rerun whose settings or identities differ from the folder's (one line
        naming the first difference), or whose model has no identity to compare."""
        from robustpose.benchmarking.identity import is_unknown

        diff = [k for k in CLAIM_KEYS if old.get(k) != settings.get(k)]
        if not diff:
            if is_unknown(old.get("model_identity")) or is_unknown(settings.get("model_identity")):
                raise ValueError(f"{self.path}: holds a run of a Python callable with no "
                                 "identity, so a rerun cannot be told from another model; "
                                 "give model_identity='<version>' (the same on every run of "
                                 "this model) or use another out")
            diff = [k for k in IDENTITY_KEYS if k in old and old[k] != settings.get(k)]
        if diff:
            where, was, asked = _first_difference(old.get(diff[0]), settings.get(diff[0]),
                                                  diff[0])
            raise ValueError(f"{self.path}: holds a run with other {', '.join(diff)} "
                             f"({where} {was!r}, asked {asked!r}); use another --out")

    def add_requested(self, **axes: Sequence) -> None:
        """Add this run's requested values (``corruptions=...``, ``severities=...``) to the
        folder's ``run.json``, so the card's mPC covers every cell any run of the folder
        asked for (a corruption added on a rerun counts, or its absence is flagged as
        missing), never just the first run's set. Call after :meth:`claim`."""
        with self._settings_lock():  # read the file, not the cache: another shard may
            settings = self._read_settings()  # have added its request since our claim
            changed = False
            for key, values in axes.items():
                old = list(settings.get(key) or [])
                new = old + [v for v in values if v not in old]
                if key == "severities":
                    new = sorted(new)
                if new != old:
                    settings[key], changed = new, True
            if changed:
                atomic_write_text(self.settings_file,
                                  json.dumps(settings, indent=2, sort_keys=True))
            self._settings = settings

    def _settings_lock(self) -> Any:
        """The folder's short lock (``run.json.lock``) around a read-modify-write of
        ``run.json``; every shard's process takes it, briefly."""
        return short_lock(self.path / (RUN_FILE + ".lock"))

    @property
    def settings(self) -> dict:
        """The folder's ``run.json`` (FileNotFoundError when it is not a run folder)."""
        if self._settings is None:
            if not self.settings_file.is_file():
                raise FileNotFoundError(f"{self.path}: not a benchmark run folder "
                                        f"(no {RUN_FILE})")
            self._settings = self._read_settings()
        return self._settings

    def _read_settings(self) -> dict:
        try:
            return json.loads(self.settings_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ValueError(f"{self.settings_file}: unreadable run settings; "
                             "use another --out") from None

    # -- stores and records --------------------------------------------------------
    def store_path(self, shard: tuple[int, int] | None = None) -> Path:
        """The results store of one shard (``results.jsonl`` when unsharded)."""
        if shard is None or shard[1] == 1:
            return self.path / "results.jsonl"
        return self.path / f"results.shard-{shard[0]}-of-{shard[1]}.jsonl"

    def store_paths(self) -> list[Path]:
        """Every results store in the folder (all shards)."""
        return sorted(self.path.glob("results*.jsonl"))

    def records(self) -> list[dict]:
        """The run's cell records, every shard merged, one per cell (cached).

        Only records of the folder's model and dataset count; conflicting duplicates
        across shards raise (:meth:`ResultsStore.merge`)."""
        if self._records is None:
            from robustpose.evaluation import ResultsStore

            paths = self.store_paths()
            merged = ResultsStore.merge(paths) if paths else []
            model, dataset = self.settings.get("model"), self.settings.get("dataset")
            self._records = [r for r in merged
                             if r["model"] == model and r["dataset"] == dataset]
        return self._records

    def refresh(self) -> "RunFolder":
        """Forget the cached records (the next :meth:`records` re-reads every store)."""
        self._records = None
        return self

    def done_keys(self) -> set[tuple[str, int]]:
        """``(corruption, severity)`` of every finished cell, all shards."""
        return {(r["corruption"], int(r["severity"])) for r in self.records()}

    def todo(self, cells: Sequence[Cell], shard: tuple[int, int] | None = None) -> list[Cell]:
        """This shard's cells of ``cells`` not finished yet (in order)."""
        mine = select_shard(cells, *shard) if shard else list(cells)
        done = self.done_keys()
        return [c for c in mine if (c.corruption, c.severity) not in done]

    def is_complete(self, cells: Sequence[Cell]) -> bool:
        done = self.done_keys()
        return all((c.corruption, c.severity) in done for c in cells)

    def append(self, record: dict) -> None:
        """Append one finished cell to this process's store (one write + fsync)."""
        if self._store is None:
            raise RuntimeError(f"{self}: claim() the folder before appending")
        self._store.append(record)
        self._records = None

    # -- reports -------------------------------------------------------------------
    def card(self) -> dict:
        """The robustness card of the records so far (nothing written)."""
        from robustpose.benchmarking.summary import build_card

        return build_card(self.records(), self.settings)

    def finalize(self, plots: bool = True) -> dict:
        """Write ``summary.json``, ``table.md``, ``table.csv`` (and the PNGs) from the
        records; returns the card."""
        from robustpose.benchmarking.summary import write_card
        from robustpose.reports import write_plots, write_tables

        if not self.records():
            raise ValueError(f"{self.path}: no finished cell in the results store yet")
        card = self.card()
        write_card(card, self.path)
        write_tables(card, self.path)
        if plots:
            write_plots(card, self.path)
        return card


def _with_identities(settings: dict) -> dict:
    """``settings`` plus ``model_identity`` (lifted from ``model_info.identity``) and
    ``input_hashes``: the content hash of ``annotation_file`` and of every file in
    ``input_files`` ({label: path}; None entries skipped)."""
    from robustpose.benchmarking.identity import file_sha256

    out = dict(settings)
    identity = (settings.get("model_info") or {}).get("identity")
    if identity is not None:
        out["model_identity"] = identity
    files = {"annotation_file": settings.get("annotation_file"),
             **(settings.get("input_files") or {})}
    hashes = {k: file_sha256(v) for k, v in files.items() if v and Path(v).is_file()}
    if hashes:
        out["input_hashes"] = hashes
    return out


def _first_difference(old: Any, new: Any, where: str) -> tuple[str, Any, Any]:
    """(dotted key, old value, new value) of the first difference of two settings values
    (JSON round trip first: run.json holds lists where the settings may hold tuples)."""
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{where}.{key}")
    return where, old, new


def finalize_run(run_dir: str | os.PathLike, plots: bool = True) -> dict:
    """Rebuild ``summary.json``, ``table.md``, ``table.csv`` and the PNGs from the store
    (what ``robustpose report RUN_DIR`` does)."""
    return RunFolder(run_dir).finalize(plots=plots)
