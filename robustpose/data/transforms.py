"""The top-down geometry, re-exported: it lives in :mod:`robustpose.geometry` (below the
codecs, which need it without importing ``data``)."""
from robustpose.geometry import (PIXEL_STD, affine_transform_points, box_to_center_scale,
                                 center_scale_to_box, crop_image, fliplr_keypoints,
                                 get_affine_transform)

__all__ = ["PIXEL_STD", "box_to_center_scale", "center_scale_to_box", "get_affine_transform",
           "affine_transform_points", "crop_image", "fliplr_keypoints"]
