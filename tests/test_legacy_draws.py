"""The compiled replay of numpy's legacy samplers (robustpose.corruptions._legacy_draws):
the same values as ``RandomState.normal / poisson / random_sample`` and the same final
state (MT19937 words, position, cached Gaussian), from fresh seeds and from states part
way through a block, with a cached Gaussian, or at a block's last word."""
from __future__ import annotations

import numpy as np
import pytest

from robustpose.corruptions import _legacy_draws as draws
from robustpose.corruptions import _mt19937 as stream
from robustpose.corruptions import corrupt
from robustpose.corruptions.params import SEVERITY_PARAMS

pytestmark = pytest.mark.skipif(not stream.HAVE_NUMBA, reason="the replay needs numba")


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


@pytest.mark.parametrize("warmup", WARMUPS)
@pytest.mark.parametrize("photons", SEVERITY_PARAMS["shot_noise"] + (400,))
def test_poisson_matches_numpy(image, warmup, photons):
    levels = (np.arange(256) / 255.0) * photons
    for seed in range(3):
        ours, ref = twin_states(seed, warmup)
        expected = ref.poisson(np.take(levels, image))
        got = draws.poisson_levels(ours, levels, image)
        assert got.shape == image.shape
        np.testing.assert_array_equal(got, expected)
        assert same_state(ours, ref)
        assert ours.random_sample() == ref.random_sample()
    ours, ref = twin_states(5, warmup)
    capped = draws.poisson_levels(ours, levels, image, cap=7)
    assert capped.dtype == np.uint8
    np.testing.assert_array_equal(capped, np.minimum(ref.poisson(np.take(levels, image)), 7))
    assert same_state(ours, ref)


@pytest.mark.parametrize("warmup", WARMUPS)
@pytest.mark.parametrize("multiplicative", [False, True])
def test_normal_matches_numpy(image, warmup, multiplicative):
    for seed, scale in enumerate([0.08, 0.38, 0.6]):
        ours, ref = twin_states(seed, warmup)
        x = image / 255.0
        noise = ref.normal(size=image.shape, scale=scale)
        expected = (np.clip(x + x * noise if multiplicative else x + noise, 0, 1) * 255).astype(np.uint8)
        got = draws.normal_add_u8(ours, image, scale, multiplicative=multiplicative)
        np.testing.assert_array_equal(got, expected)
        assert same_state(ours, ref)
        assert ours.normal() == ref.normal()  # the cached Gaussian carried over too


@pytest.mark.parametrize("warmup", WARMUPS)
def test_uniform_and_salt_pepper_match_numpy(image, warmup):
    table = np.arange(256, dtype=np.uint8)[::-1].copy()
    for seed, amount in enumerate([0.03, 0.27]):
        ours, ref = twin_states(seed, warmup)
        flipped = ref.random_sample(image.shape) <= amount
        salted = ref.random_sample(image.shape) <= 0.5
        expected = table[image]
        expected[flipped & salted] = 255
        expected[flipped & ~salted] = 0
        np.testing.assert_array_equal(draws.salt_and_pepper_u8(ours, image, amount, table), expected)
        assert same_state(ours, ref)
        ours, ref = twin_states(seed, warmup)
        np.testing.assert_array_equal(draws.uniform_below(ours, (5, 251), amount),
                                      ref.random_sample((5, 251)) <= amount)
        assert same_state(ours, ref)


def test_only_legacy_mt19937_states_are_replayed():
    assert stream.replayable(np.random.RandomState(0))
    assert not stream.replayable(np.random.default_rng(0))
    assert not stream.replayable(np.random.RandomState(np.random.PCG64(0)))


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"])
def test_noise_corruptions_same_with_and_without_replay(monkeypatch, image, name):
    """The corruption through the replay equals its numpy-sampler path for the same seed."""
    big = np.tile(image, (2, 2, 1))
    for severity in (1, 5):
        fast = corrupt(big, name, severity, seed=severity)
        monkeypatch.setattr(draws, "replayable", lambda rng: False)
        slow = corrupt(big, name, severity, seed=severity)
        monkeypatch.undo()
        np.testing.assert_array_equal(fast, slow)


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
