"""The RCC layer (stable heatmap regression, Eq. 1 and 7): its theorems on constructed maps,
shapes, negative outputs, gradients, and the head option of every heatmap architecture."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robustpose.codecs import GaussianHeatmap
from robustpose.models import create_model, list_models, load_checkpoint, load_model, save_checkpoint
from robustpose.models.rcc import RCC, apply_rcc_meta, rcc_options, with_rcc

torch.set_num_threads(1)


def gaussian(h: int, w: int, x: float, y: float, sigma: float = 2.0, amp: float = 1.0,
             dtype=torch.float64) -> torch.Tensor:
    """h x w map of amp * exp(-((i - x)^2 + (l - y)^2) / 2 sigma^2) (row l, column i)."""
    ys = torch.arange(h, dtype=dtype)[:, None]
    xs = torch.arange(w, dtype=dtype)[None, :]
    return amp * torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))


def rcc(maps: torch.Tensor, **options) -> torch.Tensor:
    return RCC(**options)(maps[None, None])[0, 0]


# ---------------------------------------------------------------- Theorem 1
@pytest.mark.parametrize("x, y", [(30, 26), (10, 20), (50, 40)])
def test_a_single_gaussian_passes_unchanged(x, y):
    """Theorem 1. A discretised isotropic Gaussian is separable, H = u v^T, so H @ H =
    (v . u) H exactly and the normalised output is H itself. Float32 tolerance: each output
    value is a sum of 64 non-negative products, so its rounding error is below
    64 * 2^-24 ~ 4e-6 of the map maximum (1 after normalisation); 1e-5 allows for the
    division by the maximum."""
    h = gaussian(64, 64, x, y, dtype=torch.float32)
    assert torch.allclose(rcc(h), h / h.max(), atol=1e-5, rtol=0)
    # in float64 the identity is exact to the float64 rounding
    h64 = gaussian(64, 64, x, y, amp=0.37)
    assert torch.allclose(rcc(h64), h64 / h64.max(), atol=1e-12, rtol=0)


def test_theorem_1_on_hrnet_targets_holds_while_the_two_windows_overlap():
    """HRNet's targets are cut to a (6 sigma + 1)-px square, still a product of two windows
    (rank 1): unchanged while row window [y-6, y+6] and column window [x-6, x+6] overlap
    (|x - y| <= 12 at sigma 2). Beyond that v . u = 0: RCC of the target is all zero, and
    the guarded output is zero, not NaN (the docstring's off-diagonal caveat)."""
    codec = GaussianHeatmap((256, 256), (64, 64), sigma=2.0)
    for x, y, passes in [(30, 30, True), (20, 32, True), (40, 28, True), (10, 40, False)]:
        target = torch.from_numpy(codec.encode(np.array([[x * 4.0, y * 4.0, 1.0]]))["target"][0])
        out = rcc(target)
        if passes:
            assert torch.allclose(out, target, atol=1e-5), (x, y)
        else:
            assert not out.any() and torch.isfinite(out).all(), (x, y)


def test_the_gain_of_a_peak_falls_with_its_distance_from_the_diagonal():
    """The constant of H @ H = c H is c = v . u ~ sqrt(pi) sigma exp(-(x - y)^2 / 4 sigma^2)."""
    for x, y in [(32, 32), (30, 36), (20, 30)]:
        h = gaussian(64, 64, x, y)
        c = float((h @ h).max() / h.max())
        assert c == pytest.approx(math.sqrt(math.pi) * 2 * math.exp(-(x - y) ** 2 / 16), rel=1e-9)


# ---------------------------------------------------------------- two Gaussians
def overlap(a: float, s: float, b: float, t: float) -> float:
    """sum_i exp(-(i-a)^2/2s^2) exp(-(i-b)^2/2t^2) over the integers, in closed form (the
    continuous integral; the Poisson-summation error is ~exp(-2 pi^2 s^2 t^2/(s^2+t^2)) and
    the tails beyond a 20-px margin are below 1e-10)."""
    v = s * s + t * t
    return math.sqrt(2 * math.pi * s * s * t * t / v) * math.exp(-(a - b) ** 2 / (2 * v))


@pytest.mark.parametrize("peaks", [
    [(24.0, 20.0, 2.0, 1.0), (36.0, 42.0, 3.0, 0.6)],   # (a = y, b = x, sigma, amplitude)
    [(20.0, 30.0, 2.0, 1.0), (30.0, 20.0, 2.0, 0.8)],   # mirror images about the diagonal
])
def test_two_gaussians_match_the_closed_form(peaks):
    """H = A1 u1 v1^T + A2 u2 v2^T (peak j at x = b_j, y = a_j, sigma s_j) gives
    H @ H = sum_jk A_j A_k (v_j . u_k) u_j v_k^T: each peak with gain v_j . u_j and two
    cross terms at (x = b2, y = a1) and (x = b1, y = a2), normalised by the maximum."""
    size = 64
    rows = torch.arange(size, dtype=torch.float64)

    def axis(c, s):
        return torch.exp(-(rows - c) ** 2 / (2 * s * s))

    h = sum(amp * torch.outer(axis(a, s), axis(b, s)) for a, b, s, amp in peaks)
    expected = torch.zeros(size, size, dtype=torch.float64)
    for aj, bj, sj, amp_j in peaks:
        for ak, bk, sk, amp_k in peaks:
            expected += amp_j * amp_k * overlap(bj, sj, ak, sk) * torch.outer(axis(aj, sj), axis(bk, sk))
    out = rcc(h)
    assert torch.allclose(out, expected / expected.max(), atol=1e-8, rtol=0)
    # and exactly the discrete sums (no continuum approximation) to float64 rounding
    discrete = h @ h
    assert torch.allclose(out, discrete / discrete.max(), atol=1e-14, rtol=0)


def test_two_peaks_mirrored_about_the_diagonal_leave_only_the_cross_terms():
    """Peaks at (x=30, y=20) and (x=20, y=30): their own gains v_j . u_j are ~e^-6.25 of the
    cross gains, so the output peaks at the cross-term positions (x=20, y=20), (x=30, y=30)."""
    h = gaussian(64, 64, 30, 20) + 0.8 * gaussian(64, 64, 20, 30)
    out = rcc(h)
    assert int(out.argmax()) in (20 * 64 + 20, 30 * 64 + 30)
    assert out[20, 20] > 100 * out[20, 30] and out[30, 30] > 100 * out[30, 20]


# ---------------------------------------------------------------- shapes and squares
@pytest.mark.parametrize("hw", [(64, 48), (32, 24), (24, 32), (16, 16)])
@pytest.mark.parametrize("square", ["pad", "crop"])
def test_shapes_and_dtypes_are_kept(hw, square):
    maps = torch.rand(2, 3, *hw)
    out = RCC(square=square)(maps)
    assert out.shape == maps.shape and out.dtype == maps.dtype
    assert float(out.min()) >= 0 and torch.allclose(out.flatten(2).amax(2), torch.ones(2, 3))
    assert RCC(square=square)(maps.double()).dtype == torch.float64


def test_padding_keeps_every_pixel_and_cropping_keeps_the_central_square():
    h, w = 64, 48
    near = gaussian(h, w, 30, 34, dtype=torch.float32)   # inside the central 48 x 48 rows 8..55
    far = gaussian(h, w, 44, 60, dtype=torch.float32)  # row 60: outside it (rows 56..63)
    # pad: zero rows / columns keep the map rank 1, so Theorem 1 holds on the whole map
    assert torch.allclose(rcc(near, square="pad"), near / near.max(), atol=1e-5)
    # crop: the central square gives the same answer inside it and zeros outside
    cropped = rcc(near, square="crop")
    inner = near[8:56] / near[8:56].max()
    assert torch.allclose(cropped[8:56], inner, atol=1e-5)
    assert not cropped[:8].any() and not cropped[56:].any()
    # a peak in the cropped-away rows cannot be predicted under 'crop'; 'pad' keeps it
    assert int(rcc(far, square="pad").argmax()) == 60 * w + 44
    assert int(rcc(far, square="crop").argmax()) != 60 * w + 44


# ---------------------------------------------------------------- negative outputs
def test_negative_outputs_are_handled_before_the_product():
    ys, xs = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    window = ((xs - 12).abs() <= 6) & ((ys - 14).abs() <= 6)
    peak = gaussian(32, 32, 12, 14) * window          # rank 1 (a product of two windows)
    h = peak.clone()
    h[22:28, 20:28] = -0.8                            # a negative blob away from the peak
    raw = h @ h  # (-)(-) = +: unhandled, the blob becomes a positive spurious peak
    assert float(raw[22:28, 20:28].max()) > float(raw.max()) / 2
    relu = rcc(h, negative="relu")
    assert torch.equal(relu, rcc(h.clamp_min(0))) and float(relu.min()) >= 0
    assert torch.allclose(relu, peak / peak.max(), atol=1e-12)  # the peak alone, unchanged
    clamp = rcc(3 * h, negative="clamp")  # clamp to [0, 1]: the peak saturates
    assert torch.equal(clamp, rcc((3 * h).clamp(0, 1)))
    soft = rcc(h, negative="softmax")
    p = torch.softmax(h.flatten(), 0).reshape(32, 32)
    assert torch.allclose(soft, (p @ p) / (p @ p).max(), atol=1e-12)


def test_an_all_negative_map_gives_zeros_not_nan():
    out = RCC()(-torch.rand(1, 2, 16, 12))
    assert torch.equal(out, torch.zeros_like(out))


def test_log_output_is_a_logit_map_of_the_normalised_rcc():
    maps = torch.randn(2, 3, 16, 12, dtype=torch.float64)
    plain = RCC(negative="softmax")(maps)
    logits = RCC(negative="softmax", log_output=True)(maps)
    assert torch.allclose(logits.exp(), plain.clamp_min(1e-12), rtol=1e-12)
    dist = torch.softmax(logits.flatten(2), 2)
    assert torch.allclose(dist, plain.flatten(2) / plain.flatten(2).sum(2, keepdim=True), atol=1e-12)


def test_bad_options_are_one_line_errors():
    with pytest.raises(ValueError, match="square must be"):
        RCC(square="resize")
    with pytest.raises(ValueError, match="negative must be"):
        RCC(negative="abs")
    with pytest.raises(ValueError, match="N x K x h x w"):
        RCC()(torch.rand(3, 8, 8))


# ---------------------------------------------------------------- gradients
def test_the_gradient_reaches_the_input_and_the_weights():
    maps = (torch.rand(2, 2, 16, 12) + 0.1).requires_grad_()
    (RCC()(maps) * torch.rand(2, 2, 16, 12)).sum().backward()
    assert torch.isfinite(maps.grad).all() and maps.grad.abs().sum() > 0
    model = create_model("mobilenetv2", num_joints=2, extra={"NUM_DECONV_FILTERS": [8, 8, 8]},
                         rcc={"negative": "softmax"})
    model(torch.rand(2, 3, 64, 64)).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.final_layer.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- the head option
HEATMAP_MODELS = ["shufflenetv2", "mobilenetv2", "sbl_resnet18", "hrnet_w32", "hourglass_2"]
HEATMAP_MODELS += [n for n in list_models("*vgg*") if not n.startswith("deeppose")]


@pytest.mark.parametrize("name", HEATMAP_MODELS)
def test_the_option_changes_nothing_else(name):
    x = torch.rand(1, 3, 64, 64)
    plain = create_model(name, num_joints=3, seed=5).eval()
    on = create_model(name, num_joints=3, seed=5, rcc=True).eval()
    # same parameters, same state dict keys and values
    assert list(on.state_dict()) == list(plain.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(on.state_dict().values(), plain.state_dict().values()))
    with torch.no_grad():
        assert torch.equal(on(x), RCC()(plain(x)))
        stacks_on, stacks_plain = on.forward_all(x), plain.forward_all(x)
    assert len(stacks_on) == len(stacks_plain)  # every stack's output goes through RCC
    assert all(torch.equal(a, RCC()(b)) for a, b in zip(stacks_on, stacks_plain))
    assert on.model_config["rcc"] == RCC().config() and "rcc" not in plain.model_config


def test_rcc_off_is_the_plain_model():
    x = torch.rand(2, 3, 64, 64)
    plain = create_model("shufflenetv2", num_joints=3, seed=2).eval()
    for off in (False, None):
        model = create_model("shufflenetv2", num_joints=3, seed=2, rcc=off).eval()
        with torch.no_grad():
            assert torch.equal(model(x), plain(x))
        assert rcc_options(model) is None and model.model_config == plain.model_config


def test_coordinate_models_refuse_rcc():
    with pytest.raises(ValueError, match="RCC works on heatmaps"):
        create_model("deeppose_resnet18", num_joints=3, rcc=True)
    with pytest.raises(ValueError, match="needs a robustpose PoseModel"):
        with_rcc(torch.nn.Conv2d(3, 3, 1))


def test_checkpoints_remember_rcc(tmp_path):
    options = {"square": "crop", "negative": "clamp"}
    model = create_model("mobilenetv2", num_joints=2, extra={"NUM_DECONV_FILTERS": [8, 8, 8]},
                         rcc=options)
    path = save_checkpoint(model, tmp_path / "m.pt")
    fresh = create_model("mobilenetv2", num_joints=2, extra={"NUM_DECONV_FILTERS": [8, 8, 8]})
    report = load_checkpoint(fresh, path)
    assert report.meta["rcc"] == rcc_options(model) == rcc_options(fresh)
    assert rcc_options(fresh)["square"] == "crop"
    x = torch.rand(1, 3, 64, 64)
    model.eval(), fresh.eval()
    rebuilt = load_model(path).eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x)) and torch.equal(rebuilt(x), model(x))
    other = create_model("mobilenetv2", num_joints=2, extra={"NUM_DECONV_FILTERS": [8, 8, 8]},
                         rcc=True)
    with pytest.raises(ValueError, match="trained with RCC"):
        load_checkpoint(other, path)
    apply_rcc_meta(other, {})  # no RCC in a meta: nothing happens
    assert rcc_options(other) == RCC().config()
