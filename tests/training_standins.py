"""Stand-ins shared by the trainer tests: a 2-layer conv net, random-tensor keypoint data,
a metric, a predictor, and tiny configs / trainers built from them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robustpose.training import Trainer, config_from_dict


class TinyHeatmapNet(nn.Module):
    """Two stride-2 convs: N x 3 x H x W in [0,1] -> N x K x H/4 x W/4."""

    output_kind = "heatmaps"

    def __init__(self, num_joints: int = 4, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, num_joints, 3, 2, 1))

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.body(x - 0.5)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[-1]


class FakeKeypointDataset(torch.utils.data.Dataset):
    """Random images whose targets are Gaussians at a fixed per-item location; the
    location is also painted into the image so a conv net can learn it."""

    def __init__(self, n: int = 16, num_joints: int = 4, size=(24, 32), seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        w, h = size
        self.hw = (h // 4, w // 4)
        self.images = torch.from_numpy(rng.random((n, 3, h, w), dtype=np.float32) * 0.2)
        self.points = rng.integers(1, [self.hw[1] - 1, self.hw[0] - 1], size=(n, num_joints, 2))
        ys, xs = np.mgrid[0:self.hw[0], 0:self.hw[1]]
        self.targets = np.zeros((n, num_joints, *self.hw), np.float32)
        for i in range(n):
            for k in range(num_joints):
                x, y = self.points[i, k]
                self.targets[i, k] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 2.0)
                self.images[i, k % 3, y * 4:(y + 1) * 4, x * 4:(x + 1) * 4] = 1.0
        self.weights = np.ones((n, num_joints, 1), np.float32)
        self.weights[:, -1] = 0.0  # one unlabelled joint

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "target": torch.from_numpy(self.targets[i]),
                "target_weight": torch.from_numpy(self.weights[i]),
                "meta": {"index": i, "image_id": i, "score": 1.0, "area": 100.0,
                         "center": np.zeros(2, np.float32), "scale": np.ones(2, np.float32)}}


@dataclass
class FakeSpec:
    keypoint_names: list = field(default_factory=lambda: ["a", "b", "c", "d"])


class MeanErrorMetric:
    """Scores argmax keypoints against the dataset's points: AP := -mean pixel error."""

    def __init__(self, dataset: FakeKeypointDataset) -> None:
        self.dataset = dataset
        self.seen: list[np.ndarray] = []
        self.err: list[float] = []

    def accumulate(self, keypoints: np.ndarray, meta: dict) -> None:
        self.seen.append(np.asarray(meta["index"]))
        gt = self.dataset.points[np.asarray(meta["index"])]
        self.err.append(float(np.abs(keypoints[..., :2] - gt).mean()))

    def stats(self) -> dict:
        return {"AP": -float(np.mean(self.err))}


def argmax_predict(model, images, metas, spec, flip_test=True, shift=True) -> np.ndarray:
    """Stand-in for codecs.predict_keypoints: argmax location in heatmap pixels."""
    with torch.no_grad():
        heat = model(images)
    n, k, h, w = heat.shape
    flat = heat.reshape(n, k, -1)
    score, idx = flat.max(-1)
    return torch.stack([idx % w, idx // w, score], -1).float().numpy()


@dataclass
class Split:
    dataset: object
    spec: object
    metric_factory: object = None


torch.set_num_threads(1)


def tiny_config(tmp_path: Path, **train) -> dict:
    return config_from_dict({
        "name": "tiny", "seed": 3, "output_dir": str(tmp_path / "run"),
        "model": {"name": "standin"},
        "data": {"input_size": [24, 32], "heatmap_size": [6, 8], "num_workers": 0},
        "train": {"batch_size": 4, "epochs": 2, "lr": 1e-2, "lr_steps": [1], "amp": False, **train},
        "val": {"every": 1, "batch_size": 5},
    })


def make_trainer(config: dict, data_seed: int = 0) -> Trainer:
    data = FakeKeypointDataset(n=12, seed=data_seed)
    model = TinyHeatmapNet()
    return Trainer(config, model=model, train_data=Split(data, FakeSpec()),
                   val_data=Split(data, FakeSpec(), lambda: MeanErrorMetric(data)),
                   device="cpu", predict_fn=argmax_predict, progress=False)


def seeded_standin(seed: int) -> TinyHeatmapNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyHeatmapNet()
