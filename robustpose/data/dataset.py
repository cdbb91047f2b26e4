"""The top-down torch Dataset: full image -> (corruption) -> affine crop -> targets.

Unreadable images: with ``skip_unreadable=True`` an item whose image cannot be read is
returned *marked invalid* (``meta['valid'] = False``, ``meta['error']`` = the one-line
reason naming the file, zero image/target/weight) instead of raising, so a long
DataLoader run (any worker count) finishes the rest; :func:`split_valid_batch` separates
such items from a collated batch and reports them, and the dataset also lists the paths
it skipped in the current process in ``dataset.skipped``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..codecs.base import Codec
from ..codecs.gaussian import GaussianHeatmap
from ..geometry import PIXEL_STD, affine_transform_points, crop_image, fliplr_keypoints
from ..utils.seeding import rng_from
from .augment import TopDownAugment
from .coco import check_image_size
from .images import ImageReadError, load_image
from .records import PersonRecord
from .specs import KeypointSpec
from .stylized import StylizedImages

__all__ = ["TopDownDataset", "split_valid_batch"]

ImageTransform = Callable[[np.ndarray, PersonRecord], np.ndarray]


class TopDownDataset(Dataset):
    """Person crops for top-down pose models (HRNet conventions).

    Item: ``{'image': float32 3 x H x W in [0, 1] RGB, 'target': ..., 'target_weight':
    K x 1, <codec keys>, 'meta': {...}}``: every key the codec's ``encode`` returns, as a
    tensor (``target``: K x h x w heatmaps for the Gaussian codecs, K x 2 for regression;
    ``target_weight`` reshaped to K x 1). ``codec``: any
    :class:`~robustpose.codecs.Codec` (default: the HRNet Gaussian of ``input_size`` /
    ``heatmap_size`` / ``sigma``; give the experiment's codec so one instance makes the
    targets and decodes the predictions). ``encode_targets=False`` skips encoding
    (evaluation: ``target`` is an empty K x 0 x 0 tensor, ``target_weight`` ones).
    Meta keys: ``index``, ``image_id``,
    ``center``/``scale`` (2,) as used for the crop, ``score`` (box score), ``area``
    (HRNet's ``prod(scale * 200)``, what its OKS-NMS uses), ``gt_area`` (the record's
    ``area``), ``bbox`` (xywh), ``rotation`` (deg), ``flipped``, ``keypoints`` (K, 3: the
    record's image-pixel keypoints, zeros when unknown), ``joints`` (K, 3: keypoints in
    input-crop pixels after augmentation, vis 0/1), ``head_size`` (MPII, NaN if unknown),
    ``image_path``, ``valid``, ``error``, ``stylized``.

    ``image_transform(image_uint8_rgb, record)`` runs on the full image before cropping
    (corruptions: :class:`~robustpose.data.CorruptedImages`). ``stylized``: a
    :class:`~robustpose.data.stylized.StylizedImages` read instead of the original with its
    probability, drawn from ``(seed, 'stylized', epoch, index)`` (meta ``stylized``: which
    was read). ``train=True`` applies
    ``augment`` (default HRNet COCO parameters) drawn from ``(seed, epoch, index)``; call
    :meth:`set_epoch` each epoch (with non-persistent DataLoader workers).
    """

    def __init__(self, records: Sequence[PersonRecord], spec: KeypointSpec,
                 input_size: Sequence[int] = (192, 256), heatmap_size: Sequence[int] = (48, 64),
                 sigma: float = 2.0, train: bool = False, augment: TopDownAugment | None = None,
                 image_transform: ImageTransform | None = None, seed: int = 0,
                 skip_unreadable: bool = False, codec: Codec | None = None,
                 encode_targets: bool = True, stylized: StylizedImages | None = None) -> None:
        if len(records) == 0:
            raise ValueError("TopDownDataset: no person records (empty dataset)")
        self.records = list(records)
        self.spec = spec
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.codec = codec or GaussianHeatmap(self.input_size, self.heatmap_size, sigma)
        codec_size = getattr(self.codec, "input_size", self.input_size)
        if tuple(codec_size) != self.input_size:
            raise ValueError(f"TopDownDataset: codec input_size {tuple(codec_size)} differs "
                             f"from the crop size {self.input_size}")
        self.encode_targets = bool(encode_targets)
        self.train = train
        self.augment = augment if augment is not None else (TopDownAugment() if train else None)
        self.image_transform = image_transform
        self.seed = int(seed)
        self.epoch = 0
        self.skip_unreadable = skip_unreadable
        self.skipped: list[tuple[str, str]] = []
        self.aspect_ratio = self.input_size[0] / self.input_size[1]
        if stylized is not None and getattr(image_transform, "loads_image", False):
            raise ValueError("TopDownDataset: a stylized copy cannot be combined with an "
                             "image_transform that loads its own images (a -C folder)")
        self.stylized = stylized

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (seeded from seed, epoch, index)."""
        self.epoch = int(epoch)

    def _read_stylized(self, record: PersonRecord) -> np.ndarray:
        """The user's stylized copy of the image: same size as the original, so the same
        geometry (then ``image_transform``, as for the original)."""
        image = self.stylized.load(record)
        check_image_size(image, record)
        if self.image_transform is not None:
            image = self.image_transform(image, record)
            if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3):
                raise TypeError("image_transform must return a uint8 H x W x 3 array")
        return image

    def _read(self, record: PersonRecord) -> np.ndarray:
        transform = self.image_transform
        if getattr(transform, "loads_image", False):  # e.g. a -C folder: clean pixels unused
            image = transform.load(record)
        else:
            image = load_image(record.image_path)
            check_image_size(image, record)  # not the size its json says: skipped, named
            if transform is not None:
                image = transform(image, record)
        if transform is not None:
            if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3):
                raise TypeError("image_transform must return a uint8 H x W x 3 array")
        return image

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        k = self.spec.num_keypoints
        # its own per-item stream: the augmentation draws are the same with or without it
        stylized = self.stylized is not None and self.stylized.chooses(self.seed, self.epoch, index)
        try:
            image = self._read_stylized(record) if stylized else self._read(record)
            error = ""
        except ImageReadError as exc:
            if not self.skip_unreadable:
                raise
            self.skipped.append((str(record.image_path), str(exc)))
            image, error = None, str(exc)

        kpts_img = np.zeros((k, 3)) if record.keypoints is None else \
            np.asarray(record.keypoints, dtype=np.float64)
        joints = kpts_img.copy()
        joints[:, 2] = (joints[:, 2] > 0).astype(np.float64)  # HRNet clips visibility to 1
        center = np.asarray(record.center, dtype=np.float32).copy()
        scale = np.asarray(record.scale, dtype=np.float32).copy()
        rotation, flipped = 0.0, False

        if image is not None and self.train and self.augment is not None:
            rng = rng_from(self.seed, "augment", self.epoch, index)
            params = self.augment.sample(rng, joints, center, scale, self.spec,
                                         self.aspect_ratio)
            center, scale, rotation, flipped = (params.center, params.scale, params.rotation,
                                                params.flip)
            if flipped:
                width = image.shape[1]
                image = np.ascontiguousarray(image[:, ::-1])
                joints = fliplr_keypoints(joints, width, self.spec.flip_pairs)
                center[0] = width - center[0] - 1

        w, h = self.input_size
        if image is None:
            crop = np.zeros((h, w, 3), dtype=np.uint8)
            joints[:, 2] = 0
        else:
            crop, matrix = crop_image(image, center, scale, self.input_size, rotation)
            vis = joints[:, 2] > 0
            joints[vis, :2] = affine_transform_points(joints[vis, :2], matrix)
        if self.encode_targets:
            targets = self.codec.encode(joints)
        else:
            targets = {"target": np.zeros((k, 0, 0), np.float32),
                       "target_weight": np.ones(k, np.float32)}

        head = record.extra.get("head_size")
        meta = {
            "index": index,
            "image_id": record.image_id,
            "center": center.astype(np.float32),
            "scale": scale.astype(np.float32),
            "score": float(record.score),
            "area": float(np.prod(scale.astype(np.float64) * PIXEL_STD)),
            "gt_area": float(record.area),
            "bbox": np.asarray(record.bbox, dtype=np.float32),
            "rotation": float(rotation),
            "flipped": bool(flipped),
            "keypoints": kpts_img.astype(np.float32),
            "joints": joints.astype(np.float32),
            "head_size": float("nan") if head is None else float(head),
            "image_path": str(record.image_path),
            "valid": image is not None,
            "stylized": bool(stylized),
            "error": error,
        }
        tensor = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float() / 255.0
        item = {"image": tensor}
        for key, value in targets.items():
            item[key] = torch.from_numpy(np.ascontiguousarray(value))
        item["target_weight"] = item["target_weight"].reshape(k, 1)
        item["meta"] = meta
        return item


def split_valid_batch(batch: dict) -> tuple[dict | None, list[tuple[str, str]]]:
    """Split a collated batch into its readable items and ``(image_path, error)`` skips.

    Returns ``(None, skips)`` when no item of the batch is valid. Meta tensors, arrays and
    lists are indexed alike.
    """
    valid = batch["meta"]["valid"]
    mask = valid.bool() if isinstance(valid, torch.Tensor) else torch.as_tensor(list(valid))
    skips = [(batch["meta"]["image_path"][i], batch["meta"]["error"][i])
             for i in range(len(mask)) if not mask[i]]
    if bool(mask.all()):
        return batch, skips
    if not bool(mask.any()):
        return None, skips
    idx = torch.nonzero(mask).flatten().tolist()

    def take(value):
        if isinstance(value, torch.Tensor):
            return value[mask]
        if isinstance(value, np.ndarray):
            return value[mask.numpy()]
        if isinstance(value, dict):
            return {key: take(v) for key, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [value[i] for i in idx]
        return value

    return take(batch), skips
