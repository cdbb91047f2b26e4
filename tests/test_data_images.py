"""load_image: RGB uint8 from real files; one-line ImageReadError naming the file otherwise."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from robustpose.data import ImageReadError, load_image


def test_reads_rgb_like_pillow(data_root):
    path = data_root / "coco_val_mini" / "images" / "000000000139.jpg"
    image = load_image(path)
    ref = np.asarray(Image.open(path).convert("RGB"))
    assert image.dtype == np.uint8 and image.shape == ref.shape
    # two JPEG decoders (libjpeg builds) may differ by a few levels, never by channel order
    assert np.abs(image.astype(int) - ref).mean() < 1.0
    png = data_root / "rhd_mini" / "images" / "00111.png"
    assert np.array_equal(load_image(png), np.asarray(Image.open(png).convert("RGB")))


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated_jpg", "truncated_png",
                                  "directory"])
def test_bad_images_raise_one_line_error_naming_the_file(tmp_path, data_root, kind):
    path = tmp_path / f"bad_{kind}.jpg"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not an image\n")
    elif kind == "truncated_jpg":
        data = (data_root / "coco_val_mini" / "images" / "000000000139.jpg").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated_png":
        data = (data_root / "rhd_mini" / "images" / "00111.png").read_bytes()
        path = tmp_path / "bad.png"
        path.write_bytes(data[: len(data) // 2])
    elif kind == "directory":
        path.mkdir()
    with pytest.raises(ImageReadError) as err:
        load_image(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    assert isinstance(err.value, ValueError) and err.value.path == path


def test_all_shared_images_read(data_root):
    """No false 'truncated' alarms on the real images (JPEG end-marker check)."""
    paths = [p for p in data_root.glob("*/images/*") if p.suffix.lower() in (".jpg", ".png")]
    assert len(paths) >= 70
    for p in paths:
        assert load_image(p).ndim == 3
