"""Issue 24 item 3 (and 11's --device): a training output folder has one writer, and a
fresh run into a used folder is refused unless --resume or --overwrite says which is meant."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from robustpose.cli import main
from robustpose.training.output_folder import claim_output_dir

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny_coco.yaml"


def _used(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("log.csv", "best.pt", "config.yaml"):
        (folder / name).write_text("old run")
    return folder


def test_a_fresh_run_into_a_used_folder_is_refused(tmp_path):
    out = _used(tmp_path / "run")
    with pytest.raises(ValueError, match=r"run: holds an earlier training run \(best.pt, "
                                         r"log.csv, config.yaml\); continue it with --resume"):
        claim_output_dir(out)
    assert (out / "log.csv").read_text() == "old run"  # refused: nothing touched
    with claim_output_dir(out, overwrite=True):
        assert not (out / "log.csv").exists() and not (out / "best.pt").exists()
    with pytest.raises(ValueError, match="contradict"):
        claim_output_dir(out, resume="auto", overwrite=True)


def test_resume_auto_keeps_a_checkpointed_run_and_clears_one_without(tmp_path):
    out = _used(tmp_path / "run")
    (out / "checkpoint.pt").write_text("ckpt")
    claim_output_dir(out, resume="auto").close()
    assert (out / "log.csv").is_file() and (out / "checkpoint.pt").is_file()
    (out / "checkpoint.pt").unlink()  # a run killed before its first checkpoint
    claim_output_dir(out, resume="auto").close()
    assert not (out / "log.csv").exists() and not (out / "best.pt").exists()
    claim_output_dir(tmp_path / "fresh").close()  # a new folder needs no flag


def test_a_second_process_on_the_folder_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "run"
    code = ("import sys, time\nfrom robustpose.training.output_folder import claim_output_dir\n"
            f"f = claim_output_dir({str(out)!r})\nprint('ready', flush=True)\ntime.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(ValueError, match=rf"in use by pid {holder.pid}\b.*training"):
            claim_output_dir(out, resume="auto")
    finally:
        holder.kill()
        holder.wait()
    claim_output_dir(out, resume="auto").close()  # the lock went with the process


def test_train_command_refuses_before_any_work(data_root, tmp_path, capsys):
    out = _used(tmp_path / "run")
    code = main(["train", str(TINY), f"data.root={data_root}", "--out", str(out),
                 "--no-progress", "--device", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert "holds an earlier training run" in err and "Traceback" not in err
    assert main(["train", str(TINY), "--out", str(tmp_path / "x"), "--device",
                 "tpu"]) == 1
    assert "--device tpu: use cpu, cuda, cuda:N or auto" in capsys.readouterr().err
