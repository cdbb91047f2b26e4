"""Process-exclusive file locks that go with their process however it ends.

A POSIX record lock (``fcntl.lockf``), not ``flock``: a forked DataLoader worker inherits
an ``flock`` lock and would keep the file locked after its main process was killed; a
record lock belongs to the process alone. The lock file holds its holder (pid, host, start
time, and what the caller adds) so a refused process can name it. Used by the benchmark's
run folders and the trainer's output folders.
"""
from __future__ import annotations

import errno
import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # not POSIX (Windows): no lock, one process per folder is the user's care
    fcntl = None  # type: ignore[assignment]


# -- process-wide lock table -----------------------------------------------------------
#: lock file -> [descriptor, claims] held by THIS process. POSIX record locks are per
#: process: a second claim in the same process shares the first one's lock, and the
#: lock file must never be opened and closed elsewhere in the process while it is held
#: (closing any descriptor of the file drops the process's lock on it).
_HELD: dict[str, list[int]] = {}


def lock_key(lock: Path) -> str:
    """One name per lock file (``runs/x`` and ``/abs/runs/x`` are the same lock)."""
    return os.path.realpath(lock)


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def acquire_lock(lock: Path, holder: dict) -> bool:
    """Take (or share, within this process) the exclusive lock on ``lock``; write
    ``holder`` into it. False when another process holds it."""
    key = lock_key(lock)
    if key in _HELD:
        _HELD[key][1] += 1
        return True
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    if fcntl is not None:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)  # this process held no lock on the file: closing drops nothing
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
    data = (json.dumps(holder, sort_keys=True) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    _HELD[key] = [fd, 1]
    return True


def release_locks(held: list[str]) -> None:
    """Give back every lock in ``held`` (emptied); the last claim of one closes it."""
    while held:
        key = held.pop()
        entry = _HELD.get(key)
        if entry is None:
            continue
        entry[1] -= 1
        if entry[1] <= 0:
            del _HELD[key]
            os.close(entry[0])  # closing drops the record lock


def lock_holder(lock: str | os.PathLike) -> dict | None:
    """What a lock file says of its holder (``pid``, ``host``, ``shard``, ``since``), or
    None when it says nothing readable. Safe while this process holds the lock."""
    key = lock_key(Path(lock))
    if key in _HELD:
        data = os.pread(_HELD[key][0], 4096, 0)
    else:
        try:
            data = Path(lock).read_bytes()
        except OSError:
            return None
    try:
        holder = json.loads(data.decode("utf-8"))
    except ValueError:  # being written (the holder just took it) or damaged
        return None
    return holder if isinstance(holder, dict) else None


def holder_text(lock: Path, wait_s: float = 1.0) -> str:
    """'pid 123 (shard 0/2) on host, since ...': the holder of a lock another process
    holds. A holder that has just taken the lock may not have written itself yet: retried
    briefly."""
    deadline = time.monotonic() + wait_s
    holder = lock_holder(lock)
    while (holder is None or holder.get("pid") is None) and time.monotonic() < deadline:
        time.sleep(0.05)
        holder = lock_holder(lock)
    if not holder or holder.get("pid") is None:
        return "another process (pid unknown)"
    shard = f" (shard {holder['shard']})" if holder.get("shard") else ""
    host = f" on {holder['host']}" if holder.get("host") else ""
    since = f", since {holder['since']}" if holder.get("since") else ""
    return f"pid {holder['pid']}{shard}{host}{since}"


# -- short locks around a read-modify-write ----------------------------------------------
#: one in-process lock per lock file: POSIX record locks do not exclude the threads of one
#: process, and a second descriptor closed by one thread would drop the other's lock
_SHORT: dict[str, threading.Lock] = {}
_SHORT_GUARD = threading.Lock()


@contextmanager
def short_lock(lock: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold an exclusive lock on ``lock`` for a brief read-modify-write (waits for it).

    Unlike :func:`acquire_lock` it blocks: two processes that both rewrite one small file
    (two shards adding to one ``run.json``) take turns instead of one being refused. The
    lock goes with its process however it ends, like every lock here. Not re-entrant.
    Raises a one-line ValueError after ``timeout_s`` (a holder stuck inside its write)."""
    key = lock_key(lock)
    with _SHORT_GUARD:
        local = _SHORT.setdefault(key, threading.Lock())
    if not local.acquire(timeout=timeout_s):
        raise ValueError(f"{lock}: held by another thread of this process for {timeout_s:g} s")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            deadline = time.monotonic() + timeout_s
            while fcntl is not None:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EAGAIN):
                        raise
                    if time.monotonic() > deadline:
                        raise ValueError(f"{lock}: held by another process for more than "
                                         f"{timeout_s:g} s; is one stuck?") from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # drops the record lock
    finally:
        local.release()
