"""benchmarks/gpu_check.py, the GPU check, without a GPU: it refuses what it cannot run
with one clear line, and a part that fails or hangs is reported while the exit code says so."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_part_is_refused(gpu_check, capsys):
    with pytest.raises(SystemExit) as info:
        gpu_check.main(["--device", "cpu", "--parts", "tests,warp"])
    assert info.value.code == 2 and "unknown part(s) warp" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_without_cuda_one_line_says_so_and_the_exit_code_is_not_zero(gpu_check, capsys):
    assert gpu_check.main([]) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 1 and "torch.cuda is NOT available" in lines[0]


def test_a_part_over_its_limit_is_ended_and_reported(gpu_check, capfd):
    """The tests part (pytest in a subprocess) under a 0.6 s limit: killed, named, exit 1."""
    assert gpu_check.main(["--device", "cpu", "--quick", "--parts", "tests",
                           "--limit-scale", "0.005"]) == 1
    out = capfd.readouterr().out
    assert "gpu_check: FAILED tests: over its 1 s limit" in out
    assert "0/1 parts ok" in out and "failed: tests" in out
