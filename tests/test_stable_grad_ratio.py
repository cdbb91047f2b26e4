"""The regulariser-to-task gradient-norm ratio of ST_g, ST_a and MST (stable_ratio) on a
tiny randomly initialised net: measured on the trainer's own batches, linear in the weight,
and the matched weights bring every method to the target ratio on the same batches."""
from __future__ import annotations

import pytest

from robustpose.training import Trainer
from robustpose.training.stable_ratio import gradient_ratio, matched_weight, regulariser_of
from training_standins import FakeKeypointDataset, FakeSpec, Split, seeded_standin, tiny_config

# (method, method_args, the weight's key): three different weights, as in the miniature
METHODS = [("st_g", {"alpha": 0.5}, "alpha"), ("st_a", {"alpha": 2.0}, "alpha"),
           ("stable", {"mst": True, "mst_weight": 0.01}, "mst_weight")]


def _trainer(tmp_path, method: str, args: dict) -> Trainer:
    cfg = tiny_config(tmp_path, method=method, method_args=args, optimizer="adam")
    cfg["data"].update(input_size=[32, 32], heatmap_size=[8, 8])   # corruptions need 32 px
    cfg["val"]["every"] = 0
    data = FakeKeypointDataset(n=8, size=(32, 32))
    return Trainer(cfg, model=seeded_standin(1), train_data=Split(data, FakeSpec()),
                   device="cpu", progress=False)


@pytest.mark.parametrize("method,args,key", METHODS)
def test_matched_weight_reaches_the_target_ratio_on_the_same_batches(tmp_path, method, args, key):
    first = gradient_ratio(_trainer(tmp_path, method, args), batches=2)
    assert first["method"] == method and first["weight_key"] == key
    assert first["weight"] == args[key] and first["batches"] == 2
    assert min(first["task_grad"]) > 0 and min(first["reg_grad"]) > 0
    assert first["ratio"] == pytest.approx(args[key] * first["unit_ratio"])
    # the ratio is linear in the weight: at the matched weight a fresh trainer (same seed:
    # same model, batches and perturbations) measures the target
    weight = matched_weight(first, 1.5)
    again = gradient_ratio(_trainer(tmp_path, method, {**args, key: weight}), batches=2)
    assert again["task_grad"] == pytest.approx(first["task_grad"], rel=1e-6)
    assert again["ratio"] == pytest.approx(1.5, rel=1e-5)


def test_methods_without_a_regulariser_are_refused(tmp_path):
    with pytest.raises(ValueError, match="mst: false"):
        regulariser_of(_trainer(tmp_path, "stable", {"mst": False}).method)
    with pytest.raises(ValueError, match="no stability regulariser"):
        gradient_ratio(_trainer(tmp_path, "standard", {}))
    with pytest.raises(ValueError, match="target_ratio"):
        matched_weight({"method": "st_g", "unit_ratio": 1.0}, 0.0)
