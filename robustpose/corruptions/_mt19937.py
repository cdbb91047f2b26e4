"""numpy's legacy MT19937 stream, compiled (private; used by :mod:`._legacy_draws`).

A legacy ``RandomState``'s state (``get_state``: 624 key words and a position) is copied
into a :class:`Stream`, advanced by compiled kernels that run numpy's own code, and
written back with ``set_state``, so the RandomState ends exactly where numpy's samplers
would leave it:

- ``mt19937_gen`` (the next 624 key words; a loop LLVM vectorises) and the tempering of
  ``mt19937_next``; raw words are what ``randint(0, 2**32, dtype=uint32)`` returns;
- ``mt19937_next_double``: ``((a >> 5) * 2**26 + (b >> 6)) / 2**53`` from two words;
- ``legacy_gauss``' polar step (inlined in each sampling loop); ``RandomState.uniform`` (``low + range * double``) and
  ``RandomState.normal`` (``loc + scale * gauss``).

Kernels keep the block of 624 tempered words in ``buf`` and the position in a local
variable, and read words straight from the block. No fastmath: every float operation is
numpy's C code's, in its order, with the C library's ``log`` and ``sqrt``.
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import HAVE_NUMBA, _jit

_N = 624
_M = 397


def _refill_py(key, buf):
    """numpy's ``mt19937_gen`` (the next 624 state words, in place), then the tempered
    outputs of those words into ``buf``."""
    upper, lower, matrix = np.uint32(0x80000000), np.uint32(0x7FFFFFFF), np.uint32(0x9908B0DF)
    one, zero = np.uint32(1), np.uint32(0)
    for i in range(_N - _M):
        y = (key[i] & upper) | (key[i + 1] & lower)
        key[i] = key[i + _M] ^ (y >> one) ^ ((zero - (y & one)) & matrix)
    for i in range(_N - _M, _N - 1):
        y = (key[i] & upper) | (key[i + 1] & lower)
        key[i] = key[i + _M - _N] ^ (y >> one) ^ ((zero - (y & one)) & matrix)
    y = (key[_N - 1] & upper) | (key[0] & lower)
    key[_N - 1] = key[_M - 1] ^ (y >> one) ^ ((zero - (y & one)) & matrix)
    _temper_all(key, buf)


def _temper_all_py(key, buf):
    """``mt19937_next``'s tempering of every state word."""
    for i in range(_N):
        y = key[i]
        y ^= y >> np.uint32(11)
        y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
        y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
        y ^= y >> np.uint32(18)
        buf[i] = y


_temper_all = _jit(_temper_all_py)
_refill = _jit(_refill_py)


def _double_py(key, buf, pos):
    """``mt19937_next_double`` (two words, 53 random bits): returns (value, new pos)."""
    if pos == _N:
        _refill(key, buf)
        pos = 0
    a = np.int64(buf[pos] >> np.uint32(5))
    pos += 1
    if pos == _N:
        _refill(key, buf)
        pos = 0
    b = np.int64(buf[pos] >> np.uint32(6))
    return (a * 67108864.0 + b) / 9007199254740992.0, pos + 1


_double = _jit(_double_py)


def _double_at_py(buf, pos):
    """``next_double`` from words ``pos`` and ``pos + 1`` of the block (the caller checks
    ``pos <= 622``): the fast path of the sampling loops."""
    return (np.int64(buf[pos] >> np.uint32(5)) * 67108864.0
            + np.int64(buf[pos + 1] >> np.uint32(6))) / 9007199254740992.0


_double_at = _jit(_double_at_py)


def _raw_words_py(key, buf, pos, out):
    """``out = randint(0, 2**32, size=out.size, dtype=uint32)``: raw tempered words."""
    n = out.shape[0]
    p = 0
    while p < n:
        if pos == _N:
            _refill(key, buf)
            pos = 0
        take = min(n - p, _N - pos)
        out[p:p + take] = buf[pos:pos + take]
        p += take
        pos += take
    return pos


_raw_words = _jit(_raw_words_py)


