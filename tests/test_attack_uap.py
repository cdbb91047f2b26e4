"""UAP fitting: the stopping rule, the per-epoch monitor, fitting on held tensors with
targets, and `robustpose attack uap`'s held-out curve (record, card, plot)."""
from __future__ import annotations

import json

import pytest
import torch

from robustpose.attacks import UAP, PlateauStop
from robustpose.models import create_model


def test_plateau_stop_waits_for_patience_epochs_without_a_gain_above_min_delta():
    stop = PlateauStop(patience=2, min_delta=0.005)
    decisions = [stop.update(v) for v in (0.9, 0.8, 0.79, 0.799, 0.797)]
    assert decisions == [False, False, False, False, True]
    with pytest.raises(ValueError, match="patience"):
        PlateauStop(0)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("hourglass", num_joints=17, extra={
        "NUM_STACKS": 1, "NUM_FEATS": 16, "DEPTH": 2, "NUM_BLOCKS": 1})


def test_monitor_runs_after_every_epoch_and_can_stop_the_fit():
    model = _model()
    crops = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    seen = []

    def monitor(epochs_done, delta):
        seen.append((epochs_done, float(delta.abs().max())))
        return epochs_done == 2

    uap = UAP(model, eps=4, epochs=10, batch_size=4, seed=1)
    uap.fit(crops, monitor)
    assert [e for e, _ in seen] == [1, 2] and uap.epochs_run == 2
    assert uap.fitted_crops == 12 and all(m <= 4 / 255 + 1e-6 for _, m in seen)
    # a dict of crops and targets is shuffled jointly: with the clean predictions as targets
    # it is the plain tensor fit (which compares each batch with its clean prediction)
    with torch.no_grad():
        clean = model.eval()(crops)       # what the attack sees: eval mode

    def fit(target):
        data = {"image": crops, "target": target, "target_weight": torch.ones(6, 17)}
        return UAP(model, eps=4, epochs=2, batch_size=4, seed=1).fit(data)

    plain = UAP(model, eps=4, epochs=2, batch_size=4, seed=1).fit(crops)
    assert (fit(clean) == plain).float().mean() > 0.99   # equal up to a few float ties
    assert (fit(torch.zeros_like(clean)) != plain).float().mean() > 0.1


def test_uap_command_records_the_held_out_curve_and_stops_by_the_rule(data_root, tmp_path):
    from robustpose.benchmarking.attack_run import run_attack

    out = tmp_path / "u"
    card = run_attack("uap", dataset="coco-format", data_root=data_root / "coco_val_mini",
                      max_images=2, eps="4", steps="5", uap_fit_images=2, uap_holdout_images=2,
                      uap_patience=1, uap_min_delta=1.0, out=out, progress=False)
    cell = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()][-1]
    # min_delta 1.0: no epoch can gain that much, so the rule stops after patience + 1 epochs
    assert cell["epochs_run"] == 2 and cell["stopped_early"] and len(cell["uap_curve"]) == 2
    assert [e for e, _ in cell["uap_curve"]] == [1, 2]
    assert cell["fit_people"] > 0 and cell["holdout_people"] > 0
    assert card["settings"]["uap_holdout_images"] == 2
    assert card["settings"]["uap_stop"] == {"patience": 1, "min_delta": 1.0}
    assert card["cells"][0]["uap_curve"] == cell["uap_curve"]
    assert (out / "attack_uap_curve.png").is_file()
    assert (out / "uap" / "uap-eps4-epochs5.npy").is_file()
    with pytest.raises(ValueError, match="uap-holdout-images"):
        run_attack("uap", dataset="coco-format", data_root=data_root / "coco_val_mini",
                   max_images=2, eps="4", steps="1", uap_patience=2, out=tmp_path / "bad")
