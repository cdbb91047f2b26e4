"""From model outputs to image keypoints: flip test, decoding, back-projection.

Two different "shifts" (HRNet's names): in :func:`flip_heatmaps` / :func:`predict_keypoints`
``shift`` is ``TEST.SHIFT_HEATMAP``, moving the flipped-back heatmaps 1 px right before
averaging; the quarter-pixel offset of decoding (``TEST.POST_PROCESS``) is ``refine``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..data.transforms import get_affine_transform
from .gaussian import GaussianHeatmap

__all__ = ["flip_heatmaps", "heatmaps_to_image_coords", "predict_heatmaps",
           "predict_keypoints"]


def flip_heatmaps(heatmaps, flip_pairs: Sequence[tuple[int, int]], shift: bool = True):
    """Align the heatmaps of a mirrored crop with the unmirrored one (HRNet ``flip_back``).

    ``heatmaps``: N x K x h x w (torch tensor or numpy), the model's output on the
    horizontally flipped crop. Mirrors the width axis, swaps each flip pair's channels and,
    with ``shift``, moves the maps 1 px right (column 0 keeps its value), as HRNet does
    before averaging. Returns the same type.
    """
    k = heatmaps.shape[1]
    perm = np.arange(k)
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    if isinstance(heatmaps, torch.Tensor):
        out = heatmaps.flip(-1)[:, torch.as_tensor(perm, device=heatmaps.device)]
        if shift:
            out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
        return out
    out = np.asarray(heatmaps)[..., ::-1][:, perm]
    if shift:
        out = np.concatenate([out[..., :1], out[..., :-1]], axis=-1)
    return np.ascontiguousarray(out)


def heatmaps_to_image_coords(coords: np.ndarray, center: np.ndarray, scale: np.ndarray,
                             heatmap_size: Sequence[int]) -> np.ndarray:
    """Heatmap-pixel coords (N, K, 2) -> image pixels, HRNet's ``transform_preds``.

    ``center``/``scale`` (N, 2) are the crops' HRNet parameters; ``heatmap_size`` (w, h).
    Uses the inverse of :func:`get_affine_transform` at rotation 0 for each crop.
    """
    coords = np.asarray(coords, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 2)
    out = np.empty_like(coords)
    for i in range(coords.shape[0]):
        inv = get_affine_transform(center[i], scale[i], 0, heatmap_size, inv=True)
        out[i] = coords[i] @ inv[:, :2].T.astype(np.float64) + inv[:, 2].astype(np.float64)
    return out


def _meta_array(metas: Any, key: str, n: int) -> np.ndarray:
    if isinstance(metas, Mapping):
        value = metas[key]
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        return np.asarray(value, dtype=np.float64).reshape(n, -1)
    return np.asarray([np.asarray(m[key], dtype=np.float64) for m in metas]).reshape(n, -1)


@torch.no_grad()
def predict_heatmaps(model: torch.nn.Module, images: torch.Tensor,
                     flip_pairs: Sequence[tuple[int, int]], flip_test: bool = True,
                     shift: bool = True) -> torch.Tensor:
    """Model heatmaps of crops N x 3 x H x W in [0, 1], averaged with the flip test."""
    out = model(images)
    if isinstance(out, (list, tuple)):  # stacked models: the last stack is the prediction
        out = out[-1]
    if flip_test:
        flipped = model(images.flip(3))
        if isinstance(flipped, (list, tuple)):
            flipped = flipped[-1]
        out = (out + flip_heatmaps(flipped, flip_pairs, shift=shift)) * 0.5
    return out


def predict_keypoints(model: torch.nn.Module, images: torch.Tensor, metas: Any, spec: Any,
                      flip_test: bool = True, shift: bool = True, refine: str = "quarter",
                      boundary: str = "hrnet", codec: GaussianHeatmap | None = None,
                      blur_kernel: int = 11) -> np.ndarray:
    """Keypoints (N, K, 3) in image pixels: x, y, score (the heatmap maximum).

    ``images``: crops N x 3 x H x W float in [0, 1] (on the model's device); ``metas``:
    the batch meta (dict of arrays/tensors with ``center``, ``scale`` (N, 2), as collated
    from :class:`~robustpose.data.TopDownDataset`) or a list of per-item dicts; ``spec``:
    the :class:`~robustpose.data.KeypointSpec` (its ``flip_pairs``). ``shift``: HRNet's
    1-px shift of the flipped heatmaps; ``refine``: 'quarter' (HRNet post-processing),
    'dark' (``blur_kernel``: DARK's heatmap smoothing, odd, in heatmap px) or 'none';
    ``boundary``: the quarter-shift rule, 'hrnet' or 'mmpose'.
    Models with ``output_kind == 'coords'`` must return N x K x 2 in input-crop pixels;
    their flip test mirrors ``x -> W - 1 - x`` and swaps pairs; scores are 1.
    """
    n = images.shape[0]
    center = _meta_array(metas, "center", n)
    scale = _meta_array(metas, "scale", n)
    in_w, in_h = int(images.shape[3]), int(images.shape[2])
    if getattr(model, "output_kind", "heatmaps") == "coords":
        return _predict_coords(model, images, center, scale, spec, flip_test)
    heatmaps = predict_heatmaps(model, images, spec.flip_pairs, flip_test, shift)
    hm_h, hm_w = int(heatmaps.shape[2]), int(heatmaps.shape[3])
    if codec is None:
        codec = GaussianHeatmap((in_w, in_h), (hm_w, hm_h), refine=refine, boundary=boundary,
                                blur_kernel=blur_kernel)
    coords, maxvals = codec.decode(heatmaps, shift=refine != "none", refine=refine)
    xy = heatmaps_to_image_coords(coords, center, scale, (hm_w, hm_h))
    return np.concatenate([xy, maxvals[..., None].astype(np.float64)], axis=-1)


@torch.no_grad()
def _predict_coords(model, images, center, scale, spec, flip_test) -> np.ndarray:
    in_w = int(images.shape[3])
    coords = model(images).detach().float().cpu().numpy().astype(np.float64)
    if flip_test:
        flipped = model(images.flip(3)).detach().float().cpu().numpy().astype(np.float64)
        flipped[..., 0] = in_w - 1 - flipped[..., 0]
        coords = (coords + flipped[:, spec.flip_permutation()]) * 0.5
    size = (int(images.shape[3]), int(images.shape[2]))
    xy = heatmaps_to_image_coords(coords[..., :2], center, scale, size)
    return np.concatenate([xy, np.ones(xy.shape[:2] + (1,))], axis=-1)
