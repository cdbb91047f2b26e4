"""One owner per decoding option: the codec owns its decoding defaults (refine, DARK kernel,
border rule), the inference setting owns feeding and flip; an explicit val.refine, or the
explicit refine a checkpoint's meta stores, still overrides."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robustpose.codecs import InferenceSetting, build_codec, codec_names
from robustpose.codecs.base import codec_decoding
from robustpose.config import build_codec_for, config_from_dict, load_config

REPO = Path(__file__).resolve().parents[1]


def _config(update: dict | None = None) -> dict:
    """A minimal experiment config: the model name (required) plus ``update``."""
    return config_from_dict({"model": {"name": "shufflenetv2"}, **(update or {})})


def _outputs(codec, n: int = 3, k: int = 17) -> torch.Tensor:
    """Seeded outputs of the kind the codec decodes: smooth heatmaps with off-grid peaks
    (so quarter, DARK and none all give different coordinates) or crop coordinates."""
    gen = torch.Generator().manual_seed(7)
    if codec.output_kind == "coords":
        return torch.rand(n, k, 2, generator=gen) * 150.0
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(48.0), indexing="ij")
    centres = torch.rand(n, k, 2, generator=gen) * torch.tensor([40.0, 56.0]) + 4.0
    d2 = (xs - centres[..., :1, None]) ** 2 + (ys - centres[..., 1:, None]) ** 2
    return torch.exp(-d2 / 8.0) + 0.01 * torch.rand(n, k, 64, 48, generator=gen)


@pytest.mark.parametrize("name", codec_names())
def test_a_minimal_config_decodes_as_the_bare_codec(name):
    config = _config({"data": {"codec": {"type": name}}})
    from_config, bare = build_codec_for(config), build_codec(name)
    setting = InferenceSetting.from_config(config)
    outputs = _outputs(bare)
    got, got_scores = from_config.decode(outputs, setting)     # what validation/test/benchmark do
    want, want_scores = bare.decode(outputs)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_scores, want_scores)
    assert from_config.config() == bare.config()


def test_unbiased_alone_refines_with_dark_and_an_explicit_val_refine_overrides():
    config = _config({"data": {"codec": {"type": "unbiased"}}})
    assert config["val"]["refine"] is None                      # no second default in the config
    assert InferenceSetting.from_config(config).refine == "dark"   # was 'quarter' (measured)
    assert build_codec_for(config).refine == "dark"
    quarter = _config({"data": {"codec": {"type": "unbiased"}}, "val": {"refine": "quarter"}})
    assert InferenceSetting.from_config(quarter).refine == "quarter"
    assert build_codec_for(quarter).refine == "quarter"
    outputs = _outputs(build_codec("unbiased"))
    dark = build_codec("unbiased").decode(outputs)[0]
    assert not np.array_equal(dark, build_codec("unbiased").decode(outputs, InferenceSetting.from_config(quarter))[0])
    # the old name and the alias of data.codec reach the same owner
    assert InferenceSetting.from_config(_config({"data": {"target_encoding": "unbiased"}})).refine == "dark"
    old = _config({"data": {"codec": {"type": "unbiased"}}, "val": {"post_process": "none"}})
    assert InferenceSetting.from_config(old).refine == "none"


def test_a_declared_codec_owns_the_decoding_too():
    config = _config()
    assert build_codec_for(config, {"type": "unbiased"}).refine == "dark"
    assert InferenceSetting.from_config(config, codec={"type": "unbiased", "blur_kernel": 5}).dark_kernel == 11
    assert codec_decoding({"type": "unbiased", "blur_kernel": 5}) == {"refine": "dark", "boundary": "hrnet",
                                                                      "dark_kernel": 5}
    assert codec_decoding("regression") == {}


@pytest.mark.parametrize("path", ["configs/synthpose_shufflenetv2_stage2.yaml",
                                  "configs/synthpose_shufflenetv2_stage3.yaml",
                                  "configs/attacks/synthpose_hourglass2.yaml",
                                  "configs/attacks/synthpose_hourglass8.yaml"])
def test_configs_that_dropped_val_refine_dark_build_the_same_setting(path):
    config = load_config(REPO / path, [])
    assert config["val"]["refine"] is None
    setting = InferenceSetting.from_config(config)
    assert (setting.refine, setting.dark_kernel, setting.boundary) == ("dark", 5, "hrnet")
    codec = build_codec_for(config)
    assert (codec.refine, codec.blur_kernel) == ("dark", 5)


def _checkpoint_metas() -> list[dict]:
    """Meta of the training checkpoints of the miniatures where they exist, plus a stand-in
    for an unbiased checkpoint written before this change (explicit 'quarter' stored)."""
    metas = []
    for path in sorted((REPO / "runs").glob("**/best.pt"))[:4]:
        meta = torch.load(path, map_location="cpu", weights_only=True).get("meta") or {}
        if meta.get("inference") and meta.get("codec"):
            metas.append(meta)
    old = InferenceSetting(input_size=(192, 256), refine="quarter").to_dict()
    metas.append({"inference": old, "codec": {"type": "unbiased", "refine": "quarter"}})
    metas.append({"inference": old, "codec": {"type": "unbiased"}})
    return metas


@pytest.mark.parametrize("meta", _checkpoint_metas(), ids=lambda m: m["codec"]["type"])
def test_checkpoint_meta_with_an_explicit_refine_decodes_as_stored(meta):
    setting = InferenceSetting.from_dict(meta["inference"])
    codec = build_codec(meta["codec"])
    outputs = _outputs(codec)
    got = codec.decode(outputs, setting)[0]
    want = build_codec(meta["codec"]).decode(outputs, refine=meta["inference"]["refine"])[0]
    assert setting.refine == meta["inference"]["refine"]
    np.testing.assert_array_equal(got, want)
