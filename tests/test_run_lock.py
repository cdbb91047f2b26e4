"""Two processes on one run folder: the lock of a shard's store, conflicting duplicates.

A holder process (a plain Python child) claims a folder and waits; the test then claims the
same folder from this process or runs ``robustpose benchmark`` / ``report`` on it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from robustpose.benchmarking import RunFolder
from robustpose.benchmarking.run_folder import lock_holder
from robustpose.cli import main
from robustpose.evaluation import ResultsStore

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"model": "toy", "dataset": "toy-set", "metric": "AP", "metric_scale": 100.0,
            "conventions": {"flip_test": False}, "corruptions": ["snow"], "severities": [1]}

HOLDER = textwrap.dedent("""
    import json, os, sys, time
    from robustpose.benchmarking.run_folder import RunFolder
    folder, shard, fork = sys.argv[1], sys.argv[2], sys.argv[3] == "fork"
    shard = None if shard == "-" else tuple(int(p) for p in shard.split("/"))
    held = RunFolder(folder).claim(json.loads(sys.argv[4]), shard)
    child = 0
    if fork:  # like a DataLoader worker: inherits every descriptor, outlives a killed parent
        child = os.fork()
        if child == 0:
            time.sleep(60)
            os._exit(0)
    print("ready", child, flush=True)
    sys.stdin.read()  # hold the folder until the test closes stdin (or kills us)
