"""The noise corruptions draw what numpy's legacy samplers draw: through ``corrupt(...,
seed=rng)`` the same values as ``RandomState.normal / poisson / random_sample`` and the same
final state (MT19937 words, position, cached Gaussian), from fresh seeds and from states part
way through a block, with a cached Gaussian, or at a block's last word (the compiled replay,
``_legacy_draws``), and from a PCG64 generator (numpy's own samplers).

The MT19937 word stream itself (``_mt19937``) is tested directly at chosen word counts
(0, 1, 623, 624, 625, ...): no public function draws a count the caller can choose."""
from __future__ import annotations

import numpy as np
import pytest

from robustpose.corruptions import _mt19937 as stream
from robustpose.corruptions import corrupt
from robustpose.corruptions.params import SEVERITY_PARAMS

NEEDS_NUMBA = pytest.mark.skipif(not stream.HAVE_NUMBA, reason="the replay needs numba")


def same_state(a: np.random.RandomState, b: np.random.RandomState) -> bool:
    sa, sb = a.get_state(), b.get_state()
    return (np.array_equal(sa[1], sb[1]) and sa[2] == sb[2] and sa[3] == sb[3]
            and sa[4] == sb[4])


def twin_states(seed: int, warmup: str) -> tuple[np.random.RandomState, np.random.RandomState]:
    """Two identical RandomStates, advanced by ``warmup`` draws (odd word counts, a cached
    Gaussian, a position at the end of a block)."""
    pair = []
    for _ in range(2):
        rng = np.random.RandomState(seed)
        if warmup == "odd":
            rng.randint(0, 2**32, size=7, dtype=np.uint32)
        elif warmup == "cached_gauss":
            rng.normal()
        elif warmup == "block_end":
            rng.randint(0, 2**32, size=623, dtype=np.uint32)
        elif warmup == "block_done":
            rng.randint(0, 2**32, size=624, dtype=np.uint32)
        pair.append(rng)
    return pair[0], pair[1]


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """Every byte value, plus random ones: 61 x 67 x 3 (odd sizes)."""
    values = np.random.RandomState(11).randint(0, 256, (61, 67, 3)).astype(np.uint8)
    values.reshape(-1)[:256] = np.arange(256, dtype=np.uint8)
    return values


WARMUPS = ["none", "odd", "cached_gauss", "block_end", "block_done"]


def sampler_twins(seed: int, warmup: str, kind: str):
    """Two identical generators: legacy MT19937 ``RandomState``s advanced by ``warmup`` (the
    compiled replay) or ``Generator``s on PCG64 (numpy's own samplers), each paired with
    the ``RandomState`` the corruption draws from (``resolve_rng``)."""
    if kind == "legacy":
        ours, ref = twin_states(seed, warmup)
        return ours, ref
    ours = np.random.default_rng(seed)
    return ours, np.random.RandomState(np.random.default_rng(seed).bit_generator)


def same_after(ours, ref: np.random.RandomState) -> bool:
    """Both generators at the same point of their streams (the next double agrees)."""
    if isinstance(ours, np.random.Generator):
        return ours.random() == ref.random_sample()
    return same_state(ours, ref)


CASES = [(w, "legacy") for w in WARMUPS] + [("none", "pcg64")]


@pytest.mark.parametrize("warmup,kind", CASES)
@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_shot_noise_draws_what_numpy_poisson_draws(image, warmup, kind, severity):
    """``corrupt(..., seed=rng)``: the reference's ``poisson(x * c) / c`` from the same state,
    and the generator left where numpy's sampler leaves it."""
    photons = SEVERITY_PARAMS["shot_noise"][severity - 1]
    for seed in range(2):
        ours, ref = sampler_twins(seed, warmup, kind)
        counts = ref.poisson(image / 255.0 * photons)
        expected = (np.clip(counts / float(photons), 0, 1) * 255).astype(np.uint8)
        np.testing.assert_array_equal(corrupt(image, "shot_noise", severity, seed=ours), expected)
        assert same_after(ours, ref)


@pytest.mark.parametrize("warmup,kind", CASES)
@pytest.mark.parametrize("name", ["gaussian_noise", "speckle_noise"])
def test_gaussian_and_speckle_draw_what_numpy_normal_draws(image, warmup, kind, name):
    for severity in (1, 3, 5):
        scale = SEVERITY_PARAMS[name][severity - 1]
        ours, ref = sampler_twins(severity, warmup, kind)
        x = image / 255.0
        noise = ref.normal(size=image.shape, scale=scale)
        expected = (np.clip(x + x * noise if name == "speckle_noise" else x + noise, 0, 1)
                    * 255).astype(np.uint8)
        np.testing.assert_array_equal(corrupt(image, name, severity, seed=ours), expected)
        assert same_after(ours, ref)
        if kind == "legacy":
            assert ours.normal() == ref.normal()  # the cached Gaussian carried over too


@pytest.mark.parametrize("warmup,kind", CASES)
def test_impulse_noise_draws_two_uniform_fields(image, warmup, kind):
    """scikit-image's s&p from a legacy stream: flip where U <= amount, salt where U' <= 0.5,
    unflipped values through the reference's float round trip."""
    for severity in (1, 5):
        amount = SEVERITY_PARAMS["impulse_noise"][severity - 1]
        ours, ref = sampler_twins(severity, warmup, kind)
        flipped = ref.random_sample(image.shape) <= amount
        salted = ref.random_sample(image.shape) <= 0.5
        expected = (np.clip(image / 255.0, 0, 1) * 255).astype(np.uint8)
        expected[flipped & salted] = 255
        expected[flipped & ~salted] = 0
        np.testing.assert_array_equal(corrupt(image, "impulse_noise", severity, seed=ours),
                                      expected)
        assert same_after(ours, ref)


@NEEDS_NUMBA
def test_only_legacy_mt19937_states_are_replayed():
    assert stream.replayable(np.random.RandomState(0))
    assert not stream.replayable(np.random.default_rng(0))
    assert not stream.replayable(np.random.RandomState(np.random.PCG64(0)))


@pytest.mark.parametrize("warmup", WARMUPS)
def test_raw_words_match_numpy(warmup):
    for count in (0, 1, 623, 624, 625, 5000):
        ours, ref = twin_states(count, warmup)
        np.testing.assert_array_equal(stream.raw_uint32(ours, count),
                                      ref.randint(0, 2**32, size=count, dtype=np.uint32))
        assert same_state(ours, ref)
    pcg = np.random.RandomState(np.random.PCG64(0))  # not replayable: numpy's own path
    np.testing.assert_array_equal(stream.raw_uint32(pcg, 9), np.random.RandomState(
        np.random.PCG64(0)).randint(0, 2**32, size=9, dtype=np.uint32))


@pytest.mark.parametrize("warmup", WARMUPS)
def test_uniform_and_normal_arrays_match_numpy(warmup):
    for seed, (low, high, loc, scale, size) in enumerate([(-45, 45, 0.0, 1.0, 7),
                                                          (-3.3, 0.7, 0.1, 0.3, (33, 41))]):
        ours, ref = twin_states(seed, warmup)
        np.testing.assert_array_equal(stream.uniform(ours, low, high, size), ref.uniform(low, high, size))
        np.testing.assert_array_equal(stream.normal(ours, loc, scale, size), ref.normal(loc, scale, size))
        assert same_state(ours, ref)
        assert ours.normal() == ref.normal()
