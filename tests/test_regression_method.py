"""train.method 'regression' (robustpose/training/regression.py) with deeppose_shufflenetv2
on a few rendered SynthPose images: the codec it declares, the backbone taken from the
bundled model, the loss going down, exact resume, and decoding through the codec."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from robustpose.assets import bundled_checkpoint_path
from robustpose.codecs import CoordinateRegression, decode_outputs
from robustpose.config import ConfigError
from robustpose.models import create_model
from robustpose.training import Trainer, build_method, load_config
from robustpose.training.datasets import build_codec_for

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "attacks" / "synthpose_deeppose_shufflenetv2.yaml"
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synth")   # 4 train + 2 val images, rendered once


def config(cache: Path, out: Path, *overrides: str) -> dict:
    return load_config(CONFIG, [
        f"model.pretrained={bundled_checkpoint_path()}", f"output_dir={out}",
        f"data.train={{split: train, num_images: 4, seed: 1, root: {cache}}}",
        f"data.val={{split: val, num_images: 2, root: {cache}}}", "data.num_workers=0",
        "train.batch_size=4", "train.epochs=1", "train.max_iters_per_epoch=2", "val.every=1",
        "val.batch_size=8", *overrides])


def test_the_method_declares_the_regression_codec_in_the_models_units(cache, tmp_path):
    codec = build_codec_for(config(cache, tmp_path))
    assert isinstance(codec, CoordinateRegression)
    assert codec.config() == {"type": "regression", "input_size": [96, 128], "units": "pixels"}
    norm = build_codec_for(config(cache, tmp_path, "model.kwargs={coord_units: normalized}"))
    assert norm.units == "normalized"
    with pytest.raises(ConfigError, match="regression codec; data.codec names 'unbiased'"):
        build_codec_for(config(cache, tmp_path, "data.codec={type: unbiased}"))
    with pytest.raises(ConfigError, match="disagrees with model.kwargs.coord_units"):
        build_codec_for(config(cache, tmp_path, "data.codec={type: regression, units: normalized}"))
    with pytest.raises(ValueError, match="loss must be one of coord_l1, coord_l2"):
        build_method(config(cache, tmp_path, "train.method_args={loss: mse}"))
    heatmap = config(cache, tmp_path, "model.name=shufflenetv2")
    trainer = SimpleNamespace(config=heatmap, model=create_model("shufflenetv2"))
    with pytest.raises(ValueError, match="trains coordinate models.*'shufflenetv2' outputs heatmaps"):
        build_method(heatmap).setup(trainer)


def test_the_backbone_comes_from_the_bundled_model_and_the_head_starts_fresh(cache, tmp_path):
    trainer = Trainer(config(cache, tmp_path), device="cpu", progress=False)
    bundled = torch.load(bundled_checkpoint_path(), weights_only=True)["model"]
    own = trainer.model.state_dict()
    backbone = [k for k in own if k.startswith("backbone.")]
    assert len(backbone) > 300 and all(torch.equal(own[k], bundled[k].float()) for k in backbone)
    assert set(own) - set(backbone) == {"coord_head.weight", "coord_head.bias"}
    assert torch.all(own["coord_head.bias"] == 0.5)        # every joint starts at the crop centre


def test_a_few_steps_on_a_fixed_batch_lower_the_coordinate_loss(cache, tmp_path):
    trainer = Trainer(config(cache, tmp_path, "train.lr=1e-3"), device="cpu", progress=False)
    data = trainer.train_data.dataset
    items = [data[i] for i in range(4)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("image", "target", "target_weight")}
    assert batch["target"].shape == (4, 17, 2) and batch["target_weight"].shape == (4, 17, 1)
    losses = [float(trainer.method.train_step(trainer.forward, batch, trainer.step)["loss"])
              for _ in range(6)]
    # CoordL1 in crop pixels: the weighted mean |pred - gt| over the 4 x 17 x 2 values
    print("coord_l1 per step:", [round(v, 3) for v in losses])
    assert 1.0 < losses[0] < 60.0 and losses[-1] < 0.9 * losses[0], losses
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 4, losses
    l2 = Trainer(config(cache, tmp_path / "l2", "train.method_args={loss: coord_l2}"),
                 device="cpu", progress=False)
    with torch.no_grad():
        assert float(l2.method.losses(l2.forward, batch)["loss"]) > losses[0]  # squared px


def test_checkpoint_and_exact_resume(cache, tmp_path):
    args = ("train.lr_steps=[1]", "val.every=0")
    straight = Trainer(config(cache, tmp_path / "a", "train.epochs=2", *args), device="cpu",
                       progress=False)
    straight.fit()
    half = Trainer(config(cache, tmp_path / "b", *args), device="cpu", progress=False)
    half.fit()
    assert (tmp_path / "b" / "checkpoint.pt").is_file()
    resumed = Trainer(config(cache, tmp_path / "b", "train.epochs=2", *args), device="cpu",
                      progress=False)
    resumed.resume(tmp_path / "b" / "checkpoint.pt")
    resumed.fit()
    ref, got = straight.model.state_dict(), resumed.model.state_dict()
    assert not [k for k in ref if not torch.equal(ref[k], got[k])]
    assert resumed.optimizers["model"].param_groups[0]["lr"] == pytest.approx(1e-4)


def test_validation_and_the_benchmark_adapter_decode_through_the_codec(cache, tmp_path):
    from robustpose.benchmarking.loading import resolve_adapter

    out = tmp_path / "run"
    trainer = Trainer(config(cache, out), device="cpu", progress=False)
    row = trainer.fit()[-1]
    assert 0.0 <= row["val_AP"] <= 1.0 and row["val_num_people"] > 0
    meta = torch.load(out / "best.pt", weights_only=True)["meta"]
    assert meta["codec"] == {"type": "regression", "input_size": [96, 128], "units": "pixels"}
    adapter, _ = resolve_adapter(config=out / "config.yaml", checkpoint=out / "best.pt")
    assert isinstance(adapter.codec, CoordinateRegression)
    val = trainer.val_data.dataset
    items = [val[i] for i in range(len(val))]
    images = torch.stack([it["image"] for it in items])
    metas = {k: np.stack([np.asarray(it["meta"][k]) for it in items]) for k in ("center", "scale")}
    spec = trainer.val_data.spec
    # the benchmark's adapter predicts what training validation predicts (flip test on)
    ours = trainer.predict_fn(trainer.model.eval(), images, metas, spec)
    theirs = adapter.predict(images, metas, spec, True)
    np.testing.assert_allclose(theirs, ours, atol=1e-3)
    # a prediction equal to the codec's target decodes back to the ground truth (image px)
    targets = torch.stack([it["target"] for it in items])
    decoded = decode_outputs(trainer.codec, targets, None, metas, spec, trainer.inference)
    gt = np.stack([val.records[i].keypoints for i in range(len(val))])
    seen = gt[..., 2] > 0
    np.testing.assert_allclose(decoded[..., :2][seen], gt[..., :2][seen], atol=1e-3)
