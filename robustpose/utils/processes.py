"""Worker processes that die with their parent, and SIGTERM as an interruption.

A DataLoader worker whose main process is killed by pid (a batch scheduler's SIGKILL or
SIGTERM) is not told: it can stay blocked forever as an orphan holding its memory.
:func:`loader_worker_options` gives every DataLoader the project builds a
``worker_init_fn`` that ties the worker's life to the main process:

- Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so the kernel kills the worker the moment
  its parent exits, however it exits;
- everywhere (and as a fallback): a daemon thread that checks once per
  :data:`PARENT_POLL_S` seconds whether the worker was re-parented or the main process is
  gone, and then exits the worker at once.

PR_SET_PDEATHSIG fires when the *thread* that started the worker ends; DataLoader workers
are started by the thread iterating the loader, which holds the iterator until the
workers are shut down, so this is the thread that should outlive them anyway.

:func:`sigterm_raises` (used by ``robustpose <command>``) turns SIGTERM in the main
process into :class:`Terminated` (a ``KeyboardInterrupt``), so a run stops as on Ctrl-C:
the DataLoader iterators shut their workers down, nothing half-done is written and the
CLI exits with status 143 after one line.
"""
from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["PARENT_POLL_S", "Terminated", "die_with_parent", "loader_worker_options",
           "sigterm_raises"]

#: seconds between two checks of the fallback watcher thread
PARENT_POLL_S = 1.0
#: exit status of a worker that found its parent gone (nobody reads it; shows in logs)
ORPHAN_EXIT_STATUS = 70
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived in the main process (see :func:`sigterm_raises`)."""

    signum = signal.SIGTERM


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _set_parent_death_signal() -> bool:
    """``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux; False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc symbol (musl builds without prctl, ...)
        return False


def _watch_parent(main_pid: int, parent_pid: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent_pid or not _pid_alive(main_pid):
            os._exit(ORPHAN_EXIT_STATUS)  # no cleanup: the process that needed it is gone


def die_with_parent(main_pid: int, interval: float = PARENT_POLL_S) -> None:
    """In a child process: make sure it ends when the process ``main_pid`` does.

    Sets the parent-death signal (Linux), exits at once when ``main_pid`` is already gone
    (it died between the fork and this call) and starts the fallback watcher thread.
    ``main_pid`` may differ from the direct parent (a forkserver start method)."""
    _set_parent_death_signal()
    if not _pid_alive(main_pid):
        os._exit(ORPHAN_EXIT_STATUS)
    watcher = threading.Thread(target=_watch_parent, args=(main_pid, os.getppid(), interval),
                               name="robustpose-parent-watch", daemon=True)
    watcher.start()


def _init_worker(main_pid: int, then: Callable[[int], None] | None, worker_id: int) -> None:
    die_with_parent(main_pid)
    # A forked worker inherits the main process's SIGTERM handler; the DataLoader stops a
    # slow worker with SIGTERM, which must simply end it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if then is not None:
        then(worker_id)


def loader_worker_options(num_workers: int,
                          worker_init_fn: Callable[[int], None] | None = None) -> dict:
    """Keyword arguments for ``torch.utils.data.DataLoader`` whose workers die with the
    calling process: ``{'worker_init_fn': ...}`` (chaining ``worker_init_fn``), or ``{}``
    with no workers. Picklable, so any multiprocessing start method works.

    >>> loader_worker_options(0)
    {}
    >>> sorted(loader_worker_options(2))
    ['worker_init_fn']
    """
    if int(num_workers) <= 0:
        return {} if worker_init_fn is None else {"worker_init_fn": worker_init_fn}
    return {"worker_init_fn": functools.partial(_init_worker, os.getpid(), worker_init_fn)}


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside: SIGTERM in this process raises :class:`Terminated`.

    Installed only from the main thread and only over the default handler (an embedding
    program's own handler is left alone). A child forked meanwhile that receives SIGTERM
    (e.g. a multiprocessing pool worker being terminated) dies of it as by default."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # an inherited copy in a forked child: default action
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated(f"terminated by signal {signum} (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
