"""The trainer on real modules and real data (../shared/data/coco_*_mini, tiny config):
loss goes down, resume is exact, a seeded run repeats, `robustpose test` scores a run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robustpose.cli import main
from robustpose.training import Trainer, load_config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny_coco.yaml"

torch.set_num_threads(1)


def tiny(data_root: Path, out: Path, *overrides: str) -> dict:
    return load_config(TINY, [f"data.root={data_root}", f"output_dir={out}", "val.every=0",
                              "train.batch_size=4", *overrides])


def test_a_few_iterations_lower_the_loss(data_root, tmp_path):
    """Twelve steps of the standard method (JointsMSELoss, Adam 1e-3) on 8 real crops."""
    trainer = Trainer(tiny(data_root, tmp_path), device="cpu", progress=False)
    dataset = trainer.train_data.dataset
    items = [dataset[i] for i in range(8)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("image", "target", "target_weight")}
    assert batch["target_weight"].sum() > 0 and batch["target"].max() > 0.5
    losses = [trainer.method.train_step(trainer.forward, batch, trainer.step)["loss"]
              for _ in range(12)]
    assert losses[-1] < 0.95 * losses[0], losses
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 8, losses


def test_resume_is_exact_and_seeded_runs_repeat(data_root, tmp_path):
    args = ("train.max_iters_per_epoch=2", "train.lr_steps=[1]")  # the lr decays after epoch 1
    straight = Trainer(tiny(data_root, tmp_path / "a", "train.epochs=2", *args), device="cpu",
                       progress=False)
    straight.fit()
    again = Trainer(tiny(data_root, tmp_path / "b", "train.epochs=2", *args), device="cpu",
                    progress=False)
    again.fit()
    half = Trainer(tiny(data_root, tmp_path / "c", "train.epochs=1", *args), device="cpu",
                   progress=False)
    half.fit()
    resumed = Trainer(tiny(data_root, tmp_path / "c", "train.epochs=2", *args), device="cpu",
                      progress=False)
    resumed.resume(tmp_path / "c" / "checkpoint.pt")
    resumed.fit()
    ref = straight.model.state_dict()
    for other in (again, resumed):
        state = other.model.state_dict()
        mismatched = [k for k in ref if not torch.equal(ref[k], state[k])]
        assert not mismatched, mismatched[:5]
    assert resumed.optimizers["model"].param_groups[0]["lr"] == pytest.approx(1e-4)
    rows = (tmp_path / "c" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + epoch 1 (first run) + epoch 2 (resumed run)


def test_train_then_test_commands(data_root, tmp_path, capsys):
    """`robustpose train` then `robustpose test` on its best.pt (in-process CLI calls)."""
    out = tmp_path / "run"
    code = main(["train", str(TINY), f"data.root={data_root}", "train.epochs=1",
                 "train.max_iters_per_epoch=1", "train.batch_size=4", "val.every=1",
                 "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert (out / "checkpoint.pt").is_file() and (out / "best.pt").is_file()
    header, row = (out / "log.csv").read_text().strip().splitlines()
    val_ap = float(row.split(",")[header.split(",").index("val_AP")])
    code = main(["test", str(TINY), f"data.root={data_root}", "--checkpoint", str(out / "best.pt"),
                 "--out", str(tmp_path / "m.json"), "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    stats = json.loads((tmp_path / "m.json").read_text())
    assert stats["num_people"] == 68 and 0.0 <= stats["AP"] <= 1.0
    # What the trainer logged as validation is what `robustpose test` measures on best.pt.
    assert stats["AP"] == pytest.approx(val_ap, abs=1e-12)
    assert "AP" in capsys.readouterr().out
    # --resume auto picks up <output_dir>/checkpoint.pt and trains the remaining epoch.
    code = main(["train", str(TINY), f"data.root={data_root}", "train.epochs=2",
                 "train.max_iters_per_epoch=1", "train.batch_size=4", "val.every=0",
                 "--out", str(out), "--no-progress", "--device", "cpu", "--resume", "auto"])
    assert code == 0 and "resumed from" in capsys.readouterr().out
    assert len((out / "log.csv").read_text().strip().splitlines()) == 3
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 2
    # A missing checkpoint is a one-line error, exit code 1.
    assert main(["test", str(TINY), f"data.root={data_root}", "--checkpoint",
                 str(tmp_path / "nope.pt")]) == 1
    assert "nope.pt: checkpoint not found" in capsys.readouterr().err


def test_mpii_config_scores_pckh(data_root, tmp_path):
    """The MPII configs' data path: HRNet-json records + PCKh through `evaluate_checkpoint`."""
    from robustpose.models import save_checkpoint
    from robustpose.config import build_model_for
    from robustpose.training.evaluate import evaluate_checkpoint
    config = load_config(REPO / "configs" / "mpii" / "sbl_resnet50_256x256.yaml", [
        f"data.root={data_root / 'mpii_mini'}", "data.val.annotations=annotations.json",
        "data.val.images=images", "model.name=sbl_resnet18", "data.input_size=[64,64]",
        "data.heatmap_size=[16,16]", "model.extra={NUM_DECONV_FILTERS: [64, 64, 64]}",
        "data.num_workers=0"])
    ckpt = save_checkpoint(build_model_for(config, 16), tmp_path / "m.pt")
    stats, _ = evaluate_checkpoint(config, ckpt, device="cpu", progress=False)
    assert stats["num_people"] == 5 and 0.0 <= stats["PCKh"] <= 100.0


