from pathlib import Path

import pytest

from robustpose.utils.io import atomic_path, atomic_write_text
from robustpose.utils.seeding import derive_seed, rng_from


def test_derive_seed_is_stable_and_key_sensitive():
    assert derive_seed(0, 139, "snow", 3) == derive_seed(0, 139, "snow", 3)
    assert derive_seed(0, 139, "snow", 3) != derive_seed(0, 139, "snow", 4)
    assert derive_seed(1, 139, "snow", 3) != derive_seed(0, 139, "snow", 3)
    # fixed value: the hash must not change between processes or releases
    assert derive_seed(0, "a") == 2238032045
    assert rng_from(5, "x").integers(1 << 30) == rng_from(5, "x").integers(1 << 30)


def test_atomic_write_leaves_no_partial_file(tmp_path: Path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "hello")
    assert target.read_text() == "hello"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "hello"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_write_gives_normal_file_mode(tmp_path: Path):
    import os
    import stat

    target = tmp_path / "mode.txt"
    atomic_write_text(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
