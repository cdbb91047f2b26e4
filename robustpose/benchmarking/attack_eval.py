"""One attack cell's evaluation: the top-down [0, 1] crops of the evaluation records, the
attack on each batch, the data set's metric, PCK@0.1 of the box size and (targeted) the
target success PCK. Shared by the attack run and the UAP's fitting / held-out curve.

PCK is :class:`robustpose.evaluation.pck.BoxPCK` (the one box-normalised PCK); crop px go
to image px through :func:`robustpose.codecs.heatmaps_to_image_coords`.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch

from robustpose.benchmarking.stream import collate_meta
from robustpose.evaluation.pck import BoxPCK

PCK_THR = 0.1


def crop_frame_joints(records: Sequence[Any], input_size: tuple[int, int]) -> np.ndarray:
    """(N, K, 3) ground-truth keypoints in each record's crop pixels (visible 0/1)."""
    from robustpose.geometry import affine_transform_points, get_affine_transform

    out = []
    for r in records:
        kp = np.zeros((0, 3)) if r.keypoints is None else np.asarray(r.keypoints, np.float64)
        j = kp.copy()
        j[:, 2] = (j[:, 2] > 0)
        m = get_affine_transform(r.center, r.scale, 0, input_size)
        vis = j[:, 2] > 0
        j[vis, :2] = affine_transform_points(j[vis, :2], m)
        out.append(j)
    return np.stack(out)


def crop_to_image(points: np.ndarray, meta: dict, input_size: tuple[int, int]) -> np.ndarray:
    """(N, K, >=2) crop px -> (N, K, 2) image px: the codecs' one back-projection."""
    from robustpose.codecs import heatmaps_to_image_coords

    return heatmaps_to_image_coords(np.asarray(points, np.float64)[..., :2], meta["center"],
                                    meta["scale"], input_size)


def box_pck(num_joints: int) -> BoxPCK:
    """PCK@0.1 of max(box w, h) (``robustpose.evaluation.pck``, the one definition)."""
    return BoxPCK(num_joints, PCK_THR)


def _collate(items: list[dict]) -> dict:
    batch = {"image": torch.stack([it["image"] for it in items]),
             "target": torch.stack([it["target"] for it in items]),
             "target_weight": torch.stack([it["target_weight"] for it in items])[..., 0]}
    keys = items[0]["meta"].keys()
    batch["meta"] = {k: collate_meta([it["meta"][k] for it in items]) for k in keys}
    return batch


def crop_batches(records: Sequence[Any], spec: Any, adapter: Any, batch_size: int,
                 skipped: list | None = None):
    """Collated batches of the readable records' crops; each batch's ``positions`` are its
    items' indices in ``records``. An unreadable image is skipped and added to ``skipped``
    ((path, problem) pairs), the policy of ``benchmark`` and ``stability``."""
    from torch.utils.data import DataLoader

    from robustpose.data import TopDownDataset
    from robustpose.data.dataset import split_valid_batch

    w, h = adapter.input_size
    codec = target_encoder(adapter)
    dataset = TopDownDataset(list(records), spec, input_size=(w, h),
                             heatmap_size=(max(1, w // 4), max(1, h // 4)), train=False,
                             codec=codec, encode_targets=codec is not None,
                             skip_unreadable=True)
    offset = 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0,
                            collate_fn=_collate):
        valid = np.asarray(batch["meta"]["valid"], bool).reshape(-1)
        positions = offset + np.flatnonzero(valid)
        offset += len(valid)
        batch, skips = split_valid_batch(batch)
        if skipped is not None:
            skipped.extend(skips)
        if batch is not None:
            batch["positions"] = positions
            yield batch


def evaluate_cell(adapter: Any, source: Any, attack: Any, options: dict,
                  partner_joints: np.ndarray | None, metric: Any = None) -> dict:
    """Run one cell over the evaluation records -> its metrics (no record written).
    ``metric``: the run's dataset metric, reset here (None: a fresh ``source.make_metric()``;
    passing one reads the ground truth once per run, not once per cell)."""
    if metric is None:
        metric = source.make_metric()
    metric.reset()
    k = len(source.spec.keypoint_names)
    pck, target_pck = box_pck(k), box_pck(k)
    started, queries, attack_s = time.perf_counter(), [], 0.0
    skipped: list = []
    for batch in crop_batches(source.records, source.spec, adapter, options["batch_size"], skipped):
        crops, meta, at = batch["image"], batch["meta"], batch["positions"]
        if attack is not None:
            targets = None
            if options["targeted"]:
                from robustpose.attacks import pose_targets

                chosen = pose_targets(partner_joints[at], target_encoder(adapter))
                targets = {k_: torch.from_numpy(v) for k_, v in chosen.items()}
            elif options["reference"] == "gt" and batch["target"].dim() > 2:
                targets = {"target": batch["target"], "target_weight": batch["target_weight"]}
            t0 = time.perf_counter()
            crops = attack(crops, targets)
            attack_s += time.perf_counter() - t0
            if hasattr(attack, "queries_used"):
                queries.append(attack.queries_used)
        keypoints = adapter.predict(crops, meta, source.spec, False)
        metric.accumulate(keypoints, meta)
        boxes = np.asarray(meta["bbox"], np.float64)
        pck.accumulate(keypoints, np.asarray(meta["keypoints"], np.float64), boxes)
        if options["targeted"] and attack is not None:
            goal = partner_joints[at]
            goal_img = np.concatenate([crop_to_image(goal, meta, adapter.input_size),
                                       goal[..., 2:]], axis=-1)
            target_pck.accumulate(keypoints, goal_img, boxes)
    if len(skipped) == len(source.records):  # a cell with no scored person is no result
        raise ValueError(f"{source.name}: every image was skipped (unreadable), e.g. {skipped[0][0]}: "
                         f"{skipped[0][1]}")
    stats = metric.stats()
    scored = pck.stats()
    mean, per_joint = scored["PCK"], [None if v is None else round(v, 6)
                                      for v in scored["PCK_per_joint"]]
    out = {"metrics": {k_: v for k_, v in stats.items() if isinstance(v, (int, float))},
           "pck": mean, "pck_per_joint": per_joint,
           "elapsed_s": round(time.perf_counter() - started, 3), "attack_s": round(attack_s, 3),
           "skipped_images": [{"path": p, "problem": q} for p, q in sorted(set(skipped))]}
    out["metric_value"] = stats.get(source.metric_name)
    if options["targeted"] and attack is not None:
        out["target_pck"] = target_pck.stats()["PCK"]
    if queries:
        out["queries_per_crop"] = int(max(queries))
    return out


def target_encoder(adapter: Any) -> Any:
    """The codec that encodes target poses in the attacked model's output space."""
    codec = getattr(adapter, "codec", None)
    if codec is not None and not hasattr(codec, "encode"):  # CallableAdapter.codec(kind)
        codec = codec(getattr(adapter, "output_kind", "heatmaps")
                      if getattr(adapter, "output_kind", "auto") != "auto" else "heatmaps")
    return codec