""")


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


class Holder:
    """A child process holding ``folder`` (shard ``"i/n"`` or ``"-"``) until stopped."""

    def __init__(self, folder: Path, shard: str = "-", fork: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder), shard, "fork" if fork else "-",
             json.dumps(SETTINGS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=_env())
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "ready", self.proc.stderr.read()
        self.child = int(line[1])
        self.pid = self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def test_a_second_process_on_the_same_folder_is_refused_naming_the_holder(tmp_path):
    holder = Holder(tmp_path / "run")
    try:
        started = time.monotonic()
        with pytest.raises(ValueError) as err:
            RunFolder(tmp_path / "run").claim(SETTINGS)
        assert time.monotonic() - started < 5  # refused at once, not after a cell
        message = str(err.value)
        assert f"in use by pid {holder.pid}" in message and "\n" not in message
        assert "results.jsonl" in message and "another --out" in message
        assert lock_holder(tmp_path / "run" / "results.jsonl.lock")["pid"] == holder.pid
    finally:
        holder.stop()
    # the holder ended (its lock with it): the folder is free again
    with RunFolder(tmp_path / "run").claim(SETTINGS) as folder:
        assert lock_holder(folder.lock_path())["pid"] == os.getpid()


def test_different_shards_run_side_by_side_the_same_shard_does_not(tmp_path):
    holder = Holder(tmp_path, shard="0/2")
    try:
        other = RunFolder(tmp_path).claim(SETTINGS, shard=(1, 2))  # another shard: fine
        other.append({"model": "toy", "dataset": "toy-set", "corruption": "snow",
                      "severity": 1, "metric": "AP", "AP": 0.3, "metrics": {"AP": 0.3}})
        other.close()
        with pytest.raises(ValueError, match=rf"in use by pid {holder.pid} \(shard 0/2\)"):
            RunFolder(tmp_path).claim(SETTINGS, shard=(0, 2))
    finally:
        holder.stop()


def test_a_killed_holder_leaves_no_lock_even_with_a_forked_child_alive(tmp_path):
    holder = Holder(tmp_path, fork=True)
    try:
        with pytest.raises(ValueError, match=f"pid {holder.pid}"):
            RunFolder(tmp_path).claim(SETTINGS)
        holder.kill()  # SIGKILL: no cleanup ran; its forked child still runs
        os.kill(holder.child, 0)  # raises if the child were gone
        with RunFolder(tmp_path).claim(SETTINGS) as folder:  # the stale lock does not block
            assert lock_holder(folder.lock_path())["pid"] == os.getpid()
    finally:
        try:
            os.kill(holder.child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _refused(folder: Path) -> bool:
    """Whether another process is refused the folder (a holder that fails to start)."""
    proc = subprocess.run([sys.executable, "-c", HOLDER, str(folder), "-", "-",
                           json.dumps(SETTINGS)], input="", capture_output=True, text=True,
                          env=_env(), timeout=120)
    return proc.returncode != 0 and f"in use by pid {os.getpid()}" in proc.stderr


def test_claims_in_one_process_share_the_lock_and_close_releases_it(tmp_path, monkeypatch):
    first = RunFolder(tmp_path).claim(SETTINGS)
    monkeypatch.chdir(tmp_path.parent)  # the same folder by a relative name: the same lock
    second = RunFolder(tmp_path.name).claim(SETTINGS)  # one process: no race with itself
    first.close()
    assert _refused(tmp_path)  # the second claim still holds it
    second.close()
    holder = Holder(tmp_path)  # released: another process gets it
    holder.stop()
    folder = RunFolder(tmp_path).claim(SETTINGS)
    del folder  # garbage-collected: released too
    Holder(tmp_path).stop()


def _benchmark(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustpose", "benchmark", "--max-images", "2",
                           "--corruptions", "gaussian_noise", "--severities", "1",
                           "--workers", "0", "--no-progress", "--no-plots", "--out", str(out),
                           *extra], capture_output=True, text=True, env=_env(), timeout=300)


def test_benchmark_refuses_a_held_folder_and_shards_run_concurrently(tmp_path):
    first = _benchmark(tmp_path / "run")  # writes run.json with the benchmark's settings
    assert first.returncode == 0, first.stderr
    store = tmp_path / "run" / "results.jsonl"
    before = store.read_bytes()
    settings = json.loads((tmp_path / "run" / "run.json").read_text())
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run"), "-", "-",
                             json.dumps(settings)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert proc.stdout.readline().startswith("ready")
        second = _benchmark(tmp_path / "run")
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"in use by pid {proc.pid}" in lines[0], second.stderr
    assert store.read_bytes() == before  # nothing computed, nothing written

    shards = [subprocess.Popen([sys.executable, "-m", "robustpose", "benchmark",
                                "--max-images", "2", "--corruptions", "gaussian_noise",
                                "--severities", "1", "--workers", "0", "--no-progress",
                                "--no-plots", "--out", str(tmp_path / "sharded"),
                                "--shard", f"{i}/2"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_env())
              for i in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in shards]
    assert [code for code, _ in results] == [0, 0], results
    assert main(["report", str(tmp_path / "sharded"), "--no-plots"]) == 0
    ours = json.loads((tmp_path / "sharded" / "summary.json").read_text())
    ref = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (ours["clean"], ours["mPC"]) == (ref["clean"], ref["mPC"])


def _cell(ap: float, **extra) -> dict:
    return {"model": "toy", "dataset": "toy-set", "corruption": "clean", "severity": 0,
            "metric": "AP", "AP": ap, "metrics": {"AP": ap}, **extra}


def test_report_refuses_conflicting_duplicates_in_one_store(tmp_path, capsys):
    RunFolder(tmp_path).claim(SETTINGS).close()
    lines = [_cell(0.5, recorded_at="t1", pid=1), _cell(0.5, recorded_at="t2", pid=2),
             _cell(0.4, pid=3)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert main(["report", str(tmp_path), "--no-plots"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "conflicting records for cell toy/toy-set/clean/0 at lines 1 and 3" in err[0]
    # identical duplicates (volatile fields aside) collapse to one cell
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines[:2]))
    assert main(["report", str(tmp_path), "--no-plots"]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["clean"] == 50.0


def test_an_overwrite_replaces_the_cell_instead_of_conflicting(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(_cell(0.5))
    with pytest.raises(ValueError, match="already stored"):
        store.append(_cell(0.4))
    store.append(_cell(0.4), overwrite=True)
    assert [r["AP"] for r in ResultsStore(store.path).latest()] == [0.4]
    assert len(ResultsStore(store.path).records()) == 2
