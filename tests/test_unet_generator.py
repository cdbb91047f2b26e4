"""The AdvMix U-Net generator: depth rule, shapes, weights summing to 1, activations, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from robustpose.models import UNetGenerator, build_advmix_generator, unet_depth


@pytest.mark.parametrize("width, height, depth", [
    (192, 256, 6), (256, 256, 6), (288, 384, 5), (96, 128, 5), (64, 64, 6), (48, 64, 4), (6, 10, 1),
])
def test_depth_is_the_largest_power_of_two_dividing_both_sides(width, height, depth):
    assert unet_depth(height, width) == depth
    assert UNetGenerator(input_size=(width, height), ngf=4).depth == depth


def test_a_size_it_cannot_take_is_a_one_line_error_naming_it():
    with pytest.raises(ValueError, match=r"input 63x64 \(width x height\) cannot be taken"):
        UNetGenerator(input_size=(63, 64), ngf=4)
    gen = UNetGenerator(input_size=(64, 64), ngf=4)
    with pytest.raises(ValueError, match=r"input 48x40 .*divisible by 64"):
        gen(torch.rand(1, 3, 3, 40, 48))
    with pytest.raises(ValueError, match="expects 3 views"):
        gen(torch.rand(1, 2, 3, 64, 64))
    with pytest.raises(ValueError, match="depth 7 does not fit"):
        UNetGenerator(input_size=(64, 64), depth=7)


@pytest.mark.parametrize("size", [(96, 128), (64, 64)])
def test_weights_are_a_per_pixel_softmax_over_the_views(size):
    gen = build_advmix_generator(size, ngf=8, seed=1)
    views = torch.rand(2, 3, 3, size[1], size[0])
    weights = gen(views)
    assert weights.shape == (2, 3, size[1], size[0])
    assert torch.allclose(weights.sum(1), torch.ones(2, size[1], size[0]), atol=1e-6)
    assert (weights > 0).all()
    # the weights vary over the image (a per-pixel map, not a constant)
    assert weights[:, 0].flatten(1).std(1).min() > 0
    assert torch.equal(gen(views.flatten(1, 2)), weights)  # concatenated input is the same
    weights.sum().backward()  # differentiable end to end


def test_skip_connections_and_channel_widths():
    gen = UNetGenerator(input_size=(192, 256), ngf=64)
    convs = [m for m in gen.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512]
    assert convs[0].in_channels == 9 and all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    ups = [m for m in gen.decoder.modules() if isinstance(m, nn.ConvTranspose2d)] + [gen.final]
    assert [u.in_channels for u in ups] == [512, 1024, 1024, 512, 256, 128]  # skips concatenated
    assert gen.final.out_channels == 3
    norms = [m for m in gen.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 4 + 5  # encoder blocks 2..5, every decoder block but the last


def test_paper_activations_sit_in_the_blocks_and_official_ones_between_them():
    def kinds(part):
        return {type(m) for m in part.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))}
    paper = UNetGenerator(input_size=(64, 64), ngf=4)
    official = UNetGenerator(input_size=(64, 64), ngf=4, activations="official")
    assert kinds(paper.encoder) == {nn.ReLU} and kinds(paper.decoder) == {nn.LeakyReLU}
    assert kinds(official.encoder) == set() and kinds(official.decoder) == set()
    assert type(official.down_act) is nn.LeakyReLU and type(official.up_act) is nn.ReLU
    convs = [m for m in official.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 12 and all(c.bias is not None for c in convs)  # pix2pix + InstanceNorm
    assert [m.bias is None for m in paper.modules()
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))] == [True] * 11 + [False]
    with pytest.raises(ValueError, match="activations must be one of"):
        UNetGenerator(input_size=(64, 64), activations="tanh")


class RefSkipBlock(nn.Module):
    """An independent pix2pix-style U-Net level, written as the recursion: this level's
    conv, the inner level, this level's transposed conv; every level but the outermost
    returns [its input, its output] concatenated. Activations are in place, as in pix2pix,
    so the skip tensor is rewritten by the inner level's LeakyReLU and the outer ReLU."""

    def __init__(self, outer: int, inner: int, in_ch: int | None = None,
                 child: nn.Module | None = None, where: str = "middle") -> None:
        super().__init__()
        self.where = where
        down = nn.Conv2d(outer if in_ch is None else in_ch, inner, 4, 2, 1, bias=True)
        if where == "outermost":
            layers = [down, child, nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1)]
        elif where == "innermost":
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=True), nn.InstanceNorm2d(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, nn.InstanceNorm2d(inner), child, nn.ReLU(True),
                      nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=True), nn.InstanceNorm2d(outer)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) if self.where == "outermost" else torch.cat([x, self.body(x)], 1)


