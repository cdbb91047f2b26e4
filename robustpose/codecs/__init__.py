"""Keypoints <-> training targets and back: the codec protocol, its registry, the codecs
(``hrnet`` Gaussian heatmaps, ``unbiased`` DARK heatmaps, ``regression`` coordinates,
``hdhr`` highly differentiated heatmaps),
the one inference setting and the one decode path (flip test, decoding, back-projection)."""
from .base import CODECS, Codec, build_codec, codec_names, register_codec
from .registry import codec_decoding, config_codec_block
from .gaussian import (GaussianHeatmap, UnbiasedHeatmap, flip_heatmaps, get_max_preds,
                       refine_dark, refine_quarter)
from .inference import (codec_for_outputs, decode_outputs, heatmaps_to_image_coords,
                        predict_heatmaps, predict_keypoints)
from .regression import CoordinateRegression
from .hdhr import HDHRCodec
from .setting import InferenceSetting

__all__ = ["Codec", "CODECS", "build_codec", "codec_names", "register_codec",
           "codec_decoding", "config_codec_block",
           "GaussianHeatmap", "UnbiasedHeatmap", "CoordinateRegression", "HDHRCodec", "InferenceSetting",
           "get_max_preds", "refine_quarter", "refine_dark", "flip_heatmaps",
           "heatmaps_to_image_coords", "predict_heatmaps", "predict_keypoints",
           "decode_outputs", "codec_for_outputs"]
