"""``robustpose corrupt``: layout, seeding, reruns, workers, bad inputs, interruption."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustpose.cli import main
from robustpose.corruptions import corrupt
from robustpose.data import load_image
from robustpose.data.corrupted_writer import CONFIG_NAME, SUMMARY_NAME, image_ids_from_annotations
from robustpose.utils.seeding import derive_seed

REPO = Path(__file__).resolve().parents[1]
NAMES = ["000000000139.jpg", "000000034417.jpg", "000000109313.jpg"]


def _copy_small(data_root: Path, dst: Path, size: tuple[int, int] = (64, 48)) -> list[str]:
    """Three real COCO val images, downscaled, one in a sub-folder and one as PNG."""
    src = data_root / "coco_val_mini" / "images"
    rels = ["a.jpg", "sub/b.jpg", "sub/deeper/c.png"]
    for name, rel in zip(NAMES, rels):
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(src / name) as im:
            im.convert("RGB").resize(size, Image.BILINEAR).save(out)
    return rels


@pytest.fixture()
def images(tmp_path: Path, data_root: Path) -> tuple[Path, list[str]]:
    in_dir = tmp_path / "in"
    return in_dir, _copy_small(data_root, in_dir)


def _run(*argv: str) -> int:
    return main(["corrupt", *map(str, argv), "--no-progress"])


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".json")}


def test_writes_every_file_where_documented_with_image_id_seeds(images, tmp_path):
    """Without --annotations the image id is the relative path; the seed of each output is
    derive_seed(seed, id, corruption, severity), the rule of on-the-fly CorruptedImages."""
    in_dir, rels = images
    out = tmp_path / "out"
    assert _run(in_dir, out, "--corruptions", "gaussian_noise,contrast", "--severities", "1,3",
                "--seed", "7") == 0
    expected = {f"{c}/{s}/{Path(r).with_suffix('.png').as_posix()}"
                for c in ("gaussian_noise", "contrast") for s in (1, 3) for r in rels}
    assert set(_files(out)) == expected
    for rel in rels:
        clean = load_image(in_dir / rel)
        for s in (1, 3):
            got = np.asarray(Image.open(out / "gaussian_noise" / str(s) / Path(rel).with_suffix(".png")))
            want = corrupt(clean, "gaussian_noise", s, seed=derive_seed(7, rel, "gaussian_noise", s))
            np.testing.assert_array_equal(got, want)  # PNG is lossless: exactly corrupt()'s output
    config = json.loads((out / CONFIG_NAME).read_text())
    assert config["image_ids"] == "relative path" and config["seed"] == 7
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["written"] == 12 and summary["failed"] == [] and summary["images"] == 3


def test_rerun_skips_finished_files_and_refuses_other_settings(images, tmp_path, capsys):
    in_dir, _ = images
    out = tmp_path / "out"
    assert _run(in_dir, out, "--corruptions", "shot_noise", "--severities", "2") == 0
    first = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    (out / "shot_noise" / "2" / "a.png").unlink()  # as if the run had stopped before it
    time.sleep(0.01)
    assert _run(in_dir, out, "--corruptions", "shot_noise", "--severities", "2") == 0
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert (summary["written"], summary["skipped_existing"]) == (1, 2)
    for path, mtime in first.items():
        if path.name != "a.png":
            assert path.stat().st_mtime_ns == mtime  # untouched
    capsys.readouterr()
    # another seed would mix two different data sets in one folder: refused, one line
    assert _run(in_dir, out, "--corruptions", "shot_noise", "--seed", "5") == 1
    err = capsys.readouterr().err.strip()
    assert "seed=0" in err and "\n" not in err


def test_one_and_two_workers_write_identical_bytes(images, tmp_path):
    in_dir, _ = images
    args = ("--corruptions", "impulse_noise,motion_blur,pixelate", "--severities", "1,5",
            "--format", "jpg", "--quality", "90")
    assert _run(in_dir, tmp_path / "w1", *args, "--workers", "1") == 0
    assert _run(in_dir, tmp_path / "w2", *args, "--workers", "2") == 0
    one, two = _files(tmp_path / "w1"), _files(tmp_path / "w2")
    assert len(one) == 18 and one == two


def test_unreadable_input_is_skipped_and_listed(images, tmp_path, capsys):
    in_dir, rels = images
    (in_dir / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    Image.new("RGB", (8, 8)).save(in_dir / "tiny.png")  # below the 32 px minimum
    out = tmp_path / "out"
    assert _run(in_dir, out, "--corruptions", "brightness", "--severities", "1") == 0
    stdout = capsys.readouterr().out
    assert "skipped broken.jpg:" in stdout and "skipped tiny.png:" in stdout
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert {f["path"] for f in summary["failed"]} == {"broken.jpg", "tiny.png"}
    assert summary["written"] == len(rels)
    assert sorted(_files(out)) == sorted(f"brightness/1/{Path(r).with_suffix('.png').as_posix()}"
                                         for r in rels)
    assert _run(in_dir, out, "--corruptions", "brightness", "--severities", "1", "--strict") == 3


def test_advmix_layout_matches_the_official_script(images, tmp_path):
    """AdvMix's make_datasets.py: np.random.seed(1) per image, corrupt, save <c>/<s-1>/<name>.jpg
    with Pillow (quality 75). Same bytes from `--layout advmix` for a seedable corruption."""
    reference = pytest.importorskip("imagecorruptions")
    in_dir, rels = images
    out = tmp_path / "out"
    assert _run(in_dir, out, "--layout", "advmix", "--corruptions", "gaussian_noise",
                "--severities", "1,5") == 0
    assert sorted(_files(out)) == sorted(f"gaussian_noise/{s}/{Path(r).stem}.jpg"
                                         for s in (0, 4) for r in rels)
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    for rel in rels:
        image = load_image(in_dir / rel)
        for severity in (1, 5):
            np.random.seed(1)  # the official script's (global) seeding, reproduced here only
            ref = reference.corrupt(image, corruption_name="gaussian_noise", severity=severity)
            Image.fromarray(ref).save(ref_dir / "ref.jpg")
            got = out / "gaussian_noise" / str(severity - 1) / f"{Path(rel).stem}.jpg"
            assert got.read_bytes() == (ref_dir / "ref.jpg").read_bytes()


def test_output_inside_input_is_refused(images, capsys):
    in_dir, _ = images
    assert _run(in_dir, in_dir / "c", "--corruptions", "contrast") == 1
    assert "must not lie inside" in capsys.readouterr().err
    assert not (in_dir / "c").exists()


def test_advmix_layout_refuses_clashing_file_names(images, tmp_path, capsys):
    in_dir, _ = images
    (in_dir / "other").mkdir()
    (in_dir / "a.jpg").replace(in_dir / "other" / "b.jpg")  # sub/b.jpg and other/b.jpg
    assert _run(in_dir, tmp_path / "out", "--layout", "advmix", "--corruptions", "contrast") == 1
    err = capsys.readouterr().err
    assert "other/b.jpg" in err and "sub/b.jpg" in err and "--layout robustpose" in err


def test_image_ids_of_an_mpii_file_are_the_records_ids(data_root):
    """--annotations with an HRNet MPII json seeds by the ids load_mpii_records gives."""
    from robustpose.data import load_mpii_records

    d = data_root / "mpii_mini"
    ids = image_ids_from_annotations(d / "annotations.json", d / "images")
    records = load_mpii_records(d / "annotations.json", d / "images")
    assert ids == {r.image_path.relative_to(d / "images").as_posix(): r.image_id
                   for r in records}


def test_clashing_outputs_and_folders_of_an_older_seeding_are_refused(images, tmp_path, capsys):
    in_dir, _ = images
    out = tmp_path / "out"
    out.mkdir()
    # a folder written before the seeding rule was per (image id, corruption, severity)
    (out / CONFIG_NAME).write_text(json.dumps({"layout": "robustpose", "seed": 0,
                                               "image_format": "png", "quality": 75}))
    assert _run(in_dir, out, "--corruptions", "contrast", "--severities", "1") == 1
    err = capsys.readouterr().err.strip()
    assert "older robustpose" in err and "--overwrite" in err and "\n" not in err
    Image.new("RGB", (40, 40)).save(in_dir / "a.png")  # a.jpg and a.png -> a.png
    assert _run(in_dir, tmp_path / "out2", "--corruptions", "contrast") == 1
    err = capsys.readouterr().err
    assert "a.jpg and a.png would both be written as a.png" in err


def test_one_line_errors(tmp_path, capsys):
    assert _run(tmp_path / "missing", tmp_path / "out") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("robustpose corrupt: error:") and "missing" in err and "\n" not in err
    (tmp_path / "empty").mkdir()
    assert _run(tmp_path / "empty", tmp_path / "out") == 1
    assert "no images" in capsys.readouterr().err
    for bad, message in ((("--corruptions", "gaussian_nose"), "unknown corruption(s) gaussian_nose"),
                         (("--severities", "0-6"), "severities must lie in 1..5"),
                         (("--corruptions", "none"), "selects nothing to write"),
                         (("--format", "png", "--quality", "80"), "--quality applies to --format jpg")):
        assert _run(tmp_path, tmp_path / "out", *bad) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("robustpose corrupt: error:") and "\n" not in err
        assert message in err, err
    assert _run(tmp_path / "empty", tmp_path / "out", "--annotations", tmp_path / "nope.json") == 1
    err = capsys.readouterr().err.strip()
    assert "nope.json: annotation file not found" in err and "\n" not in err


def test_killed_run_leaves_only_whole_images_and_rerun_completes(tmp_path, data_root):
    in_dir = tmp_path / "in"
    _copy_small(data_root, in_dir, size=(160, 120))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "robustpose", "corrupt", str(in_dir), str(out),
           "--corruptions", "all", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(1 for p in out.rglob("*.png") if not p.name.startswith(".")) >= 5:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = [p for p in out.rglob("*.png") if not p.name.startswith(".")]
    assert 5 <= len(done) < 3 * 19 * 5, "the run was not interrupted mid-way"
    for path in done:  # every finished name holds a whole, decodable image
        with Image.open(path) as im:
            im.load()
            assert im.size == (160, 120)
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["written"] + summary["skipped_existing"] == 3 * 19 * 5
    assert not [p for p in out.rglob(".*") if ".tmp." in p.name]


def test_cli_choices_are_the_layouts_and_formats_of_the_writer():
    """The parser lists its choices literally (building it must not import torch); they
    must stay those of the one layout definition."""
    import argparse

    from robustpose.commands import corrupt as command
    from robustpose.data import LAYOUTS
    from robustpose.data.corrupted_writer import FORMATS

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    for layout in LAYOUTS:
        assert parser.parse_args(["in", "out", "--layout", layout]).layout == layout
    for image_format in FORMATS:
        assert parser.parse_args(["in", "out", "--format", image_format]).image_format == image_format
    with pytest.raises(SystemExit):
        parser.parse_args(["in", "out", "--layout", "imagenet"])
