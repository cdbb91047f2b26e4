"""The experiment's codec and inference setting from its config: ``data.codec`` (and its
alias ``data.target_encoding``), ``val.flip_shift`` / ``val.refine`` (and their old names
``val.shift`` / ``val.post_process``), and a training method that declares its codec."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustpose.codecs import CoordinateRegression, InferenceSetting, UnbiasedHeatmap
from robustpose.training import ConfigError, Trainer, load_config
from robustpose.config import codec_block
from robustpose.training.datasets import build_codec_for
from robustpose.training.methods import METHODS, StandardHeatmap

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny_coco.yaml"
torch.set_num_threads(1)


def tiny(*overrides: str) -> dict:
    return load_config(TINY, list(overrides))


def test_old_val_names_are_aliases_of_the_new():
    new = tiny("val.flip_shift=false", "val.refine=dark")
    old = tiny("val.shift=false", "val.post_process=dark")
    for cfg in (new, old):
        assert (cfg["val"]["flip_shift"], cfg["val"]["refine"]) == (False, "dark")
        assert cfg["val"]["shift"] is None and cfg["val"]["post_process"] is None
    assert InferenceSetting.from_config(new) == InferenceSetting.from_config(old)
    assert InferenceSetting.from_config(tiny()) == InferenceSetting((64, 96), (16, 24))
    with pytest.raises(ConfigError, match="val.shift .old name of val.flip_shift"):
        tiny("val.shift=false", "val.flip_shift=true")


def test_file_with_the_old_names_still_loads(tmp_path):
    text = TINY.read_text() + "  shift: false\n  post_process: dark\n"
    path = tmp_path / "old.yaml"
    path.write_text(text)
    cfg = load_config(path)
    assert (cfg["val"]["flip_shift"], cfg["val"]["refine"]) == (False, "dark")


def test_codec_block_and_its_alias():
    assert codec_block(tiny()) == {"type": "hrnet"}
    assert codec_block(tiny("data.target_encoding=unbiased")) == {"type": "unbiased"}
    cfg = tiny("data.codec={type: unbiased, sigma: 3.0}")
    codec = build_codec_for(cfg)
    assert isinstance(codec, UnbiasedHeatmap) and codec.sigma == 3.0
    assert codec.input_size == (64, 96) and codec.heatmap_size == (16, 24)
    assert codec.refine == "dark"  # the codec owns its decoding default (val.refine overrides)
    assert isinstance(build_codec_for(tiny("data.codec={type: regression}")),
                      CoordinateRegression)
    for override, message in [("data.codec={sigma: 2}", "data.codec must be a mapping"),
                              ("data.codec={type: gauss}", "data.codec.type must be one of"),
                              ("data.target_encoding=dark", "data.target_encoding must be")]:
        with pytest.raises(ConfigError, match=message):
            tiny(override)
    with pytest.raises(ConfigError, match="disagrees with data.codec.type"):
        tiny("data.codec={type: hrnet}", "data.target_encoding=unbiased")
    with pytest.raises(ConfigError, match="data.codec: codec 'hrnet'.*sigmaa"):
        build_codec_for(tiny("data.codec={type: hrnet, sigmaa: 2}"))


class NeedsUnbiased(StandardHeatmap):
    """A method that trains on DARK targets whatever the config says."""

    name = "needs_unbiased"

    @classmethod
    def codec_config(cls, config: dict) -> dict:
        return {**codec_block(config), "type": "unbiased", "sigma": 1.5}


def test_a_method_declares_its_codec_before_the_datasets_are_built(data_root, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setitem(METHODS, "needs_unbiased", NeedsUnbiased)
    cfg = tiny(f"data.root={data_root}", f"output_dir={tmp_path}", "val.every=1",
               "train.method=needs_unbiased")
    trainer = Trainer(cfg, device="cpu", progress=False)
    assert isinstance(trainer.codec, UnbiasedHeatmap) and trainer.codec.sigma == 1.5
    assert trainer.train_data.dataset.codec is trainer.codec
    assert trainer.val_data.dataset.codec is trainer.codec
    assert trainer.predict_fn.keywords["codec"] is trainer.codec
    # the setting saved in best.pt's meta decodes as the declared codec does (DARK), not
    # with the refine of the config's own (hrnet) block
    assert trainer.inference.refine == trainer.codec.refine == "dark"
    assert trainer.predict_fn.keywords["setting"].refine == "dark"
    item = trainer.train_data.dataset[0]
    labelled = item["target_weight"].reshape(-1) > 0
    assert torch.any(item["target"].amax((1, 2))[labelled] < 0.99)  # sub-pixel peaks
    # `robustpose test` builds the same codec from the same config
    assert build_codec_for(cfg).config() == trainer.codec.config()
    plain = Trainer(tiny(f"data.root={data_root}", f"output_dir={tmp_path / 'p'}"),
                    device="cpu", progress=False)
    assert type(plain.codec).__name__ == "GaussianHeatmap" and not plain.codec.unbiased
