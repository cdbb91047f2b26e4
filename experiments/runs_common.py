"""What the miniature drivers share: run a CLI step as a child process and count its CPU
time, keep per-run CPU totals in ``cpu.json``, and parse ``--runs name:seed,...``."""
from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[1]


def tool(name: str) -> str:
    """A console script installed beside this Python (``robustpose``)."""
    return str(Path(sys.executable).parent / name)


def cpu_seconds() -> float:
    """User + sys CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cmd: list[str], env: dict) -> float:
    """Run ``cmd`` (output through) from the repository root; its CPU seconds. A failing
    step stops the driver with the command in the message."""
    print("$", " ".join(cmd), flush=True)
    before = cpu_seconds()
    done = subprocess.run(cmd, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"failed (exit {done.returncode}): {' '.join(cmd)}")
    return cpu_seconds() - before


def add_cpu(run_dir: Path, key: str, seconds: float) -> None:
    """Add ``seconds`` to ``run_dir/cpu.json[key]`` (an interrupted step adds on rerun)."""
    path = run_dir / "cpu.json"
    cpu = json.loads(path.read_text()) if path.is_file() else {}
    cpu[key] = cpu.get(key, 0.0) + seconds
    path.write_text(json.dumps(cpu, indent=1) + "\n")


def parse_runs(text: str | None, table: Iterable[tuple[str, Iterable[int]]]) -> list[tuple[str, int]]:
    """``'a:0,b:1'`` -> [('a', 0), ('b', 1)]; empty -> every (name, seed) of ``table``; an
    unknown name stops the driver naming the known ones."""
    table = [(name, tuple(seeds)) for name, seeds in table]
    if not text:
        return [(name, s) for name, seeds in table for s in seeds]
    known = [name for name, _ in table]
    runs = []
    for item in text.split(","):
        name, _, seed = item.partition(":")
        if name not in known:
            raise SystemExit(f"unknown run {name!r}; choose from {', '.join(known)}")
        runs.append((name, int(seed or 0)))
    return runs
