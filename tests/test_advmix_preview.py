"""``robustpose advmix-preview`` (robustpose/commands/advmix_preview.py,
robustpose/reports/advmix_preview.py) on the SynthPose CPU config with a 4-image train
split rendered here: the PNG has the grid's size, a checkpoint's generator is the one
drawn, bad inputs are one-line errors."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustpose.cli import main
from robustpose.reports.advmix_preview import figure_inches, write_advmix_preview

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "advmix" / "synthpose_advmix.yaml"
DPI = 100  # write_advmix_preview's default

torch.set_num_threads(1)


def _preview(tmp_path: Path, out: Path, *extra: str) -> int:
    split = f"data.train={{split: train, num_images: 4, seed: 1, root: {tmp_path / 'cache'}}}"
    return main(["advmix-preview", "--config", str(CONFIG), split, "--out", str(out), *extra])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_the_png_is_the_grid_of_the_batch(tmp_path, capsys):
    sizes = {}
    for n in (1, 2):
        out = tmp_path / f"preview{n}.png"
        assert _preview(tmp_path, out, "--num-images", str(n)) == 0, capsys.readouterr().err
        printed = capsys.readouterr().out
        assert f"{n} crops x 7 panels" in printed and "generator: UNTRAINED" in printed
        means = re.search(r"mean mixing weight: clean ([\d.]+), AutoAugment ([\d.]+), "
                          r"GridMask ([\d.]+)", printed)
        assert means and sum(float(m) for m in means.groups()) == pytest.approx(1.0, abs=0.015)
        with Image.open(out) as im:
            sizes[n] = im.size
    # 128x96 crops, K = 2: 7 panels a row (3 views, 3 weight maps, the mix)
    for n, size in sizes.items():
        w_in, h_in = figure_inches(n, 3, (128, 96))
        assert size == pytest.approx((w_in * DPI, h_in * DPI), abs=1), (n, size)
    row = sizes[2][1] - sizes[1][1]  # one more crop = one more row of panels
    assert row == pytest.approx(1.25 * 128 / 96 * 1.04 * DPI, abs=1.5)
    assert sizes[1][0] == sizes[2][0]


def test_a_training_checkpoint_brings_its_generator(tmp_path, capsys):
    """A robustpose training checkpoint with another generator than the untrained one
    changes the maps (and the title names it); a weights-only file keeps the untrained."""
    from robustpose.config import build_model_for
    from robustpose.models import build_advmix_generator
    from robustpose.training import load_config
    from robustpose.training.checkpoint import save_checkpoint

    config = load_config(CONFIG)
    model = build_model_for(config, 17)
    generator = build_advmix_generator((96, 128), num_views=3, ngf=16, seed=123)
    ckpt = tmp_path / "checkpoint.pt"
    save_checkpoint(ckpt, {"model": model.state_dict(),
                           "extra_modules": {"generator": generator.state_dict()}})
    assert _preview(tmp_path, tmp_path / "a.png", "--num-images", "1") == 0
    capsys.readouterr()
    assert _preview(tmp_path, tmp_path / "b.png", "--num-images", "1", "--checkpoint", str(ckpt)) == 0
    assert "generator: checkpoint.pt" in capsys.readouterr().out
    a = np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))
    b = np.asarray(Image.open(tmp_path / "b.png").convert("RGB"))
    assert a.shape == b.shape and not np.array_equal(a, b)

    from robustpose.models import save_checkpoint as save_weights
    weights = save_weights(model, tmp_path / "best.pt")
    assert _preview(tmp_path, tmp_path / "c.png", "--num-images", "1", "--checkpoint", str(weights)) == 0
    assert "generator: UNTRAINED (best.pt holds none)" in capsys.readouterr().out


def test_bad_checkpoints_and_configs_are_one_line_errors(tmp_path, capsys):
    from robustpose.config import build_model_for
    from robustpose.models import build_advmix_generator
    from robustpose.training import load_config
    from robustpose.training.checkpoint import save_checkpoint

    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    assert _preview(tmp_path, tmp_path / "x.png", "--checkpoint", str(text)) == 1
    line = _one_line(capsys)
    assert str(text) in line and "not a readable PyTorch checkpoint" in line

    assert _preview(tmp_path, tmp_path / "x.png", "--checkpoint", str(tmp_path / "none.pt")) == 1
    assert "none.pt: --checkpoint not found" in _one_line(capsys)

    config = load_config(CONFIG)
    wide = build_advmix_generator((96, 128), num_views=3, ngf=32)  # the config says ngf 16
    ckpt = tmp_path / "wide.pt"
    save_checkpoint(ckpt, {"model": build_model_for(config, 17).state_dict(),
                           "extra_modules": {"generator": wide.state_dict()}})
    assert _preview(tmp_path, tmp_path / "x.png", "--checkpoint", str(ckpt)) == 1
    line = _one_line(capsys)
    assert f"{ckpt}: its generator does not fit the config's (ngf 16" in line

    other = load_config(REPO / "configs" / "tiny_coco.yaml")  # a pose model of another shape
    save_checkpoint(ckpt, {"model": build_model_for(other, 17).state_dict()})
    assert _preview(tmp_path, tmp_path / "x.png", "--checkpoint", str(ckpt)) == 1
    assert f"{ckpt}: checkpoint does not fit" in _one_line(capsys)

    standard = REPO / "configs" / "advmix" / "synthpose_standard.yaml"
    assert main(["advmix-preview", "--config", str(standard), "--out", str(tmp_path / "x.png")]) == 1
    assert "advmix-preview needs an advmix config" in _one_line(capsys)
    assert _preview(tmp_path, tmp_path / "x.jpg") == 1
    assert "--out must name a .png file" in _one_line(capsys)
    assert not (tmp_path / "x.png").exists()


def test_the_drawing_refuses_arrays_that_do_not_match(tmp_path):
    views = np.zeros((2, 3, 3, 16, 12), np.float32)
    weights = np.full((2, 3, 16, 12), 1 / 3, np.float32)
    mixed, gt = np.zeros((2, 3, 16, 12), np.float32), np.zeros((2, 17, 3), np.float32)
    with pytest.raises(ValueError, match=r"weights has shape \(2, 2, 16, 12\), expected \(2, 3, 16, 12\)"):
        write_advmix_preview(tmp_path / "p.png", views, weights[:, :2], mixed, gt, gt, [], ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 view names for 3 views"):
        write_advmix_preview(tmp_path / "p.png", views, weights, mixed, gt, gt, [], ["a", "b"])
    path = write_advmix_preview(tmp_path / "p.png", views, weights, mixed, gt, gt, [(0, 1)],
                                ["a", "b", "c"], title="t")
    with Image.open(path) as im:
        w_in, h_in = figure_inches(2, 3, (16, 12))
        assert im.size == pytest.approx((w_in * DPI, h_in * DPI), abs=1)
