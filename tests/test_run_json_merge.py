"""run.json is rewritten after creation (``add_requested``, identity adoption) while each
shard holds only its own store lock: the rewrite is a read-modify-write of the file under
the folder's short lock (``run.json.lock``), so no shard's request is lost (issue 24)."""
from __future__ import annotations

import json
import multiprocessing
import time

import robustpose.benchmarking.run_folder as run_folder
from robustpose.benchmarking.run_folder import RunFolder

SETTINGS = {"model": "m", "dataset": "d", "conventions": {"seed": 0},
            "corruptions": ["gaussian_noise"], "severities": [1]}


def _requested(path):
    return json.loads((path / "run.json").read_text())["corruptions"]


def test_a_shard_adding_after_another_keeps_both_requests(tmp_path) -> None:
    """Shard 0 claimed before shard 1 added 'fog'; its own add must start from the file,
    not from the settings it cached at its claim."""
    first = RunFolder(tmp_path).claim(SETTINGS, (0, 2))
    second = RunFolder(tmp_path).claim(SETTINGS, (1, 2))
    second.add_requested(corruptions=["fog"])
    first.add_requested(corruptions=["snow"])
    assert _requested(tmp_path) == ["gaussian_noise", "fog", "snow"]
    assert first.settings["corruptions"] == ["gaussian_noise", "fog", "snow"]
    first.close(), second.close()


def _shard(path, index, name, start) -> None:
    """One shard process: claim, then add its own corruption; every write of run.json is
    slowed down so that two unlocked read-modify-writes would overlap."""
    write = run_folder.atomic_write_text

    def slow(target, text):
        time.sleep(0.3)
        write(target, text)

    run_folder.atomic_write_text = slow
    start.wait()
    folder = RunFolder(path).claim({**SETTINGS, "corruptions": [name]}, (index, 2))
    folder.add_requested(corruptions=[name])
    folder.close()


def test_two_shards_starting_at_once_merge_their_requests(tmp_path) -> None:
    ctx = multiprocessing.get_context("fork")
    for attempt in range(2):  # a fresh folder (both first), then one that exists
        start = ctx.Event()
        names = ("fog", "snow") if attempt == 0 else ("frost", "zoom_blur")
        procs = [ctx.Process(target=_shard, args=(tmp_path, i, n, start))
                 for i, n in enumerate(names)]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        assert set(names) <= set(_requested(tmp_path))
    assert sorted(_requested(tmp_path)) == ["fog", "frost", "snow", "zoom_blur"]
