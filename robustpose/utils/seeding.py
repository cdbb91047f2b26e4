"""Deterministic seeds derived from the parts of a key, never from global state."""
from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: object) -> int:
    """A 32-bit seed from ``seed`` and any number of key parts (image id, corruption, ...).

    The value depends only on the arguments' ``repr`` (a stable hash, not Python's
    per-process ``hash``), so it is the same in every process, worker and order.

    >>> derive_seed(0, 139, "snow", 3) == derive_seed(0, 139, "snow", 3)
    True
    """
    text = "\x1f".join(repr(part) for part in (int(seed), *keys))
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**32)


def rng_from(seed: int, *keys: object) -> np.random.Generator:
    """A numpy Generator seeded from :func:`derive_seed`."""
    return np.random.default_rng(derive_seed(seed, *keys))
