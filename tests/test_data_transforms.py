"""HRNet affine geometry: centre -> crop centre, zoom from scale[0], rotation direction."""
from __future__ import annotations

import numpy as np

from robustpose.data import (affine_transform_points, crop_image, fliplr_keypoints,
                             get_affine_transform, get_spec, load_image)


def test_centre_zoom_and_inverse():
    center, scale = np.array([300.0, 200.0], np.float32), np.array([1.2, 1.6], np.float32)
    m = get_affine_transform(center, scale, 0, (192, 256))
    assert np.allclose(affine_transform_points(center, m), [96, 128], atol=1e-3)
    # 240 image px (scale[0] * 200) -> 192 crop px in both directions
    assert np.allclose(m[:, :2], np.eye(2) * 192 / 240, atol=1e-6)
    inv = get_affine_transform(center, scale, 0, (192, 256), inv=True)
    pts = np.array([[10.0, 20.0], [250.0, 300.0]])
    assert np.allclose(affine_transform_points(affine_transform_points(pts, m), inv), pts,
                       atol=1e-3)


def test_rotation_turns_the_person_upright():
    """A point 50 px to the right of the centre lands above the crop centre at rot=90
    (HRNet rotates the source direction counter-clockwise on screen)."""
    m = get_affine_transform([100.0, 100.0], [1.0, 1.0], 90, (200, 200))
    assert np.allclose(affine_transform_points([150.0, 100.0], m), [100, 50], atol=1e-3)
    assert np.allclose(affine_transform_points([100.0, 100.0], m), [100, 100], atol=1e-3)


def test_crop_samples_the_image_at_the_mapped_point(data_root):
    image = load_image(data_root / "coco_val_mini" / "images" / "000000000139.jpg")
    center, scale = np.array([320.0, 210.0]), np.array([0.96, 1.28])  # 192 x 256 px: 1:1 zoom
    crop, m = crop_image(image, center, scale, (192, 256))
    assert crop.shape == (256, 192, 3) and crop.dtype == np.uint8
    for x, y in [(300, 150), (400, 300), (250, 100)]:
        cx, cy = affine_transform_points([float(x), float(y)], m)
        assert np.array_equal(crop[int(round(cy)), int(round(cx))], image[y, x])
    # outside the image: black border
    corner, _ = crop_image(image, [0.0, 0.0], scale, (192, 256))
    assert corner[:100, :80].max() == 0


def test_fliplr_keypoints_mirrors_and_swaps():
    spec = get_spec("coco")
    k = np.zeros((17, 3))
    k[5] = [10, 20, 2]   # left shoulder
    k[6] = [30, 20, 0]   # right shoulder, unlabelled
    out = fliplr_keypoints(k, 100, spec.flip_pairs)
    assert np.allclose(out[6], [89, 20, 2])        # x -> 100 - 1 - 10, now the right one
    assert np.allclose(out[5], [0, 0, 0])          # unlabelled: zeroed (HRNet)