def _uniform_fill_py(key, buf, pos, low, span, out):
    """``out = low + span * random_sample()`` in order (``RandomState.uniform``)."""
    n = out.shape[0]
    p = 0
    while p < n:
        if pos >= _N - 1:  # a double across two blocks, or an exhausted block
            u, pos = _double(key, buf, pos)
            out[p] = low + span * u
            p += 1
            continue
        stop = min(n, p + (_N - pos) // 2)
        for q in range(p, stop):
            out[q] = low + span * _double_at(buf, pos)
            pos += 2
        p = stop
    return pos


_uniform_fill = _jit(_uniform_fill_py)


def _normal_kernel_py(key, buf, pos, gauss, loc, scale, image, mode, out):
    """``n = loc + scale * legacy_gauss()`` for every output value, in order; ``gauss`` =
    [has_gauss, cached value], updated. ``mode`` 0: ``out = n`` (``RandomState.normal``);
    1: ``out = uint8(clip(x + n, 0, 1) * 255)``; 2: the same of ``x + x * n``, with
    ``x = image / 255.`` (flat uint8; gaussian and speckle noise). Returns the new position."""
    has_gauss = gauss[0] != 0.0
    cached = gauss[1]
    for p in range(out.shape[0]):
        if has_gauss:
            g = cached
            has_gauss = False
            cached = 0.0
        else:
            while True:
                if pos <= _N - 4:  # inside the block (written out here: a call costs ~30%)
                    x1, x2 = _double_at(buf, pos), _double_at(buf, pos + 2)
                    pos += 4
                else:
                    x1, pos = _double(key, buf, pos)
                    x2, pos = _double(key, buf, pos)
                x1 = 2.0 * x1 - 1.0
                x2 = 2.0 * x2 - 1.0
                r2 = x1 * x1 + x2 * x2
                if not (r2 >= 1.0 or r2 == 0.0):
                    break
            f = math.sqrt(-2.0 * math.log(r2) / r2)  # legacy_gauss' polar step
            g = f * x2
            cached = f * x1
            has_gauss = True
        n = loc + scale * g
        if mode == 0:
            out[p] = n
        else:
            x = image[p] / 255.0
            v = x + x * n if mode == 2 else x + n
            out[p] = np.uint8(min(max(v, 0.0), 1.0) * 255)
    gauss[0] = 1.0 if has_gauss else 0.0
    gauss[1] = cached
    return pos


_normal_kernel = _jit(_normal_kernel_py)


# ---------------------------------------------------------------------------------- API
def replayable(rng) -> bool:
    """True when ``rng`` is a legacy RandomState over MT19937 and numba is present."""
    if not HAVE_NUMBA or not isinstance(rng, np.random.RandomState):
        return False
    return rng.get_state(legacy=False).get("bit_generator") == "MT19937"


class Stream:
    """A RandomState's MT19937 state lent to the kernels; ``close`` writes it back."""

    def __init__(self, rng: np.random.RandomState) -> None:
        self.rng = rng
        name, key, pos, has_gauss, cached = rng.get_state(legacy=True)
        self.key = np.array(key, dtype=np.uint32)
        self.buf = np.empty(_N, np.uint32)
        _temper_all(self.key, self.buf)
        self.pos = int(pos)
        self.gauss = np.array([float(has_gauss), float(cached)])

    def close(self) -> None:
        self.rng.set_state(("MT19937", self.key, self.pos, int(self.gauss[0] != 0.0),
                            float(self.gauss[1])))


def raw_uint32(rng, count: int) -> np.ndarray:
    """``rng.randint(0, 2**32, size=count, dtype=np.uint32)`` (one raw MT19937 word each),
    compiled for legacy RandomStates; any other generator goes through numpy."""
    if not replayable(rng):
        return rng.randint(0, 2**32, size=count, dtype=np.uint32)
    out = np.empty(int(count), np.uint32)
    stream = Stream(rng)
    stream.pos = _raw_words(stream.key, stream.buf, stream.pos, out)
    stream.close()
    return out


def _filled(rng, size, fill) -> np.ndarray:
    """A float64 array of ``size`` filled by ``fill(stream, flat_out)`` (the new position)."""
    shape = (int(size),) if np.isscalar(size) else tuple(int(v) for v in size)
    out = np.empty(int(np.prod(shape)), np.float64)
    stream = Stream(rng)
    stream.pos = fill(stream, out)
    stream.close()
    return out.reshape(shape)


_NO_IMAGE = np.zeros(0, np.uint8)


def uniform(rng, low: float, high: float, size) -> np.ndarray:
    """``rng.uniform(low, high, size)`` (float64), compiled for legacy RandomStates."""
    if not replayable(rng):
        return rng.uniform(low, high, size)
    return _filled(rng, size, lambda st, out: _uniform_fill(
        st.key, st.buf, st.pos, float(low), float(high) - float(low), out))


def normal(rng, loc: float, scale: float, size) -> np.ndarray:
    """``rng.normal(loc, scale, size)`` (float64), compiled for legacy RandomStates."""
    if not replayable(rng):
        return rng.normal(loc, scale, size)
    return _filled(rng, size, lambda st, out: _normal_kernel(
        st.key, st.buf, st.pos, st.gauss, float(loc), float(scale), _NO_IMAGE, 0, out))
