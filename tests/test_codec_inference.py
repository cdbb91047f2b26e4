"""Flip test, back-projection and predict_keypoints (tiny stand-in models, real crops)."""
from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from robustpose.codecs import (GaussianHeatmap, InferenceSetting, flip_heatmaps,
                               heatmaps_to_image_coords, predict_heatmaps, predict_keypoints)
from robustpose.data import TopDownDataset, fliplr_keypoints, get_spec, load_coco_records

torch.set_num_threads(1)
COCO = get_spec("coco")


def test_flip_heatmaps_numpy_and_torch_agree():
    rng = np.random.default_rng(0)
    hm = rng.random((2, 17, 8, 6)).astype(np.float32)
    for shift in (False, True):
        a = flip_heatmaps(hm, COCO.flip_pairs, shift=shift)
        b = flip_heatmaps(torch.from_numpy(hm), COCO.flip_pairs, shift=shift).numpy()
        assert np.array_equal(a, b)
    back = flip_heatmaps(flip_heatmaps(hm, COCO.flip_pairs, False), COCO.flip_pairs, False)
    assert np.array_equal(back, hm)
    shifted = flip_heatmaps(hm, COCO.flip_pairs, shift=True)
    plain = flip_heatmaps(hm, COCO.flip_pairs, shift=False)
    assert np.array_equal(shifted[..., 1:], plain[..., :-1])  # 1 px right
    assert np.array_equal(shifted[..., 0], plain[..., 0])     # column 0 kept (HRNet)
    assert np.array_equal(plain[:, 1, :, ::-1], hm[:, 2])     # left_eye <- mirrored right_eye


class TinyPoseNet(nn.Module):
    """A random conv net: crops N x 3 x 64 x 48 -> heatmaps N x 17 x 16 x 12."""

    def __init__(self, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 17, 3, stride=2, padding=1)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=gen) * 0.3

    def forward(self, x):
        return torch.sigmoid(self.conv2(torch.tanh(self.conv1(x))))


def test_flip_test_is_mirror_symmetric():
    """Without the 1-px shift the flip test is exactly flip-equivariant for any model:
    predicting on the mirrored crop gives the mirrored, pair-swapped heatmaps."""
    model = TinyPoseNet().eval()
    x = torch.rand(3, 3, 64, 48, generator=torch.Generator().manual_seed(1))
    h = predict_heatmaps(model, x, COCO.flip_pairs, flip_test=True, shift=False)
    h_mirror = predict_heatmaps(model, x.flip(3), COCO.flip_pairs, flip_test=True, shift=False)
    assert torch.allclose(h_mirror, flip_heatmaps(h, COCO.flip_pairs, shift=False), atol=1e-6)
    codec = GaussianHeatmap((48, 64), (12, 16))
    c, s = codec.decode(h, shift=False)
    cm, sm = codec.decode(h_mirror, shift=False)
    perm = COCO.flip_permutation()
    flat = h.flatten(2)
    unique = (flat == flat.max(dim=2, keepdim=True).values).sum(dim=2).numpy() == 1
    assert unique.mean() > 0.9
    u = unique[:, perm]
    assert np.allclose(cm[:, :, 0][u], (11 - c[:, perm, 0])[u])
    assert np.allclose(cm[:, :, 1][u], c[:, perm, 1][u])
    assert np.allclose(sm, s[:, perm], atol=1e-6)


def test_heatmaps_to_image_coords_closed_form():
    center, scale = np.array([[300.0, 200.0]]), np.array([[1.2, 1.6]])
    coords = np.array([[[0.0, 0.0], [24.0, 32.0], [47.0, 63.0]]])
    out = heatmaps_to_image_coords(coords, center, scale, (48, 64))
    px = 1.2 * 200 / 48  # image pixels per heatmap pixel
    expected = center[0] + (coords[0] - [24, 32]) * px
    assert np.allclose(out[0], expected, atol=1e-3)


