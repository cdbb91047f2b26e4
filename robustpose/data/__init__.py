"""Keypoint datasets, the HRNet top-down transform, augmentation and corrupted views.

See docs/data.md for the conventions (center/scale, decoding, flip test) and layouts.
"""
from .augment import AugmentParams, TopDownAugment
from .coco import guess_spec, load_coco_records, spec_for_annotations
from .corrupted import LAYOUTS, CorruptedFolder, CorruptedImages, corrupted_image_path
from .corrupted_writer import WriterSettings, write_corrupted_dataset
from .dataset import TopDownDataset, split_valid_batch
from .images import ImageReadError, load_image, resolve_under_root
from .mpii import head_sizes_from_mat, load_mpii_records
from .records import PersonRecord
from .registry import (FROM_JSON, DatasetInfo, LoadedDataset, SplitLayout, find_dataset_files,
                       get_dataset_info, keypoint_count, list_datasets, load_dataset,
                       register_dataset)
from .specs import SPEC_NAMES, KeypointSpec, get_spec, resolve_spec, spec_from_category
from .transforms import (PIXEL_STD, affine_transform_points, box_to_center_scale,
                         center_scale_to_box, crop_image, fliplr_keypoints,
                         get_affine_transform)

__all__ = [
    "AugmentParams", "TopDownAugment", "guess_spec", "load_coco_records", "LAYOUTS",
    "CorruptedFolder", "CorruptedImages", "corrupted_image_path", "TopDownDataset",
    "split_valid_batch", "ImageReadError", "load_image", "resolve_under_root",
    "head_sizes_from_mat", "load_mpii_records", "PersonRecord", "SPEC_NAMES", "KeypointSpec",
    "get_spec", "spec_from_category", "resolve_spec", "spec_for_annotations", "PIXEL_STD",
    "affine_transform_points",
    "box_to_center_scale", "center_scale_to_box", "crop_image", "fliplr_keypoints",
    "get_affine_transform",
    "WriterSettings", "write_corrupted_dataset",
    "FROM_JSON", "DatasetInfo", "LoadedDataset", "SplitLayout", "find_dataset_files",
    "get_dataset_info", "keypoint_count", "list_datasets", "load_dataset", "register_dataset",
]
