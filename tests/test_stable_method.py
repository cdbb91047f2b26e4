"""The 'stable' training method (RCC / HDHR / MST switches) on stand-ins and a tiny
MobileNetV2: losses, the MST step, checkpoints and exact resume, how benchmark and
stability runs rebuild RCC and the hdhr codec, and the shipped ablation configs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robustpose.codecs import HDHRCodec
from robustpose.models import create_model, load_checkpoint
from robustpose.models.rcc import rcc_options
from robustpose.training import StableHeatmap, StandardHeatmap, Trainer, build_method
from robustpose.training.datasets import build_codec_for
from training_standins import (FakeKeypointDataset, FakeSpec, MeanErrorMetric, Split,
                               argmax_predict, seeded_standin, tiny_config)

REPO = Path(__file__).resolve().parents[1]
TINY_HEAD = {"NUM_DECONV_FILTERS": [8, 8, 8]}
torch.set_num_threads(1)


class CodecData(torch.utils.data.Dataset):
    """FakeKeypointDataset's 32 x 32 images and points with the targets of ``codec``
    (each point on the centre of its heatmap pixel: input px = 4 * heatmap px + 1.5)."""

    def __init__(self, codec, n: int = 8, seed: int = 0) -> None:
        self.base, self.codec = FakeKeypointDataset(n=n, size=(32, 32), seed=seed), codec

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        item = self.base[i]
        kpts = np.concatenate([self.base.points[i] * 4.0 + 1.5, self.base.weights[i]], axis=1)
        for key, value in self.codec.encode(kpts).items():
            item[key] = torch.from_numpy(value)
        item["target_weight"] = item["target_weight"].reshape(-1, 1)
        return item


def stable_config(tmp_path: Path, epochs: int = 1, val: bool = False, **args) -> dict:
    cfg = tiny_config(tmp_path, epochs=epochs, method="stable", method_args=args,
                      max_iters_per_epoch=1, optimizer="adam")
    cfg["data"].update(input_size=[32, 32], heatmap_size=[8, 8])
    cfg["model"].update(name="mobilenetv2", extra=TINY_HEAD, num_joints=4)
    cfg["val"]["every"] = 1 if val else 0
    return cfg


def stable_trainer(cfg: dict, model=None) -> Trainer:
    data = CodecData(build_codec_for(cfg))
    model = model if model is not None else create_model("mobilenetv2", num_joints=4,
                                                         extra=TINY_HEAD, seed=1)
    return Trainer(cfg, model=model, train_data=Split(data, FakeSpec()),
                   val_data=Split(data, FakeSpec(), lambda: MeanErrorMetric(data.base)),
                   device="cpu", predict_fn=argmax_predict, progress=False)


def first_batch(trainer: Trainer) -> dict:
    return next(iter(trainer._train_loader(0)))


def test_the_baseline_row_is_the_standard_loss(tmp_path):
    cfg = tiny_config(tmp_path, method="stable")
    data = FakeKeypointDataset(n=8)
    trainer = Trainer(cfg, model=seeded_standin(1), train_data=Split(data, FakeSpec()),
                      device="cpu", progress=False)
    batch = first_batch(trainer)
    assert isinstance(trainer.method, StableHeatmap)
    ours = trainer.method.losses(trainer.forward, batch)
    standard = StandardHeatmap().losses(trainer.forward, batch)
    assert set(ours) == {"loss"} and torch.equal(ours["loss"], standard["loss"])


def test_codec_config_follows_the_hdhr_switch(tmp_path):
    base = stable_config(tmp_path)
    assert StableHeatmap.codec_config(base) is None
    on = stable_config(tmp_path, hdhr=True)
    assert StableHeatmap.codec_config(on) == {"type": "hdhr"}
    codec = build_codec_for(on)
    assert isinstance(codec, HDHRCodec) and codec.heatmap_size == (8, 8) and codec.alpha == 0.7
    custom = stable_config(tmp_path, hdhr={"alpha": 0.5, "t_hd": 3})
    custom["data"]["codec"] = {"type": "hdhr", "distance": "cityblock"}
    assert StableHeatmap.codec_config(custom) == {"type": "hdhr", "distance": "cityblock",
                                                  "alpha": 0.5, "t_hd": 3}
    assert build_codec_for(custom).config()["distance"] == "cityblock"


def test_switches_that_contradict_the_model_or_codec_are_refused(tmp_path):
    cfg = stable_config(tmp_path)
    cfg["data"]["codec"] = {"type": "hdhr"}   # an hdhr codec without the hdhr switch
    with pytest.raises(ValueError, match="set hdhr: true"):
        stable_trainer(cfg)
    with pytest.raises(ValueError, match="asks for None"):  # an RCC model, rcc switch off
        stable_trainer(stable_config(tmp_path), model=create_model(
            "mobilenetv2", num_joints=4, extra=TINY_HEAD, rcc=True))
    standin = tiny_config(tmp_path, method="stable", method_args={"rcc": True})
    with pytest.raises(ValueError, match="needs a robustpose PoseModel"):
        Trainer(standin, model=seeded_standin(1), device="cpu", progress=False,
                train_data=Split(FakeKeypointDataset(n=4), FakeSpec()))
    for args, message in [({"mst": "yes"}, "mst must be"), ({"rcc": "on"}, "rcc must be"),
                          ({"rcc": {"square": "resize"}}, "square must be"),
                          ({"perturbations": "fogg"}, "unknown corruption")]:
        cfg = stable_config(tmp_path, **args)
        with pytest.raises(ValueError, match=message):
            build_method(cfg)


def test_rcc_defaults_follow_the_target_type():
    assert StableHeatmap(rcc=True).rcc["negative"] == "relu"
    under_hdhr = StableHeatmap(rcc=True, hdhr=True).rcc
    assert under_hdhr["negative"] == "softmax" and under_hdhr["log_output"]
    assert StableHeatmap(rcc={"square": "crop"}, hdhr=True).rcc["square"] == "crop"


def test_an_mst_step_perturbs_with_the_trainers_generator(tmp_path):
    runs = []
    for _ in range(2):
        trainer = stable_trainer(stable_config(tmp_path, hdhr=True, mst=True, mst_weight=0.5))
        batch = first_batch(trainer)
        before = trainer.np_rng.bit_generator.state
        copy = np.random.default_rng()
        copy.bit_generator.state = before
        expected = trainer.method.perturb(batch["image"], copy)  # the same draws, replayed
        logs = trainer.method.train_step(trainer.forward, batch, trainer.step)
        assert trainer.np_rng.bit_generator.state == copy.bit_generator.state
        assert not torch.equal(expected, batch["image"])
        assert set(logs) == {"loss", "task", "mst"} and float(logs["mst"]) > 0
        assert float(logs["loss"]) == pytest.approx(float(logs["task"] + 0.5 * logs["mst"]), rel=1e-6)
        runs.append((logs, {k: v.clone() for k, v in trainer.model.state_dict().items()}))
    assert all(torch.equal(runs[0][0][k], runs[1][0][k]) for k in runs[0][0])
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    # HDHR: MST on Z * softmax, Z the HD region sum (the method's documented scale)
    assert trainer.method.mst_loss.normalisation == "softmax"
    assert trainer.method.mst_loss.scale == pytest.approx(trainer.codec.region_sum)


def test_rhm_checkpoints_record_rcc_and_resume_exactly(tmp_path):
    args = {"rcc": True, "hdhr": True, "mst": True}
    straight = stable_trainer(stable_config(tmp_path / "a", epochs=2, val=True, **args))
    assert rcc_options(straight.model)["log_output"] and isinstance(straight.codec, HDHRCodec)
    assert straight.method.mst_weight == pytest.approx(0.003 * 8 * 8)  # the HDHR default
    straight.fit()
    first = stable_trainer(stable_config(tmp_path / "b", epochs=1, val=True, **args))
    first.fit()
    resumed = stable_trainer(stable_config(tmp_path / "b", epochs=2, val=True, **args))
    resumed.resume(tmp_path / "b" / "run" / "checkpoint.pt")
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert straight.np_rng.random() == resumed.np_rng.random()
    run = tmp_path / "b" / "run"
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    best = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["meta"]["rcc"] == best["meta"]["rcc"] == rcc_options(resumed.model)
    assert best["meta"]["codec"]["type"] == "hdhr"
    # a plain model loading best.pt gets the RCC layer back and predicts the same
    fresh = create_model("mobilenetv2", num_joints=4, extra=TINY_HEAD).eval()
    load_checkpoint(fresh, run / "best.pt")
    assert rcc_options(fresh) == rcc_options(resumed.model)
    assert torch.equal(best["model"]["final_layer.weight"], fresh.state_dict()["final_layer.weight"])


def _trained(tmp_path: Path, **args) -> tuple[Path, Path]:
    cfg = stable_config(tmp_path, epochs=1, val=True, **args)
    stable_trainer(cfg).fit()
    path = tmp_path / "config.yaml"
    public = {k: v for k, v in cfg.items() if not k.startswith("_")}
    path.write_text(yaml.safe_dump(public))
    return path, tmp_path / "run" / "best.pt"


def test_benchmark_and_stability_rebuild_rcc_hdhr_and_pick_softmax(tmp_path):
    from robustpose.benchmarking.loading import resolve_adapter
    from robustpose.benchmarking.stability_run import resolve_normalisation

    config, best = _trained(tmp_path / "rhm", rcc=True, hdhr=True)
    for adapter, _ in (resolve_adapter(config=config, checkpoint=best, num_joints=4),
                       resolve_adapter(model="mobilenetv2", checkpoint=best, num_joints=4,
                                       extra=TINY_HEAD)):
        assert rcc_options(adapter.model) == {"square": "pad", "negative": "softmax",
                                              "log_output": True, "eps": 1e-12}
        assert isinstance(adapter.codec, HDHRCodec)
        assert resolve_normalisation(adapter) == "softmax"
        assert resolve_normalisation(adapter, "raw") == "raw"  # an explicit choice wins
    config, best = _trained(tmp_path / "baseline")
    adapter, _ = resolve_adapter(config=config, checkpoint=best, num_joints=4)
    assert rcc_options(adapter.model) is None and resolve_normalisation(adapter) == "raw"
    with pytest.raises(ValueError, match="auto, raw or softmax"):
        resolve_normalisation(adapter, "log")


ABLATION = ["baseline", "rcc", "hdhr", "mst", "rhm"]


def test_the_ablation_configs_are_the_five_rows():
    from robustpose.training import load_config

    switches = {}
    for row in ABLATION:
        cfg = load_config(REPO / "configs" / "stable" / f"synthpose_mobilenetv2_{row}.yaml")
        method = build_method(cfg)
        assert cfg["model"]["name"] == "mobilenetv2"
        switches[row] = (method.rcc is not None, method.hdhr, method.mst)
        if row != "baseline":
            assert cfg["train"]["method"] == "stable" and cfg["model"]["init_from"], row
    assert switches == {"baseline": (False, False, False), "rcc": (True, False, False),
                        "hdhr": (False, True, False), "mst": (False, False, True),
                        "rhm": (True, True, True)}


@pytest.mark.parametrize("row", ABLATION)
def test_an_ablation_config_trains_from_the_cli(tmp_path, row, capsys):
    """Two steps of the real pipeline (SynthPose split rendered here, TopDownDataset ->
    codec -> method), fine-tuning from a baseline checkpoint saved here."""
    from robustpose.cli import main
    from robustpose.models import save_checkpoint

    config = REPO / "configs" / "stable" / f"synthpose_mobilenetv2_{row}.yaml"
    start = save_checkpoint(create_model("mobilenetv2", num_joints=17, extra={
        "NUM_DECONV_FILTERS": [64, 64, 64]}), tmp_path / "start.pt")
    out = tmp_path / "run"
    code = main(["train", str(config), f"data.train={{split: train, num_images: 4, seed: 1, root: {tmp_path}}}",
                 "data.val=null", "val.every=0", "train.epochs=1", "train.max_iters_per_epoch=2",
                 "train.batch_size=2", "data.num_workers=0", f"model.init_from={start}",
                 "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    header, line = (out / "log.csv").read_text().strip().splitlines()
    values = dict(zip(header.split(","), line.split(",")))
    assert np.isfinite(float(values["train_loss"]))
    assert ("train_mst" in values) == (row in ("mst", "rhm"))
    if "train_mst" in values:
        assert float(values["train_mst"]) > 0
    meta = torch.load(out / "checkpoint.pt", weights_only=True)["meta"]
    assert ("rcc" in meta) == (row in ("rcc", "rhm"))
    if row == "rhm":
        assert meta["rcc"]["log_output"]


@pytest.mark.parametrize("hdhr", [True, False])
def test_a_stability_run_picks_the_normalisation_of_the_checkpoint(tmp_path, hdhr):
    """`robustpose stability` on SynthPose with a 17-joint checkpoint whose meta names the
    hdhr codec (and RCC) records D_(1)(2) on the softmax; a Gaussian one on the raw maps."""
    from robustpose.benchmarking.stability_run import run_stability
    from robustpose.codecs import GaussianHeatmap, InferenceSetting
    from robustpose.models import save_checkpoint

    model = create_model("mobilenetv2", num_joints=17, extra=TINY_HEAD,
                         rcc={"negative": "softmax", "log_output": True} if hdhr else None)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # the fresh head's maps are flat (undefined): give them a shape
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    codec = (HDHRCodec if hdhr else GaussianHeatmap)((64, 64), (16, 16))
    ckpt = save_checkpoint(model, tmp_path / "best.pt", meta={
        "codec": codec.config(), "inference": InferenceSetting((64, 64), (16, 16)).to_dict()})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "mobilenetv2", "extra": TINY_HEAD},
                                      "data": {"type": "synth", "input_size": [64, 64],
                                               "heatmap_size": [16, 16]}}))
    card = run_stability(config=config, checkpoint=ckpt, max_images=2,
                         perturbations="gaussian_noise", severities="1", workers=0,
                         out=tmp_path / "run", plots=False, progress=False)
    settings = json.loads((tmp_path / "run" / "run.json").read_text())
    assert settings["conventions"]["d12_normalisation"] == ("softmax" if hdhr else "raw")
    assert card["run_dir"] == str(tmp_path / "run")
    # the HD target's scale: Z x the softmax reading, for hdhr checkpoints only
    scale = settings["conventions"]["d12_hd_scale"]
    assert scale == (pytest.approx(codec.region_sum) if hdhr else None)
    for row in (card["clean"], card["overall"]):
        assert row["D_12"] is not None
        if hdhr:
            assert row["D_12_hd"] == pytest.approx(row["D_12"] * codec.region_sum)
        else:
            assert row["D_12_hd"] is None
