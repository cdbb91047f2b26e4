"""robustpose.attacks: bounds, clipping, determinism, eval mode, no weight gradients,
loss moving the right way, UAP projection and files, SPSA's query budget, transfer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robustpose.attacks import (FGSM, IGSM, SPSA, UAP, AttackObjective, derangement,
                                kurakin_steps, shuffled_pose_targets, transfer_matrix)
from robustpose.codecs import CoordinateRegression, GaussianHeatmap
from robustpose.models import create_model

SIZE = (64, 64)  # (w, h)


def _hourglass(stacks: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)  # seeded init: the same tiny net every test
    return create_model("hourglass", num_joints=17, extra={
        "NUM_STACKS": stacks, "NUM_FEATS": 16, "DEPTH": 2, "NUM_BLOCKS": 1})


def _deeppose() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("deeppose_resnet18")


def _crops(n: int = 3, seed: int = 1) -> torch.Tensor:
    x = torch.rand(n, 3, SIZE[1], SIZE[0], generator=torch.Generator().manual_seed(seed))
    x[0, :, :8] = 0.0   # saturated pixels: clipping must hold at both ends
    x[0, :, -8:] = 1.0
    return x


def _joints(n: int, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    j = np.concatenate([rng.uniform(8, 56, (n, 17, 2)), np.ones((n, 17, 1))], axis=-1)
    j[0, 3, 2] = 0  # one unlabelled joint
    return j


def _attacks(model):
    return [FGSM(model, eps=4), FGSM(model, eps=4, targeted=True),
            IGSM(model, eps=4, steps=3), IGSM(model, eps=4, steps=3, targeted=True),
            IGSM(model, eps=4, steps=2, all_stacks=True),
            SPSA(model, eps=4, steps=2, samples=3, seed=5)]


def _targets(model, x):
    codec = GaussianHeatmap(SIZE, (SIZE[0] // 4, SIZE[1] // 4))
    t = shuffled_pose_targets(_joints(len(x)), codec, seed=3)
    return {"target": torch.from_numpy(t["target"]),
            "target_weight": torch.from_numpy(t["target_weight"])}


def test_every_attack_stays_in_the_ball_and_in_range_restores_mode_and_leaves_no_grad():
    model = _hourglass().train()
    x = _crops()
    for atk in _attacks(model):
        targets = _targets(model, x) if atk.targeted else None
        adv = atk(x, targets)
        assert adv.shape == x.shape and adv.dtype == torch.float32
        delta = (adv - x).abs().max().item() * 255
        assert delta <= atk.eps + 1e-3, atk
        assert delta > 0.5 * atk.eps, f"{atk} did not move"  # it really perturbs
        assert adv.min() >= 0 and adv.max() <= 1
        assert model.training, f"{atk} left the model in eval mode"
        assert all(p.grad is None for p in model.parameters()), atk
    model.eval()
    IGSM(model, eps=2, steps=1)(x)
    assert not model.training  # eval stays eval


def test_mode_restored_when_the_attack_fails():
    model = _hourglass().train()
    with pytest.raises(ValueError, match="targeted attack needs targets"):
        IGSM(model, eps=2, steps=1, targeted=True)(_crops())
    assert model.training


def _mixed_state_model() -> torch.nn.Module:
    """A model in train mode with one BatchNorm frozen in eval and some frozen weights."""
    model = _hourglass().train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    norms[1].eval()
    params = list(model.parameters())
    for p in params[:5]:
        p.requires_grad_(False)
    return model


def _state(model: torch.nn.Module) -> tuple[list[bool], list[bool]]:
    return ([m.training for m in model.modules()], [p.requires_grad for p in model.parameters()])


def test_every_submodules_mode_and_requires_grad_come_back_as_they_were():
    model = _mixed_state_model()
    before = _state(model)
    assert not all(before[0]) and any(before[0]) and not all(before[1])
    x = _crops(2)

    def fails(epoch):
        raise RuntimeError("data loading failed")

    calls = [lambda: FGSM(model, eps=2)(x), lambda: IGSM(model, eps=2, steps=2)(x),
             lambda: SPSA(model, eps=2, steps=1, samples=2)(x),
             lambda: UAP(model, eps=2, epochs=1, batch_size=2).fit(x)]
    for call in calls:
        call()
        assert _state(model) == before
    with pytest.raises(ValueError, match="targeted attack needs targets"):
        IGSM(model, eps=2, steps=1, targeted=True)(x)
    assert _state(model) == before
    with pytest.raises(RuntimeError, match="data loading"):
        UAP(model, eps=2, epochs=1).fit(fails)
    assert _state(model) == before
    assert all(p.grad is None for p in model.parameters())


def test_the_model_is_in_eval_with_frozen_weights_during_the_attack():
    model = _mixed_state_model()
    seen = []

    def hook(module, args):
        seen.append((any(m.training for m in module.modules()),
                     any(p.requires_grad for p in module.parameters())))

    model.register_forward_pre_hook(hook)
    IGSM(model, eps=2, steps=2)(_crops(2))
    assert seen and set(seen) == {(False, False)}


def test_determinism_with_a_seed_and_seed_matters_for_random_draws():
    model = _hourglass()
    x = _crops()
    for make in (lambda s: IGSM(model, eps=4, steps=2, seed=s),
                 lambda s: SPSA(model, eps=4, steps=2, samples=2, seed=s)):
        a, b, c = make(7)(x), make(7)(x), make(8)(x)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_targeted_loss_decreases_and_untargeted_loss_increases_over_igsm_steps():
    model = _hourglass().eval()
    x = _crops()
    targets = _targets(model, x)
    objective = AttackObjective("heatmaps")
    w = targets["target_weight"]

    def loss_to(reference, adv):
        with torch.no_grad():
            return objective.total(model(adv), reference, w).item()

    target_losses = [loss_to(targets["target"], IGSM(model, eps=8, steps=n, alpha=1,
                                                      targeted=True)(x, targets))
                     for n in (1, 3, 8)]
    assert target_losses[0] > target_losses[1] > target_losses[2]
    with torch.no_grad():
        clean = model(x)
    untargeted = [loss_to(clean, IGSM(model, eps=8, steps=n, alpha=1)(x)) for n in (1, 3, 8)]
    assert untargeted[0] < untargeted[1] < untargeted[2]
    assert loss_to(clean, x) == 0.0


def test_regression_model_uses_the_coordinate_loss():
    model = _deeppose().eval()
    x = _crops(2)
    atk = IGSM(model, eps=4, steps=2)
    assert atk.kind == "coords" and type(atk.objective.loss).__name__ == "CoordL2Loss"
    codec = CoordinateRegression(SIZE)
    t = shuffled_pose_targets(_joints(2), codec, seed=0)
    assert t["target"].shape == (2, 17, 2)
    adv = IGSM(model, eps=4, steps=2, targeted=True)(x, {"target": torch.from_numpy(t["target"]),
                                                         "target_weight": torch.from_numpy(t["target_weight"])})
    assert (adv - x).abs().max() * 255 <= 4 + 1e-3
    with torch.no_grad():
        moved = (model(adv) - model(x)).abs().max()
    assert moved > 0


def test_all_stacks_sums_every_stack():
    model = _hourglass(2).eval()
    x = _crops(2)
    with torch.no_grad():
        outs = model.forward_all(x)
        ref = torch.zeros_like(outs[-1])
        w = torch.ones(2, 17)
        last = AttackObjective("heatmaps").total(outs, ref, w)
        both = AttackObjective("heatmaps", all_stacks=True).total(outs, ref, w)
    from robustpose.losses import JointsMSELoss
    expected = sum(2 * JointsMSELoss()(o, ref, w) for o in outs)
    assert torch.isclose(both, expected) and not torch.isclose(both, last)


def test_per_crop_values_match_one_call_per_crop():
    objective = AttackObjective("heatmaps", targeted=True)
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(4, 17, 8, 8, generator=g), torch.rand(4, 17, 8, 8, generator=g)
    w = torch.ones(4, 17)
    w[1, 2] = 0
    per = objective.per_crop(pred, target, w)
    from robustpose.losses import JointsMSELoss
    loop = torch.stack([-JointsMSELoss()(pred[i:i + 1], target[i:i + 1], w[i:i + 1]) for i in range(4)])
    assert torch.allclose(per, loop)
    assert torch.isclose(per.sum(), objective.total(pred, target, w))


def test_uap_projection_disjoint_eval_and_files(tmp_path):
    import cv2

    model = _hourglass().train()
    fit, held = _crops(4, seed=10), _crops(3, seed=11)
    uap = UAP(model, eps=6, epochs=3, batch_size=2, seed=1)
    delta = uap.fit(fit)
    assert delta.shape == (3, SIZE[1], SIZE[0])
    assert delta.abs().max() * 255 <= 6 + 1e-3 and uap.fitted_crops == 12
    assert model.training and all(p.grad is None for p in model.parameters())
    adv = uap(held)
    assert torch.allclose(adv, (held + delta).clamp(0, 1))
    assert torch.equal(UAP(model, eps=6, epochs=3, batch_size=2, seed=1).fit(fit), delta)
    npy, png = uap.save(tmp_path / "uap")
    assert np.allclose(np.load(npy), delta.numpy())
    picture = cv2.imread(str(png))
    assert picture.shape == (SIZE[1], SIZE[0], 3) and picture.dtype == np.uint8
    assert UAP(model, eps=6).load(npy)(held).shape == held.shape
    with pytest.raises(ValueError, match="fit"):
        UAP(model, eps=6)(held)


def _counting_black_box(model: torch.nn.Module):
    """A plain callable over ``model`` and the list of batch sizes it was queried with."""
    calls: list[int] = []

    def fn(crops):
        calls.append(len(crops))
        with torch.no_grad():
            return model(crops)

    return fn, calls


def test_spsa_keeps_its_query_budget_and_works_through_adapters():
    from robustpose.models.adapters import CallableAdapter, RegistryAdapter

    model = _hourglass().eval()
    x = _crops(2)
    fn, calls = _counting_black_box(model)

    for black_box in (CallableAdapter(fn, input_size=SIZE), RegistryAdapter(model, SIZE), fn):
        calls.clear()
        atk = SPSA(black_box, eps=4, steps=10, samples=3, max_queries=20, query_batch=5, seed=0)
        adv = atk(x)
        assert atk.steps == 3 and atk.queries_used == 1 + 3 * 6 <= 20
        assert (adv - x).abs().max() * 255 <= 4 + 1e-3 and adv.min() >= 0 and adv.max() <= 1
        if black_box is fn:
            assert sum(calls) == len(x) * atk.queries_used and max(calls) <= 5


def test_white_box_refuses_a_black_box():
    with pytest.raises(ValueError, match="SPSA or a transfer"):
        IGSM(lambda crops: crops, eps=2)(_crops(1))


def test_transfer_matrix_crafts_on_a_and_scores_b():
    a, b = _hourglass(1), _hourglass(2)
    x = _crops(2)

    def score(model, crops):
        with torch.no_grad():
            return float(-(model(crops) - model(x)).abs().mean())

    out = transfer_matrix({"a": a}, {"a": a, "b": b}, x,
                          lambda m: IGSM(m, eps=4, steps=2), score)
    assert out["clean"] == {"a": 0.0, "b": 0.0}
    assert out["attacked"]["a"]["a"] < 0 and out["attacked"]["a"]["b"] < 0


def test_derangement_and_kurakin_rule():
    p = derangement(7, seed=3)
    assert sorted(p) == list(range(7)) and all(p[i] != i for i in range(7))
    assert np.array_equal(p, derangement(7, seed=3))
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1)
    assert kurakin_steps(8) == 10 and kurakin_steps(32) == 36 and kurakin_steps(1) == 1


def test_bounds_are_on_the_255_scale_and_bad_inputs_are_refused():
    model = _hourglass()
    x = _crops(1)
    adv = FGSM(model, eps=1)(x)
    assert (adv - x).abs().max() <= 1 / 255 + 1e-6
    assert torch.equal(FGSM(model, eps=0)(x), x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FGSM(model, eps=1)(x * 255)
    with pytest.raises(ValueError, match="eps"):
        IGSM(model, eps=-1)


def test_resized_surrogate_crafts_at_the_victims_size():
    from robustpose.attacks import ResizedInput

    surrogate = ResizedInput(_hourglass(2), (32, 48)).train()
    x = _crops(2)  # 64 x 64 victim crops
    assert surrogate(x).shape[-2:] == (12, 8) and len(surrogate.forward_all(x)) == 2
    adv = IGSM(surrogate, eps=4, steps=2, all_stacks=True)(x)
    assert adv.shape == x.shape and (adv - x).abs().max() * 255 <= 4 + 1e-3
    assert (adv - x).abs().max() * 255 > 2 and surrogate.training


def test_a_resized_surrogates_network_sees_its_own_crop_size():
    """The attack differentiates the ResizedInput wrapper, not the network inside it: a
    hook on that network records the surrogate's size (48 x 32), never the victim's crop
    (64 x 64). The DeepPose model's coordinates scale with its input, so an unresized
    call would also give outputs in another frame."""
    from robustpose.attacks import ResizedInput, torch_model
    from robustpose.models.adapters import RegistryAdapter

    net = _deeppose()
    seen: list[tuple[int, int]] = []
    net.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    surrogate = ResizedInput(net, (32, 48)).eval()
    x = _crops(2)
    adv = IGSM(surrogate, eps=4, steps=2)(x)
    assert seen and set(seen) == {(48, 32)}
    assert (adv - x).abs().max() * 255 <= 4 + 1e-3 and (adv - x).abs().max() * 255 > 2
    assert torch_model(surrogate) is surrogate                       # a module: as it is
    adapter = RegistryAdapter(net, SIZE)
    assert torch_model(adapter) is adapter.model                     # an adapter: its .model
    assert IGSM(surrogate, eps=1).kind == "coords"


def test_eps_zero_returns_the_crops_without_a_query_or_a_gradient():
    model = _hourglass().eval()
    x = _crops(2)
    fn, calls = _counting_black_box(model)

    spsa = SPSA(fn, eps=4, steps=2, samples=2, seed=0)
    spsa(x)
    assert spsa.queries_used > 0 and calls
    calls.clear()
    spsa.eps = 0.0
    assert torch.equal(spsa(x), x) and spsa.queries_used == 0 and not calls
    assert torch.equal(IGSM(model, eps=0, steps=5, targeted=True)(x, model(x)), x)