class OracleModel(nn.Module):
    """Returns pre-rendered ground-truth heatmaps for crops it has seen (by content hash)."""

    def __init__(self):
        super().__init__()
        self.table: dict[str, torch.Tensor] = {}

    @staticmethod
    def key(crop: torch.Tensor) -> str:
        return hashlib.sha1(crop.contiguous().numpy().tobytes()).hexdigest()

    def forward(self, x):
        return torch.stack([self.table[self.key(c)] for c in x])


def test_predict_keypoints_with_oracle_on_real_crops(data_root):
    """GT heatmaps of each crop and of its mirror as the 'model': predict_keypoints lands
    on the ground truth, and HRNet's 1-px flip shift beats no shift."""
    d = data_root / "coco_val_mini"
    records, spec = load_coco_records(d / "annotations.json", d / "images",
                                      aspect_ratio=192 / 256)
    ds = TopDownDataset(records[:16], spec)
    codec = ds.codec
    oracle = OracleModel()
    items = [ds[i] for i in range(len(ds))]
    for it in items:
        oracle.table[oracle.key(it["image"])] = it["target"]
        mirrored = fliplr_keypoints(it["meta"]["joints"], 192, spec.flip_pairs)
        oracle.table[oracle.key(it["image"].flip(2))] = torch.from_numpy(codec.encode(mirrored)["target"])
    images = torch.stack([it["image"] for it in items])
    metas = {k: np.stack([it["meta"][k] for it in items]) for k in ("center", "scale")}
    gt = np.stack([it["meta"]["keypoints"] for it in items])
    weight = np.stack([it["target_weight"][:, 0].numpy() for it in items]) > 0
    to_input = 192 / (metas["scale"][:, 0] * 200)

    def mean_err(**kw):
        pred = predict_keypoints(oracle, images, metas, spec, InferenceSetting(**kw))
        assert pred.shape == (16, 17, 3)
        err = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1) * to_input[:, None]
        return err[weight].mean(), pred

    plain, pred = mean_err(flip_test=False)
    assert plain < 2.0
    assert (pred[..., 2][weight] == 1.0).mean() > 0.95  # score = heatmap max (1 for GT maps)
    with_shift, _ = mean_err(flip_test=True, flip_shift=True)
    no_shift, _ = mean_err(flip_test=True, flip_shift=False)
    assert with_shift < 2.5 and with_shift < no_shift
    list_meta = [{"center": c, "scale": s} for c, s in zip(metas["center"], metas["scale"])]
    assert np.allclose(predict_keypoints(oracle, images, list_meta, spec)[..., :2],
                       predict_keypoints(oracle, images, metas, spec)[..., :2])


class CoordModel(nn.Module):
    """A regression stand-in: returns fixed crop-pixel coordinates (output_kind 'coords')."""

    output_kind = "coords"

    def __init__(self, coords):
        super().__init__()
        self.coords = coords

    def forward(self, x):
        # on the mirrored crop a symmetric model sees mirrored joints with pairs swapped
        mirrored = bool(getattr(self, "_calls", 0) % 2)
        self._calls = getattr(self, "_calls", 0) + 1
        c = self.coords.clone()
        if mirrored:
            c[..., 0] = x.shape[3] - 1 - c[..., 0]
            c = c[:, COCO.flip_permutation()]
        return c


def test_predict_keypoints_for_coordinate_models():
    coords = torch.rand(2, 17, 2, generator=torch.Generator().manual_seed(0)) * 40
    metas = {"center": np.array([[100.0, 100.0], [50.0, 60.0]]),
             "scale": np.array([[0.24, 0.32], [0.48, 0.64]])}
    images = torch.zeros(2, 3, 64, 48)
    for flip in (False, True):
        out = predict_keypoints(CoordModel(coords), images, metas, COCO,
                                InferenceSetting((48, 64), flip_test=flip))
        expected = heatmaps_to_image_coords(coords.numpy(), metas["center"], metas["scale"],
                                            (48, 64))
        assert np.allclose(out[..., :2], expected, atol=1e-4) and np.all(out[..., 2] == 1)
