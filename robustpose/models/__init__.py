"""Pose models: registry, the PoseModel interface, architectures and checkpoint loading.

>>> from robustpose.models import create_model, list_models
>>> model = create_model('hrnet_w32', num_joints=17)     # input [0,1] RGB, N x 3 x 256 x 192
>>> list_models('hrnet*')
['hrnet', 'hrnet_w32', 'hrnet_w48']
"""
from .base import IMAGENET_MEAN, IMAGENET_STD, PoseModel
from .registry import GENERIC_CFG, MODELS, create_model, get_default_cfg, list_models, model_names, register_model
from . import hourglass, hrnet, lightweight, resnet  # noqa: F401  (register the architectures)
from . import deeppose_light  # noqa: F401  (deeppose_shufflenetv2 / deeppose_mobilenetv2)
from . import vgg  # noqa: F401  (sbl_vgg19_bn)
from .unet_generator import UNetGenerator, build_advmix_generator, unet_depth
from .checkpoint import CheckpointReport, load_checkpoint, load_pretrained_backbone, save_checkpoint
from .rebuild import load_model
from .loading import load_adapter

__all__ = ["PoseModel", "IMAGENET_MEAN", "IMAGENET_STD", "create_model", "list_models", "register_model",
           "MODELS", "GENERIC_CFG", "get_default_cfg", "model_names",
           "load_checkpoint", "save_checkpoint", "load_model", "load_pretrained_backbone", "CheckpointReport",
           "UNetGenerator", "build_advmix_generator", "unet_depth", "load_adapter"]
