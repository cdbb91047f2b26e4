"""The codec registry: names, config blocks, one-line errors, and new codecs."""
from __future__ import annotations

import numpy as np
import pytest

from robustpose.codecs import (CODECS, Codec, CoordinateRegression, GaussianHeatmap,
                               UnbiasedHeatmap, build_codec, codec_names, register_codec)


def test_the_three_codecs_are_registered():
    assert {"hrnet", "unbiased", "regression"} <= set(codec_names())
    assert isinstance(build_codec("hrnet"), GaussianHeatmap)
    assert isinstance(build_codec({"type": "unbiased"}), UnbiasedHeatmap)
    assert isinstance(build_codec({"type": "regression", "units": "normalized"}),
                      CoordinateRegression)


def test_context_reaches_only_codecs_that_take_it():
    codec = build_codec("regression", input_size=(64, 96), heatmap_size=(16, 24), sigma=2.0)
    assert codec.input_size == (64, 96)
    with pytest.raises(ValueError, match="codec 'regression'.*sigma"):
        build_codec({"type": "regression", "sigma": 2.0})  # a block key must fit


@pytest.mark.parametrize("config, message", [
    ("dark", "unknown codec 'dark'; choose from"),
    ({"sigma": 2.0}, "needs a 'type'"),
    ({"type": "hrnet", "sigmaa": 2.0}, "codec 'hrnet'.*sigmaa"),
    ({"type": "hrnet", "refine": "argmax"}, "refine must be"),
    ({"type": "regression", "units": "mm"}, "units must be"),
])
def test_bad_configs_give_one_line_errors(config, message):
    with pytest.raises(ValueError, match=message) as info:
        build_codec(config)
    assert "\n" not in str(info.value)


def test_a_new_codec_registers_and_builds(monkeypatch):
    monkeypatch.setattr("robustpose.codecs.registry.CODECS", CODECS.copy())
    from robustpose.codecs import base, registry

    @register_codec("with_extra")
    class WithExtra(GaussianHeatmap):
        name = "with_extra"

        def encode(self, keypoints):
            out = super().encode(keypoints)
            out["visible"] = (np.asarray(keypoints)[:, 2] > 1).astype(np.float32)
            return out

    assert registry.CODECS["with_extra"] is WithExtra and "with_extra" not in CODECS
    codec = base.build_codec({"type": "with_extra", "sigma": 1.5})
    out = codec.encode(np.array([[10.0, 10.0, 2.0], [20.0, 20.0, 1.0]]))
    assert set(out) == {"target", "target_weight", "visible"} and list(out["visible"]) == [1, 0]
    with pytest.raises(ValueError, match="already registered"):
        register_codec("with_extra")(GaussianHeatmap)
    assert issubclass(WithExtra, Codec)
