"""Compiled replay of numpy's legacy samplers for the noise corruptions (private).

The noise corruptions must draw exactly what ``np.random.seed(k)`` followed by the
reference's calls draws, and numpy's legacy samplers are already C loops: a faster path
has to do less work per value. These kernels run numpy's own algorithms on the
RandomState's MT19937 stream (:mod:`._mt19937`), compiled:

- ``legacy_gauss`` (Marsaglia's polar method with the cached second value);
- ``random_poisson``: the multiplication method below lam = 10, Hormann's PTRS at and
  above, with ``random_loggam``;
- ``random_sample`` compared with a threshold (salt and pepper).

Where the gain comes from: each per-lam constant of the Poisson sampler (exp(-lam);
sqrt, log and the PTRS hat parameters) is computed once per grey level (a uint8 channel
takes 256 values) instead of once per pixel, loggam(k + 1) comes from a table, and the
corruption's own arithmetic (scale, clip, * 255, cast) is fused into the sampling pass.
Every floating-point operation is the C code's, in its order (no fastmath, so no
contraction or reassociation), and ``log``/``exp``/``sqrt`` are the C library's, so the
samples are the same bits. tests/test_legacy_draws.py compares every kernel with numpy's
samplers over many seeds and states.
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import _jit
from ._mt19937 import _N, Stream, _double, _double_at, _normal_kernel, replayable, uniform


def _loggam_py(x):
    """numpy's ``random_loggam`` (log-gamma by Stirling's series), same operations."""
    if x == 1.0 or x == 2.0:
        return 0.0
    n = int(7 - x) if x < 7.0 else 0
    x0 = x + n
    x2 = (1.0 / x0) * (1.0 / x0)
    gl0 = -1.39243221690590e+00
    for a_k in (1.796443723688307e-01, -2.955065359477124e-02, 6.410256410256410e-03,
                -1.917526917526918e-03, 8.417508417508418e-04, -5.952380952380952e-04,
                7.936507936507937e-04, -2.777777777777778e-03, 8.333333333333333e-02):
        gl0 *= x2
        gl0 += a_k
    gl = gl0 / x0 + 0.5 * 1.8378770664093453e+00 + (x0 - 0.5) * math.log(x0) - x0
    if x < 7.0:
        for _ in range(n):
            gl -= math.log(x0 - 1.0)
            x0 -= 1.0
    return gl


_loggam = _jit(_loggam_py)


def _poisson_tables_py(levels, table_size):
    """Per level: exp(-lam) (multiplication method) or sqrt/log and PTRS's hat constants,
    as ``random_poisson_ptrs`` computes them; and loggam(k + 1) for k < table_size."""
    count = levels.shape[0]
    tables = np.zeros((6, count))  # enlam, loglam, a, b, log(invalpha), vr
    for i in range(count):
        lam = levels[i]
        if lam >= 10:
            slam = math.sqrt(lam)
            tables[1, i] = math.log(lam)
            b = 0.931 + 2.53 * slam
            tables[2, i] = -0.059 + 0.02483 * b
            tables[3, i] = b
            tables[4, i] = math.log(1.1239 + 1.1328 / (b - 3.4))
            tables[5, i] = 0.9277 - 3.6224 / (b - 2)
        elif lam > 0:
            tables[0, i] = math.exp(-lam)
    loggam = np.empty(table_size)
    for k in range(table_size):
        loggam[k] = _loggam(k + 1.0)
    return tables, loggam


_poisson_tables = _jit(_poisson_tables_py)


def _poisson_levels_py(key, buf, pos, image, levels, tables, loggam, cap, counts_out):
    """``counts_out = min(RandomState.poisson(levels[image]), cap)`` for flat uint8 ``image``;
    returns the new MT position."""
    table_size = loggam.shape[0]
    for p in range(image.shape[0]):
        i = image[p]
        lam = levels[i]
        if lam >= 10:
            loglam, a, b, lia, vr = tables[1, i], tables[2, i], tables[3, i], tables[4, i], tables[5, i]
            while True:
                if pos <= _N - 4:  # inside the block (written out here: a call costs ~30%)
                    u, v = _double_at(buf, pos), _double_at(buf, pos + 2)
                    pos += 4
                else:
                    u, pos = _double(key, buf, pos)
                    v, pos = _double(key, buf, pos)
                u -= 0.5
                us = 0.5 - abs(u)
                k = np.int64(math.floor((2 * a / us + b) * u + lam + 0.43))
                if us >= 0.07 and v <= vr:
                    break
                if k < 0 or (us < 0.013 and v > us):
                    continue
                lg = loggam[k] if k < table_size else _loggam(k + 1.0)
                if (math.log(v) + lia - math.log(a / (us * us) + b)) <= (-lam + k * loglam - lg):
                    break
            counts_out[p] = min(k, cap)
        elif lam == 0:
            counts_out[p] = 0
        else:
            limit = tables[0, i]
            x = 0
            prod = 1.0
            while True:
                if pos <= _N - 2:  # inside the current block
                    u = _double_at(buf, pos)
                    pos += 2
                else:
                    u, pos = _double(key, buf, pos)
                prod *= u
                if prod > limit:
                    x += 1
                else:
                    break
            counts_out[p] = min(x, cap)
    return pos


_poisson_levels = _jit(_poisson_levels_py)


def _salt_pepper_py(key, buf, pos, flipped, table, image, out):
    """Second pass of salt & pepper: for every value draw ``salt = random_sample() <= 0.5``;
    ``out = 255 if flipped and salt, 0 if flipped, else table[image]``."""
    for p in range(out.shape[0]):
        if pos <= _N - 2:
            u = _double_at(buf, pos)
            pos += 2
        else:
            u, pos = _double(key, buf, pos)
        if flipped[p]:
            out[p] = 255 if u <= 0.5 else 0
        else:
            out[p] = table[image[p]]
    return pos


_salt_pepper = _jit(_salt_pepper_py)


# ---------------------------------------------------------------------------------- API
def poisson_levels(rng: np.random.RandomState, levels: np.ndarray, image: np.ndarray,
                   cap: int | None = None) -> np.ndarray:
    """``rng.poisson(levels[image])`` for uint8 ``image`` and 256 float64 ``levels``: the
    same counts, and ``rng`` left in the same state. Counts are int64, or, given ``cap`` <
    256, ``min(count, cap)`` as uint8."""
    flat = np.ascontiguousarray(image).reshape(-1)
    levels = np.ascontiguousarray(levels, np.float64)
    tables, loggam = _poisson_tables(levels, int(levels.max() * 4 + 64))
    if cap is not None and cap < 256:
        counts = np.empty(flat.shape[0], np.uint8)
    else:
        counts, cap = np.empty(flat.shape[0], np.int64), np.iinfo(np.int64).max
    stream = Stream(rng)
    stream.pos = _poisson_levels(stream.key, stream.buf, stream.pos, flat, levels, tables,
                                 loggam, np.int64(cap), counts)
    stream.close()
    return counts.reshape(image.shape)


def normal_add_u8(rng: np.random.RandomState, image: np.ndarray, scale: float,
                  multiplicative: bool = False) -> np.ndarray:
    """``uint8(clip(x + n, 0, 1) * 255)`` with ``x = image / 255.`` and ``n =
    rng.normal(size=image.shape, scale=scale)``; ``x + x * n`` when ``multiplicative``."""
    flat = np.ascontiguousarray(image).reshape(-1)
    out = np.empty(flat.shape[0], np.uint8)
    stream = Stream(rng)
    stream.pos = _normal_kernel(stream.key, stream.buf, stream.pos, stream.gauss, 0.0,
                                float(scale), flat, 2 if multiplicative else 1, out)
    stream.close()
    return out.reshape(image.shape)


def uniform_below(rng: np.random.RandomState, shape: tuple[int, ...], threshold: float) -> np.ndarray:
    """``rng.random_sample(shape) <= threshold`` (``0.0 + 1.0 * u`` is ``u`` exactly)."""
    return uniform(rng, 0.0, 1.0, shape) <= threshold


def salt_and_pepper_u8(rng: np.random.RandomState, image: np.ndarray, amount: float,
                       table: np.ndarray) -> np.ndarray:
    """``flipped = rng.random_sample(shape) <= amount``, ``salt = rng.random_sample(shape)
    <= 0.5``; 255 where both, 0 where flipped only, ``table[image]`` elsewhere."""
    flat = np.ascontiguousarray(image).reshape(-1)
    flipped = uniform_below(rng, flat.shape, amount)
    out = np.empty(flat.shape[0], np.uint8)
    stream = Stream(rng)
    stream.pos = _salt_pepper(stream.key, stream.buf, stream.pos, flipped, table, flat, out)
    stream.close()
    return out.reshape(image.shape)
