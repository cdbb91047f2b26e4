"""Pixel-only augmentations on batches of crops (targets untouched), seeded explicitly.

Every augmentation is ``aug(images, rng) -> images``: float N x 3 x H x W crops in [0, 1]
in, a new tensor of the same shape out; every random draw comes from ``rng`` (a
``np.random.Generator``, e.g. the trainer's ``np_rng``), crop by crop in batch order.

>>> import numpy as np, torch
>>> from robustpose.augment import AutoAugment, GridMask, make_views
>>> views = make_views(torch.rand(2, 3, 64, 48), [AutoAugment(), GridMask()], np.random.default_rng(0))
>>> tuple(views.shape)
(2, 3, 3, 64, 48)
"""
from .augmix import AugMix, augmix_op
from .autoaugment import OFFICIAL_POLICY, AutoAugment, apply_op, policy_list
from .corruption import TRANSFER_CORRUPTIONS, CorruptionAugment
from .gridmask import MEAN_COLOUR, GridMask, grid_keep_mask
from .mixing import clean_identical_weight, dirichlet_weights, make_views, mix, sequential
from .patch_gaussian import PatchGaussian

AUGMENTATIONS = {"autoaugment": AutoAugment, "gridmask": GridMask, "corruptions": CorruptionAugment,
                 "augmix": AugMix, "patch_gaussian": PatchGaussian}


def build_augmentation(name: str, **kwargs):
    """The augmentation registered as ``name`` ('autoaugment', 'gridmask', 'corruptions',
    'augmix', 'patch_gaussian')."""
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}")
    return AUGMENTATIONS[name](**kwargs)


__all__ = ["AUGMENTATIONS", "AugMix", "AutoAugment", "CorruptionAugment", "GridMask", "MEAN_COLOUR",
           "OFFICIAL_POLICY", "PatchGaussian", "TRANSFER_CORRUPTIONS", "apply_op", "augmix_op", "build_augmentation",
           "clean_identical_weight",
           "dirichlet_weights", "grid_keep_mask", "make_views", "mix", "policy_list", "sequential"]
