"""Issue 24, "tests that let plausible bugs through": each value pinned directly, so the
mutations a probe got past every other test fail here.

- OKS-NMS keeps a person whose OKS with a kept one is exactly ``thr`` (``<=``, HRNet).
- IGSM projects every step onto the eps ball around the CLEAN crop, not the previous iterate.
- The default crop padding is 1.25 everywhere it has a default.
- mPC (default set) is over the 15 benchmark corruptions even when the store holds all 19.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from robustpose.utils.conventions import COCO_SIGMAS


def test_oks_nms_keeps_an_exact_tie_with_the_threshold():
    from robustpose.evaluation.oks_nms import oks_iou, oks_nms

    rng = np.random.default_rng(0)
    pose = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], axis=1)
    poses = np.stack([pose, pose])  # identical people: OKS exactly 1.0
    areas = np.array([5000.0, 5000.0])
    ovr = oks_iou(poses[0], poses[1:], areas[0], areas[1:], COCO_SIGMAS)
    assert float(ovr[0]) == 1.0
    assert oks_nms(poses, np.array([0.9, 0.8]), areas, COCO_SIGMAS, thr=1.0) == [0, 1]
    assert oks_nms(poses, np.array([0.9, 0.8]), areas, COCO_SIGMAS, thr=0.999) == [0]


def test_igsm_projects_every_step_around_the_clean_crop():
    from robustpose.attacks import IGSM

    class Net(torch.nn.Module):
        output_kind = "heatmaps"

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x)[:, :, ::4, ::4]

    torch.manual_seed(0)
    centres = []

    class Spy(IGSM):
        def project(self, adv, crops):
            centres.append(crops.clone())
            return super().project(adv, crops)

    clean = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    Spy(Net(), eps=8, steps=4, loss="mse")(clean)
    assert len(centres) >= 4
    for centre in centres:  # a projection around the previous iterate would differ here
        assert torch.equal(centre, clean)


def test_default_crop_padding_is_1_25():
    from robustpose.codecs import InferenceSetting
    from robustpose.data import load_coco_records
    from robustpose.geometry import box_to_center_scale

    _, scale = box_to_center_scale([0, 0, 100, 200], aspect_ratio=0.5)
    assert np.allclose(scale, [100 / 200 * 1.25, 200 / 200 * 1.25])
    assert InferenceSetting().padding == 1.25
    assert inspect.signature(load_coco_records).parameters["padding"].default == 1.25


def test_mpc_defaults_to_the_15_benchmark_corruptions_with_19_stored():
    from robustpose.corruptions import get_corruption_names
    from robustpose.evaluation import summarize_robustness

    common, extra = get_corruption_names("common"), get_corruption_names("validation")
    assert (len(common), len(extra)) == (15, 4)
    records = [{"model": "m", "dataset": "d", "corruption": "clean", "severity": 0,
                "metrics": {"AP": 0.8}}]
    for name in common + extra:
        value = 0.5 if name in common else 0.0  # the 4 extras would pull the mean down
        records += [{"model": "m", "dataset": "d", "corruption": name, "severity": s,
                     "metrics": {"AP": value}} for s in range(1, 6)]
    summary = summarize_robustness(records)
    assert summary["mPC"] == pytest.approx(0.5)
    assert sorted(summary["per_corruption"]) == sorted(common)
