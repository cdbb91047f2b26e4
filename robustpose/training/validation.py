"""Sharded validation: each rank predicts its share, rank 0 gathers and scores.

The predictions of all ranks are gathered with ``torch.distributed.all_gather_object``
and sorted by dataset index before the metric sees them, so N processes give the same
numbers as one.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from robustpose.training.distributed import DistInfo, gather_to_main, shard_indices
from robustpose.utils.conventions import to_numpy as _to_numpy
from robustpose.utils.processes import loader_worker_options
from robustpose.utils.progress import show_progress

#: meta keys passed on to the metric (those present in the dataset's meta)
META_KEYS = ("index", "image_id", "score", "area", "center", "scale", "bbox")

#: ``predict_fn(model, images, metas, spec) -> (N, K, 3)`` keypoints in image pixels
PredictFn = Callable[..., Any]


def predict_fn_for(config: dict, codec: Any = None) -> PredictFn:
    """The config's prediction: :func:`robustpose.codecs.predict_keypoints` with the
    config's :class:`~robustpose.codecs.InferenceSetting` (flip test, ``val.flip_shift``,
    ``val.refine``, ``val.dark_kernel``) and ``codec`` (the one that made the targets;
    default: the config's, :func:`~robustpose.training.datasets.build_codec_for`)."""
    import functools

    from robustpose.codecs import predict_keypoints
    from robustpose.training.datasets import build_codec_for, inference_setting_for

    return functools.partial(predict_keypoints, setting=inference_setting_for(config),
                             codec=codec if codec is not None else build_codec_for(config))


@torch.no_grad()
def predict_dataset(model: nn.Module, dataset: Dataset, spec: Any, info: DistInfo,
                    batch_size: int = 32, num_workers: int = 0,
                    predict_fn: PredictFn | None = None,
                    progress: bool = True, desc: str = "val") -> dict[str, np.ndarray] | None:
    """Keypoints for every item of ``dataset`` (in image pixels), gathered on rank 0.

    Returns on rank 0 ``{'keypoints': (N,K,3), <meta key>: (N,...), 'skipped': [(path,
    error), ...]}`` sorted by dataset index; ``None`` on the other ranks. Items whose image
    could not be read are left out and listed under ``skipped``. ``model`` is the bare
    PoseModel (not DDP). ``predict_fn(model, images, metas, spec)`` makes the keypoints
    (default: :func:`robustpose.codecs.predict_keypoints` with its defaults; the trainer
    and ``robustpose test`` pass :func:`predict_fn_for`'s, which carries the setting).
    """
    if predict_fn is None:
        from robustpose.codecs import predict_keypoints as predict_fn
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    shard = Subset(dataset, shard_indices(len(dataset), info))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda", **loader_worker_options(num_workers))
    parts: dict[str, list[np.ndarray]] = {"keypoints": []}
    skipped: list[tuple[str, str]] = []
    for batch in tqdm(loader, desc=desc, disable=not (show_progress(progress) and info.is_main),
                      leave=False):
        if "valid" in batch["meta"]:  # unreadable images: left out and recorded
            from robustpose.data import split_valid_batch
            batch, skips = split_valid_batch(batch)
            skipped += skips
            if batch is None:
                continue
        images = batch["image"].to(device, non_blocking=True)
        meta = batch["meta"]
        keypoints = predict_fn(model, images, meta, spec)
        parts["keypoints"].append(_to_numpy(keypoints).astype(np.float64))
        for key in META_KEYS:
            if key in meta:
                parts.setdefault(key, []).append(_to_numpy(meta[key]))
    model.train(was_training)
    local = {k: np.concatenate(v) for k, v in parts.items() if v}
    gathered = gather_to_main((local, skipped), info)
    if gathered is None:
        return None
    keys = [k for g, _ in gathered for k in g]
    merged = {k: np.concatenate([g[k] for g, _ in gathered if k in g]) for k in dict.fromkeys(keys)}
    if "index" in merged and len(merged["index"]):
        order = np.argsort(merged["index"], kind="stable")
        merged = {k: v[order] for k, v in merged.items()}
    merged["skipped"] = [s for _, skips in gathered for s in skips]
    return merged


def score_predictions(predictions: dict[str, np.ndarray], metric: Any) -> dict[str, float]:
    """Feed gathered predictions to a metric (``accumulate`` + ``stats``)."""
    if "keypoints" not in predictions:
        raise ValueError("validation: no readable item to score (all images skipped)")
    meta = {k: v for k, v in predictions.items() if k not in ("keypoints", "skipped")}
    metric.accumulate(predictions["keypoints"], meta)
    stats = {k: float(v) for k, v in metric.stats().items()
             if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)}
    if predictions.get("skipped"):
        stats["skipped_items"] = float(len(predictions["skipped"]))
    return stats


def validate(model: nn.Module, dataset: Dataset, spec: Any, metric_factory: Callable[[], Any],
             info: DistInfo, **kwargs: Any) -> tuple[dict[str, float] | None, Any]:
    """Predict (sharded), gather, score on rank 0. Returns ``(stats, metric)`` on rank 0,
    ``(None, None)`` elsewhere; the metric object can still ``write_predictions``."""
    predictions = predict_dataset(model, dataset, spec, info, **kwargs)
    if predictions is None:
        return None, None
    metric = metric_factory()
    return score_predictions(predictions, metric), metric
