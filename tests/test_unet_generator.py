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


def test_paper_and_official_activations_are_reversed():
    def kinds(gen, part):
        return {type(m) for m in part.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))}
    paper = UNetGenerator(input_size=(64, 64), ngf=4)
    official = UNetGenerator(input_size=(64, 64), ngf=4, activations="official")
    assert kinds(paper, paper.encoder) == {nn.ReLU} and kinds(paper, paper.decoder) == {nn.LeakyReLU}
    assert kinds(official, official.encoder) == {nn.LeakyReLU} and kinds(official, official.decoder) == {nn.ReLU}
    with pytest.raises(ValueError, match="activations must be one of"):
        UNetGenerator(input_size=(64, 64), activations="tanh")


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
