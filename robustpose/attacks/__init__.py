"""Adversarial attacks on pose estimators (torchattacks' shape; docs/attacks.md).

``adv = IGSM(model, eps=8, steps=10)(crops01)``: crops (N, 3, H, W) in [0, 1] in, the same
shape out, within ``eps/255`` in l_inf and in [0, 1]. White-box: :class:`FGSM`,
:class:`IGSM` (BIM), :class:`UAP`; query-only: :class:`SPSA`; :func:`transfer_matrix`
for surrogate -> victim transfer. Losses come from :mod:`robustpose.losses`, plus the
bounded ``pck_margin`` (:class:`PckMarginLoss`).
"""
from robustpose.attacks.base import FGSM, IGSM, Attack, attack_mode, kurakin_steps, torch_model
from robustpose.attacks.losses import (ATTACK_LOSSES, KIND_LOSSES, AttackObjective, PckMarginLoss,
                                       attack_loss_for, output_kind, resolve_loss, soft_argmax,
                                       training_loss)
from robustpose.attacks.spsa import SPSA, raw_outputs
from robustpose.attacks.targets import derangement, pose_targets, shuffled_pose_targets
from robustpose.attacks.transfer import ResizedInput, transfer_matrix
from robustpose.attacks.uap import UAP, PlateauStop, uap_picture
from robustpose.utils.registry import Registry

#: attack name -> class (``ATTACKS['igsm']``, ``ATTACKS.names()`` for argparse choices);
#: meta ``access``: 'white-box' (input gradients) or 'query' (outputs only).
ATTACKS = Registry("attack")
ATTACKS.register("fgsm", FGSM, access="white-box")
ATTACKS.register("igsm", IGSM, access="white-box")
ATTACKS.register("uap", UAP, access="white-box")
ATTACKS.register("spsa", SPSA, access="query")


def attack_names() -> list[str]:
    """The registered attack names, sorted (argparse ``choices``)."""
    return ATTACKS.names()

__all__ = ["ATTACKS", "attack_names", "ATTACK_LOSSES", "Attack", "AttackObjective", "FGSM", "IGSM", "KIND_LOSSES",
           "PckMarginLoss", "PlateauStop", "ResizedInput", "SPSA", "UAP", "attack_loss_for", "attack_mode",
           "derangement", "kurakin_steps", "output_kind", "pose_targets", "raw_outputs",
           "resolve_loss", "shuffled_pose_targets", "soft_argmax", "torch_model",
           "training_loss", "transfer_matrix", "uap_picture"]
