"""Keypoints <-> training targets and back: Gaussian heatmaps, flip test, decoding."""
from .gaussian import GaussianHeatmap, get_max_preds, refine_dark, refine_quarter
from .inference import (flip_heatmaps, heatmaps_to_image_coords, predict_heatmaps,
                        predict_keypoints)

__all__ = ["GaussianHeatmap", "get_max_preds", "refine_quarter", "refine_dark",
           "flip_heatmaps", "heatmaps_to_image_coords", "predict_heatmaps",
           "predict_keypoints"]
