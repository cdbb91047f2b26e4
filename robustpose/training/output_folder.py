"""The training output folder: one writer at a time, and no fresh run on top of an old one.

``robustpose train`` writes ``checkpoint.pt``, ``best.pt``, ``log.csv`` and ``config.yaml``
into its output folder; ``test``, ``stability`` and ``attack --config`` load ``best.pt``
from it. Two runs on one folder would leave one run's checkpoint beside the other's config,
and a fresh run in a used folder would keep the old ``log.csv`` rows and the old
``best.pt``. So, like a benchmark run folder, the folder is locked for the run's lifetime
(``train.lock``: a POSIX record lock naming the holder's pid, gone with its process
however it ends), and a fresh run into a folder that holds run files is refused unless the
user says which of the two is meant: ``--resume`` (continue it) or ``--overwrite`` (start
afresh; the old run files are removed first).
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from robustpose.utils.locks import (acquire_lock, holder_text, lock_key, now_text,
                                    release_locks)

LOCK_FILE = "train.lock"
#: what a training run writes (and a later run must not mix with)
RUN_FILES = ("checkpoint.pt", "best.pt", "log.csv", "config.yaml", "tensorboard")


def run_files(output_dir: str | os.PathLike) -> list[str]:
    """The run files already in ``output_dir`` (names, in :data:`RUN_FILES` order)."""
    return [name for name in RUN_FILES if (Path(output_dir) / name).exists()]


def _remove(output_dir: Path, names: list[str]) -> None:
    for name in names:
        path = output_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


class OutputFolder:
    """The claimed output folder of one training run (a context manager; :meth:`close`
    releases the lock)."""

    def __init__(self, path: str | os.PathLike, held: list[str]) -> None:
        self.path = Path(path)
        self._held = held

    def close(self) -> None:
        release_locks(self._held)

    def __enter__(self) -> "OutputFolder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def claim_output_dir(output_dir: str | os.PathLike, *, resume: str | None = None,
                     overwrite: bool = False) -> OutputFolder:
    """Lock ``output_dir`` for this process and check that this run may write there.

    ``resume``: the ``--resume`` value (``'auto'`` = ``<output_dir>/checkpoint.pt`` when
    present, or a checkpoint path). Without ``resume`` or ``overwrite`` a folder that holds
    run files is refused; ``overwrite`` removes them; ``resume='auto'`` with no
    ``checkpoint.pt`` to continue starts afresh and removes the files of the run that never
    saved one (its ``log.csv`` rows and ``best.pt`` would otherwise outlive it).
    Raises a one-line ValueError naming the folder (and the holder's pid when locked).
    """
    if resume is not None and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: continue the run "
                         "in the output folder, or start afresh, not both")
    path = Path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    lock = path / LOCK_FILE
    if not acquire_lock(lock, {"pid": os.getpid(), "host": socket.gethostname(),
                               "command": "train", "since": now_text()}):
        raise ValueError(f"{path}: in use by {holder_text(lock)}, training; wait for it to "
                         "end or use another --out")
    held = [lock_key(lock)]
    try:
        found = run_files(path)
        if found and overwrite:
            _remove(path, found)
        elif found and resume is None:
            raise ValueError(f"{path}: holds an earlier training run ({', '.join(found)}); "
                             "continue it with --resume auto, start afresh with --overwrite, "
                             "or use another --out")
        elif found and resume == "auto" and "checkpoint.pt" not in found:
            _remove(path, found)  # nothing to continue: the run restarts from epoch 0
    except BaseException:
        release_locks(held)
        raise
    return OutputFolder(path, held)
