"""The AdvMix augmentation generator: a pix2pix-style U-Net that outputs mixing weights.

Input: the K + 1 views of each crop (the clean crop and K augmentations), N x V x 3 x H x W
in [0, 1] (or already concatenated, N x 3V x H x W); they are normalised with the ImageNet
mean / std inside, as the official code feeds normalised views. Output: N x V x H x W
weights, a softmax over V at every pixel (they sum to 1), so the mix
``sum_v w_v * view_v`` stays in [0, 1].

Architecture (pix2pix U-Net): ``depth`` encoder blocks of 4x4 stride-2 convolutions with
``ngf * min(2**i, 8)`` channels, InstanceNorm (no affine) on all but the first and the
innermost, then ``depth`` 4x4 stride-2 transposed convolutions back to H x W, each (but the
last) InstanceNorm-ed and concatenated with the encoder feature of its size (skip
connections); the last layer has no norm and no activation (the softmax follows). No
dropout. Depth: the largest d <= 6 with H and W divisible by 2**d (6 at 256x192 and
256x256, 5 at 384x288 and 128x96).

Activations:

- ``'paper'`` (the supplement's description, this module's original network; kept
  bit-identical): ReLU after every convolution, LeakyReLU(0.2) after every transposed
  convolution, the skip is the encoder block's activated output, concatenated after the
  decoder feature; convolutions without bias except the last.
- ``'official'`` (the released AdvMix generator, pix2pix's ``UnetSkipConnectionBlock``
  with ``nn.InstanceNorm2d``): every convolution has a bias (pix2pix sets ``use_bias``
  when the norm is InstanceNorm); LeakyReLU(0.2) *before* every convolution but the first
  (so the next encoder block sees LeakyReLU(e_i)); ReLU on the bottleneck; the skip is
  concatenated *before* the decoder feature and ReLU is applied to the whole concatenation
  before the next transposed convolution. pix2pix's in-place LeakyReLU rewrites the skip
  tensor to LeakyReLU(e_i) and the parent's ReLU then makes it ReLU(LeakyReLU(e_i)) =
  ReLU(e_i): the skips are ReLU-ed, the encoder path LeakyReLU-ed. Parameters are in the
  release's order (outer to inner convolutions, then inner to outer transposed ones), so
  its weights load by order and shape and give its logits (tested against an independent
  recursive skip-block reference).

``image_level=True`` is the AdvMix-Image ablation: the bottleneck is average-pooled, a
linear layer gives V logits, and the softmax is one weight vector per image (returned
broadcast to N x V x H x W).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import IMAGENET_MEAN, IMAGENET_STD

ACTIVATIONS = ("paper", "official")
MAX_DEPTH = 6


def unet_depth(height: int, width: int, max_depth: int = MAX_DEPTH) -> int:
    """The largest d <= ``max_depth`` with ``height`` and ``width`` divisible by 2**d
    (ValueError naming the size when not even d = 1 fits)."""
    depth = 0
    while depth < max_depth and height % 2 ** (depth + 1) == 0 and width % 2 ** (depth + 1) == 0:
        depth += 1
    if depth == 0:
        raise ValueError(f"AdvMix generator: input {width}x{height} (width x height) cannot be "
                         f"taken: width and height must be even (divisible by 2**depth)")
    return depth


def _act(kind: str) -> nn.Module:
    return nn.ReLU(inplace=False) if kind == "relu" else nn.LeakyReLU(0.2, inplace=False)


class UNetGenerator(nn.Module):
    """Per-pixel (or per-image) mixing weights for V views.

    Args:
        num_views: V = K + 1 (3 for AdvMix: clean, AutoAugment, GridMask).
        input_size: (width, height) of the crops; fixes the depth.
        ngf: width of the first block (64 in the paper; smaller for CPU miniatures).
        activations: 'paper' (default) or 'official' (see the module docstring).
        depth: number of down/up blocks; default the largest that fits (<= 6).
        image_level: one weight vector per image (AdvMix-Image).
    """

    def __init__(self, num_views: int = 3, input_size: Sequence[int] = (192, 256), ngf: int = 64,
                 activations: str = "paper", depth: int | None = None,
                 image_level: bool = False) -> None:
        super().__init__()
        if activations not in ACTIVATIONS:
            raise ValueError(f"AdvMix generator: activations must be one of {ACTIVATIONS}, "
                             f"got {activations!r}")
        width, height = int(input_size[0]), int(input_size[1])
        fits = unet_depth(height, width)
        if depth is None:
            depth = fits
        elif not 1 <= depth <= fits:
            raise ValueError(f"AdvMix generator: depth {depth} does not fit input {width}x{height} "
                             f"(width x height); at most {fits}")
        self.num_views, self.input_size, self.depth = int(num_views), (width, height), int(depth)
        self.ngf, self.activations, self.image_level = int(ngf), activations, bool(image_level)
        chans = [self.ngf * min(2 ** i, 8) for i in range(self.depth)]
        if activations == "official":
            self._build_official(chans)
        else:
            self._build_paper(chans)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _build_paper(self, chans: list[int]) -> None:
        """The original network: activation modules inside the blocks, no conv biases but
        the last."""
        self._build_blocks(chans, bias=False, down="relu", up="leaky")

    def _build_official(self, chans: list[int]) -> None:
        """The released network: blocks hold conv (+ norm) only, with biases; the
        activations sit between blocks (see ``_logits_official``)."""
        self.down_act = _act("leaky")  # pix2pix's downrelu, before every conv but the first
        self.up_act = _act("relu")     # its uprelu: bottleneck, skips and decoder features
        self._build_blocks(chans, bias=True, down=None, up=None)

    def _build_blocks(self, chans: list[int], bias: bool, down: str | None,
                      up: str | None) -> None:
        """Encoder, decoder and final layer of either variant. The construction order fixes
        the seeded initialisation (and activations hold no parameters): do not reorder."""
        self.encoder = nn.ModuleList()
        cin = 3 * self.num_views
        for i, cout in enumerate(chans):
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=bias)]
            if 0 < i < self.depth - 1:
                layers.append(nn.InstanceNorm2d(cout))
            if down is not None:
                layers.append(_act(down))
            self.encoder.append(nn.Sequential(*layers))
            cin = cout
        if self.image_level:
            self.head = nn.Linear(chans[-1], self.num_views)
            return
        self.decoder = nn.ModuleList()
        for i in range(self.depth - 1, 0, -1):  # up to the size of encoder block i - 1
            cin = chans[i] if i == self.depth - 1 else 2 * chans[i]
            layers = [nn.ConvTranspose2d(cin, chans[i - 1], 4, 2, 1, bias=bias),
                      nn.InstanceNorm2d(chans[i - 1])]
            self.decoder.append(nn.Sequential(*layers, *([_act(up)] if up is not None else [])))
        cin = chans[0] if self.depth == 1 else 2 * chans[0]
        self.final = nn.ConvTranspose2d(cin, self.num_views, 4, 2, 1, bias=True)

    def _check(self, views: torch.Tensor) -> torch.Tensor:
        if views.dim() == 5:
            views = views.flatten(1, 2)
        n, c, h, w = views.shape if views.dim() == 4 else (None,) * 4
        if c != 3 * self.num_views:
            raise ValueError(f"AdvMix generator: expects {self.num_views} views (N x {self.num_views} x 3 x H x W), "
                             f"got {tuple(views.shape)}")
        step = 2 ** self.depth
        if h % step or w % step:
            raise ValueError(f"AdvMix generator: input {w}x{h} (width x height) cannot be taken "
                             f"at depth {self.depth}: width and height must be divisible by {step}")
        return views

    def logits(self, views: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores: N x V x H x W (or N x V for ``image_level``)."""
        x = self._check(views)
        n = x.shape[0]
        x = ((x.view(n, self.num_views, 3, *x.shape[2:]) - self.mean.unsqueeze(1))
             / self.std.unsqueeze(1)).flatten(1, 2)
        if self.activations == "official":
            return self._logits_official(x)
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        if self.image_level:
            return self.head(x.mean((2, 3)))
        for j, block in enumerate(self.decoder):
            x = block(x)
            x = torch.cat([x, skips[self.depth - 2 - j]], 1)
        return self.final(x)

    def _logits_official(self, x: torch.Tensor) -> torch.Tensor:
        """pix2pix's recursion unrolled; ``x`` N x 3V x H x W normalised views."""
        feats = []  # e_i: encoder outputs before any activation
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.down_act(x))
            feats.append(x)
        x = self.up_act(x)  # the innermost block's ReLU before its transposed conv
        if self.image_level:
            return self.head(x.mean((2, 3)))
        for j, block in enumerate(self.decoder):
            # skip first, then the decoder feature; one ReLU over both (pix2pix's uprelu)
            x = self.up_act(torch.cat([feats[self.depth - 2 - j], block(x)], 1))
        return self.final(x)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """Mixing weights N x V x H x W, summing to 1 over V at every pixel."""
        scores = self.logits(views)
        weights = torch.softmax(scores.float(), 1).to(scores.dtype)
        if self.image_level:
            h, w = views.shape[-2:]
            weights = weights[:, :, None, None].expand(-1, -1, h, w)
        return weights


def build_advmix_generator(input_size: Sequence[int], num_views: int = 3, ngf: int = 64,
                           activations: str = "paper", image_level: bool = False,
                           depth: int | None = None, seed: int = 0) -> UNetGenerator:
    """The AdvMix generator for crops of ``input_size`` (width, height), initialised from
    ``seed`` on a forked RNG (the global RNG is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return UNetGenerator(num_views, input_size, ngf, activations, depth, image_level)