def test_synth_data_type_goes_through_the_factory(tmp_path):
    """data.type=synth: robustpose.data.synth renders the split once and the trainer reads
    it through the COCO path (annotations + OKS metric)."""
    from robustpose.training.datasets import build_split
    config = load_config(TINY, ["data.type=synth", "data.train=null", "data.val=null",
                                f"data.train={{split: train, num_images: 2, root: {tmp_path}}}",
                                f"data.val={{split: val, num_images: 2, root: {tmp_path}}}"])
    train = build_split(config, "train", train=True, progress=False)
    val = build_split(config, "val", train=False, progress=False)
    assert len(train.dataset) > 0 and train.dataset[0]["image"].shape == (3, 96, 64)
    assert val.annotation_file.is_file() and val.metric_factory is not None


def test_init_from_starts_from_saved_weights(data_root, tmp_path):
    """`model.init_from` loads a whole model (strictly) before training; a missing file or
    weights of another architecture fail before any step."""
    first = Trainer(tiny(data_root, tmp_path / "a"), device="cpu", progress=False)
    torch.nn.init.constant_(next(first.model.parameters()), 0.25)
    from robustpose.models import save_checkpoint
    weights = save_checkpoint(first.model, tmp_path / "w.pt")
    second = Trainer(tiny(data_root, tmp_path / "b", f"model.init_from={weights}"), device="cpu",
                     progress=False)
    ref = first.model.state_dict()
    got = second.model.state_dict()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    fresh = Trainer(tiny(data_root, tmp_path / "c"), device="cpu", progress=False)
    assert not torch.equal(next(fresh.model.parameters()), next(second.model.parameters()))
    with pytest.raises(FileNotFoundError, match="init_from"):
        Trainer(tiny(data_root, tmp_path / "d", f"model.init_from={tmp_path / 'nope.pt'}"),
                device="cpu", progress=False)
    other = Trainer(tiny(data_root, tmp_path / "e", "model.extra.NUM_DECONV_FILTERS=[32,32,32]"),
                    device="cpu", progress=False)
    save_checkpoint(other.model, tmp_path / "r18.pt")
    with pytest.raises(ValueError, match="does not fit"):
        Trainer(tiny(data_root, tmp_path / "f", f"model.init_from={tmp_path / 'r18.pt'}"),
                device="cpu", progress=False)


def test_unbiased_targets_and_dark_decoding_follow_the_config(data_root, tmp_path):
    """data.target_encoding=unbiased (alias of data.codec.type) trains on DARK's sub-pixel
    Gaussians; val.refine=dark decodes validation (and `robustpose test`) with DARK's
    refinement, through the codec that made the targets; bad values fail in one line
    naming the key."""
    import numpy as np

    from robustpose.codecs import InferenceSetting, predict_keypoints
    from robustpose.training import ConfigError
    from robustpose.training.validation import predict_fn_for

    plain = Trainer(tiny(data_root, tmp_path / "a"), device="cpu", progress=False)
    dark = Trainer(tiny(data_root, tmp_path / "b", "data.target_encoding=unbiased",
                        "val.refine=dark", "val.dark_kernel=5"), device="cpu", progress=False)
    assert not plain.train_data.dataset.codec.unbiased and dark.train_data.dataset.codec.unbiased
    assert dark.codec is dark.train_data.dataset.codec  # one instance: targets and decoding
    # unbiased targets peak between pixels: their maxima are below 1 where HRNet's are exactly 1
    a, b = plain.train_data.dataset[0], dark.train_data.dataset[0]
    labelled = a["target_weight"].reshape(-1) > 0
    assert torch.all(a["target"].amax((1, 2))[labelled] == 1)
    assert torch.any(b["target"].amax((1, 2))[labelled] < 0.99)
    assert plain.predict_fn.func is predict_keypoints
    assert plain.predict_fn.keywords["setting"] == InferenceSetting((64, 96), (16, 24))
    from robustpose.training.datasets import build_split
    val = build_split(dark.config, "val", train=False, progress=False, codec=dark.codec)
    batch = torch.utils.data.default_collate([val.dataset[i] for i in range(4)])
    spec = val.spec
    got = dark.predict_fn(dark.model, batch["image"], batch["meta"], spec)
    setting = InferenceSetting((64, 96), (16, 24), refine="dark", dark_kernel=5)
    want = predict_keypoints(dark.model, batch["image"], batch["meta"], spec, setting)
    quarter = predict_keypoints(dark.model, batch["image"], batch["meta"], spec)
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, quarter)
    assert predict_fn_for(tiny(data_root, tmp_path, "val.post_process=dark")).keywords[
        "setting"].replace(input_size=(192, 256), heatmap_size=None) == InferenceSetting(
        refine="dark", dark_kernel=11)
    for override, key in [("data.target_encoding=dark", "data.target_encoding"),
                          ("val.post_process=argmax", "val.post_process"),
                          ("val.refine=argmax", "val.refine"),
                          ("val.dark_kernel=4", "val.dark_kernel")]:
        with pytest.raises(ConfigError, match=key):
            tiny(data_root, tmp_path, override)


def test_best_weights_carry_the_inference_setting_and_codec(data_root, tmp_path):
    """best.pt's meta holds the setting and codec block the run validated with."""
    from robustpose.codecs import InferenceSetting, build_codec

    trainer = Trainer(tiny(data_root, tmp_path, "data.codec={type: unbiased, sigma: 1.5}",
                           "val.flip_shift=false"), device="cpu", progress=False)
    trainer._save_weights(tmp_path / "best.pt", 1)
    meta = torch.load(tmp_path / "best.pt", weights_only=True)["meta"]
    assert InferenceSetting.from_dict(meta["inference"]) == trainer.inference
    assert trainer.inference.flip_shift is False
    codec = build_codec(meta["codec"])
    assert type(codec) is type(trainer.codec) and codec.config() == trainer.codec.config()
    assert codec.sigma == 1.5 and codec.input_size == (64, 96)