def reference_unet(in_ch: int, out_ch: int, depth: int, ngf: int) -> nn.Module:
    widths = [ngf * min(2 ** i, 8) for i in range(depth)]  # ngf, 2, 4, 8, 8, ... (pix2pix)
    block = RefSkipBlock(widths[-2], widths[-1], where="innermost")
    for i in range(depth - 2, 0, -1):
        block = RefSkipBlock(widths[i - 1], widths[i], child=block)
    return RefSkipBlock(out_ch, widths[0], in_ch=in_ch, child=block, where="outermost")


@pytest.mark.parametrize("size, depth, ngf", [((96, 128), 5, 4), ((64, 64), 6, 2), ((64, 128), 6, 3)])
def test_official_generator_equals_an_independent_pix2pix_unet_with_the_same_weights(size, depth, ngf):
    width, height = size
    gen = UNetGenerator(input_size=size, ngf=ngf, activations="official")
    assert gen.depth == depth
    torch.manual_seed(0)  # only this test's weights; both networks get the same ones
    ref = reference_unet(9, 3, depth, ngf)
    ours, theirs = list(gen.parameters()), list(ref.parameters())
    assert [p.shape for p in ours] == [p.shape for p in theirs]  # the release's order and shapes
    with torch.no_grad():
        for p in theirs:  # spread the weights so every activation sees both signs
            p.normal_(0.0, 0.3)
        for a, b in zip(ours, theirs):
            a.copy_(b)
        views = torch.rand(2, 3, 3, height, width, generator=torch.Generator().manual_seed(1))
        mean, std = gen.mean.unsqueeze(1), gen.std.unsqueeze(1)
        expected = ref(((views - mean) / std).flatten(1, 2))  # the release feeds normalised views
        got = gen.logits(views)
    assert got.shape == expected.shape == (2, 3, height, width)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert float(expected.std()) > 0.1  # a non-trivial output


def test_paper_generator_is_the_original_network():
    """The ``paper`` variant written out with functional ops (its numerics are pinned:
    trained runs and published rows use it): ReLU after convs, LeakyReLU after transposed
    convs, [decoder, skip] concatenation, no biases but the last layer's."""
    import torch.nn.functional as F
    gen = build_advmix_generator((96, 128), ngf=4, seed=2)
    views = torch.rand(2, 3, 3, 128, 96, generator=torch.Generator().manual_seed(3))
    x = ((views - gen.mean.unsqueeze(1)) / gen.std.unsqueeze(1)).flatten(1, 2)
    skips = []
    for i, block in enumerate(gen.encoder):
        x = F.conv2d(x, block[0].weight, None, 2, 1)
        x = F.relu(F.instance_norm(x) if 0 < i < gen.depth - 1 else x)
        skips.append(x)
    for j, block in enumerate(gen.decoder):
        x = F.leaky_relu(F.instance_norm(F.conv_transpose2d(x, block[0].weight, None, 2, 1)), 0.2)
        x = torch.cat([x, skips[gen.depth - 2 - j]], 1)
    expected = F.conv_transpose2d(x, gen.final.weight, gen.final.bias, 2, 1)
    with torch.no_grad():
        torch.testing.assert_close(gen.logits(views), expected, rtol=1e-5, atol=1e-5)


def test_image_level_variant_gives_one_weight_vector_per_image():
    gen = build_advmix_generator((96, 128), ngf=8, image_level=True)
    weights = gen(torch.rand(3, 3, 3, 128, 96))
    assert weights.shape == (3, 3, 128, 96)
    flat = weights.flatten(2)
    assert torch.equal(flat, flat[:, :, :1].expand_as(flat))  # constant over the image
    assert torch.allclose(weights.sum(1), torch.ones(3, 128, 96), atol=1e-6)


def test_seeded_builds_repeat_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_advmix_generator((64, 64), ngf=4, seed=3), build_advmix_generator((64, 64), ngf=4, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
