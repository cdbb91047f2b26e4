"""``robustpose attack``: one record per (attack, eps, steps) cell in a benchmark run folder.

The benchmark's machinery, reused: the adapters (:func:`resolve_adapter`), the data
sources with ground-truth boxes (:func:`resolve_source`), :class:`RunFolder` (run.json,
lock, resume per cell). A cell's key in the store is ``corruption = '<attack>-<U|T>[-ALL]
@<eps>'`` (``transfer[<surrogate>]-...`` for transfer) and ``severity = steps``; the clean
cell ('clean', 0) is the reference of every relative number. Crops are the top-down
path's [0, 1] crops (no flip test: an attack perturbs the crop the model sees); the
adversarial crop never leaves that space. Per cell: the data set's own metric (OKS AP /
PCKh), PCK@0.1 of the box size (max of box w, h), per-joint PCK, and for targeted
attacks the target success PCK@0.1 against the partner pose. The card
(``attack.json``, ``attack.md``, plots) holds relative = attacked / clean.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from robustpose.benchmarking.attack_args import check_alpha, check_counts, parse_numbers
from robustpose.benchmarking.attack_card import cell_line
from robustpose.benchmarking.cells import Cell
from robustpose.benchmarking.stream import _collate_meta

COMMAND = "attack"
ATTACK_KINDS = ("fgsm", "igsm", "uap", "transfer", "spsa")
PCK_THR = 0.1


def cell_key(attack: str, eps: float, targeted: bool, all_stacks: bool,
             surrogate: str | None = None) -> str:
    mode = ("T" if targeted else "U") + ("-ALL" if all_stacks else "")
    head = f"transfer[{surrogate}]-igsm" if attack == "transfer" else attack
    return f"{head}-{mode}@{eps:g}"


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


def _to_image(points: np.ndarray, meta: dict, input_size: tuple[int, int]) -> np.ndarray:
    from robustpose.geometry import affine_transform_points, get_affine_transform

    out = np.array(points[..., :2], dtype=np.float64)
    for i in range(len(out)):
        inv = get_affine_transform(meta["center"][i], meta["scale"][i], 0, input_size, inv=True)
        out[i] = affine_transform_points(out[i], inv)
    return out


def pck_hits(pred_xy: np.ndarray, gt: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hits, visible) (N, K) booleans: distance / max(box w, h) < 0.1 on visible joints."""
    visible = gt[..., 2] > 0
    norm = np.maximum(np.maximum(boxes[:, 2], boxes[:, 3]), 1e-6)
    dist = np.linalg.norm(pred_xy[..., :2] - gt[..., :2], axis=-1) / norm[:, None]
    return (dist < PCK_THR) & visible, visible


class _Pck:
    def __init__(self, k: int) -> None:
        self.hits, self.seen = np.zeros(k), np.zeros(k)

    def add(self, hits: np.ndarray, visible: np.ndarray) -> None:
        self.hits += hits.sum(0)
        self.seen += visible.sum(0)

    def stats(self) -> tuple[float | None, list]:
        per = np.where(self.seen > 0, self.hits / np.maximum(self.seen, 1), np.nan)
        mean = float(np.nanmean(per)) if np.isfinite(per).any() else None
        return mean, [None if not np.isfinite(v) else round(float(v), 6) for v in per]


def _collate(items: list[dict]) -> dict:
    batch = {"image": torch.stack([it["image"] for it in items]),
             "target": torch.stack([it["target"] for it in items]),
             "target_weight": torch.stack([it["target_weight"] for it in items])[..., 0]}
    keys = items[0]["meta"].keys()
    batch["meta"] = {k: _collate_meta([it["meta"][k] for it in items]) for k in keys}
    return batch


def _batches(records: Sequence[Any], spec: Any, adapter: Any, batch_size: int,
             skipped: list | None = None):
    """Collated batches of the readable records' crops; each batch's ``positions`` are its
    items' indices in ``records``. An unreadable image is skipped and added to ``skipped``
    ((path, problem) pairs), the policy of ``benchmark`` and ``stability``."""
    from torch.utils.data import DataLoader

    from robustpose.data import TopDownDataset
    from robustpose.data.dataset import split_valid_batch

    w, h = adapter.input_size
    codec = _encoder(adapter)
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


def build_attack(kind: str, model: Any, eps: float, steps: int, options: dict) -> Any:
    """The attack object of one cell (``model``: the attacked model, or the surrogate)."""
    from robustpose.attacks import FGSM, IGSM, SPSA, UAP

    common = {"loss": options["loss"], "targeted": options["targeted"], "seed": options["seed"],
              "all_stacks": options["all_stacks"]}
    if kind == "fgsm":
        return FGSM(model, eps, **common)
    if kind in ("igsm", "transfer"):
        return IGSM(model, eps, steps=steps, alpha=options.get("alpha"), **common)
    if kind == "spsa":
        common.pop("all_stacks")
        return SPSA(model, eps, steps=steps, samples=options["spsa_samples"],
                    max_queries=options.get("max_queries"), alpha=options.get("alpha"), **common)
    if kind == "uap":
        common.pop("targeted")
        return UAP(model, eps, epochs=steps, alpha=options.get("alpha"),
                   batch_size=options["batch_size"], **common)
    raise ValueError(f"unknown attack {kind!r}; choose from {', '.join(ATTACK_KINDS)}")


def evaluate_cell(adapter: Any, source: Any, attack: Any, options: dict,
                  partner_joints: np.ndarray | None) -> dict:
    """Run one cell over the evaluation records -> its metrics (no record written)."""
    metric = source.make_metric()
    k = len(source.spec.keypoint_names)
    pck, target_pck = _Pck(k), _Pck(k)
    started, queries, attack_s = time.perf_counter(), [], 0.0
    skipped: list = []
    for batch in _batches(source.records, source.spec, adapter, options["batch_size"], skipped):
        crops, meta, at = batch["image"], batch["meta"], batch["positions"]
        if attack is not None:
            targets = None
            if options["targeted"]:
                from robustpose.attacks import pose_targets

                chosen = pose_targets(partner_joints[at], _encoder(adapter))
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
        pck.add(*pck_hits(keypoints, np.asarray(meta["keypoints"], np.float64), boxes))
        if options["targeted"] and attack is not None:
            goal = partner_joints[at]
            goal_img = np.concatenate([_to_image(goal, meta, adapter.input_size),
                                       goal[..., 2:]], axis=-1)
            target_pck.add(*pck_hits(keypoints, goal_img, boxes))
    if len(skipped) == len(source.records):  # a cell with no scored person is no result
        raise ValueError(f"{source.name}: every image was skipped (unreadable), e.g. {skipped[0][0]}: "
                         f"{skipped[0][1]}")
    stats = metric.stats()
    mean, per_joint = pck.stats()
    out = {"metrics": {k_: v for k_, v in stats.items() if isinstance(v, (int, float))},
           "pck": mean, "pck_per_joint": per_joint,
           "elapsed_s": round(time.perf_counter() - started, 3), "attack_s": round(attack_s, 3),
           "skipped_images": [{"path": p, "problem": q} for p, q in sorted(set(skipped))]}
    out["metric_value"] = stats.get(source.metric_name)
    if options["targeted"] and attack is not None:
        out["target_pck"] = target_pck.stats()[0]
    if queries:
        out["queries_per_crop"] = int(max(queries))
    return out


def _encoder(adapter: Any) -> Any:
    """The codec that encodes target poses in the attacked model's output space."""
    codec = getattr(adapter, "codec", None)
    if codec is not None and not hasattr(codec, "encode"):  # CallableAdapter.codec(kind)
        codec = codec(getattr(adapter, "output_kind", "heatmaps")
                      if getattr(adapter, "output_kind", "auto") != "auto" else "heatmaps")
    return codec


def run_attack(attack: str, model: Any = None, *, checkpoint: Any = None, config: Any = None,
               onnx: Any = None, onnx_spec: Any = None, dataset: str = "synth",
               data_root: Any = None, annotations: Any = None, max_images: int | None = None,
               spec: str | None = None, input_size: Any = None,
               eps: str | Sequence[float] = "0.25,0.5,1,2,4,8,16,32",
               steps: str | Sequence[int] = "10,100", targeted: bool = False,
               all_stacks: bool = False, loss: str = "auto", reference: str = "gt",
               alpha: float | None = None, surrogates: Sequence[str] = (),
               spsa_samples: int = 16, max_queries: int | None = None,
               uap_fit_images: int = 32, uap_fit_annotations: Any = None,
               uap_holdout_images: int = 0, uap_patience: int = 0,
               uap_min_delta: float = 0.005, batch_size: int = 16, device: str = "cpu", seed: int = 0,
               out: Any = None, plots: bool = True, progress: bool = True,
               model_identity: str | None = None) -> dict:
    """Run (or resume) an attack run; returns its card (also ``out/attack.json``).

    ``loss='auto'``: each attacked model (the model, or each transfer surrogate) ascends its
    own training loss when its files record one
    (:func:`robustpose.benchmarking.attack_loss.model_loss`), else mse / coord_l2
    by output kind; the run's settings name the loss used and where it was read.
    ``uap_holdout_images`` / ``uap_patience`` / ``uap_min_delta``: the UAP's held-out curve
    and stopping rule (:mod:`robustpose.benchmarking.attack_uap`)."""
    from robustpose.benchmarking.api import _device_for, default_run_dir, weights_fingerprint
    from robustpose.benchmarking.loading import check_keypoint_count, resolve_adapter
    from robustpose.benchmarking.run_folder import RunFolder
    from robustpose.benchmarking.sources import resolve_source

    if attack not in ATTACK_KINDS:
        raise ValueError(f"unknown attack {attack!r}; choose from {', '.join(ATTACK_KINDS)}")
    if reference not in ("gt", "clean"):
        raise ValueError(f"--reference must be gt or clean, got {reference!r}")
    if attack == "uap" and targeted:
        raise ValueError("uap is untargeted (one perturbation for every crop)")
    if uap_patience < 0 or uap_holdout_images < 0 or (uap_patience and not uap_holdout_images):
        raise ValueError("--uap-patience needs --uap-holdout-images > 0 (the curve it reads); "
                         "both must be >= 0")
    check_counts(max_queries=max_queries, uap_fit_images=uap_fit_images,
                 spsa_samples=spsa_samples, batch_size=batch_size)
    check_alpha(alpha)
    if attack == "transfer" and not surrogates:
        raise ValueError("transfer needs --surrogate (a registry model name or 'bundled')")
    device = _device_for(device)
    num_joints = {"mpii": 16, "crowdpose": 14}.get(dataset, 17)
    adapter, model_info = resolve_adapter(model, checkpoint, config, onnx, onnx_spec,
                                          device=device, input_size=input_size,
                                          num_joints=num_joints, adapter_options={},
                                          model_identity=model_identity)
    infos = {None: model_info}
    eps_list = parse_numbers(eps, "--eps")
    steps_list = [1] if attack == "fgsm" else parse_numbers(steps, "--steps", integer=True)
    base = Path(out) if out is not None else Path("runs") / COMMAND
    source = resolve_source(dataset, data_root, annotations, None,
                            input_size=adapter.input_size, padding=adapter.padding,
                            max_images=max_images, subset_dir=base / "subsets", spec=spec)
    check_keypoint_count(model_info, source.spec)
    if out is None:
        base = Path("runs") / COMMAND / (f"{attack}-" + default_run_dir(
            adapter.name, source.name, weights_fingerprint(model_info)).name)
    # what each cell's attack is built on: the module to differentiate (white-box, transfer)
    # or the adapter itself (SPSA queries it)
    attacked = {None: adapter if attack == "spsa" else getattr(adapter, "model", None)}
    if attack == "transfer":
        attacked = {}
        for name in surrogates:
            arch, _, weights = name.partition("=")  # NAME or NAME=CHECKPOINT
            sur, infos[name] = resolve_adapter(None if arch == "bundled" else arch, weights or None,
                                     device=device, num_joints=num_joints,
                                     input_size=None if arch == "bundled" or weights
                                     else adapter.input_size)
            if not hasattr(sur, "model"):
                raise ValueError(f"surrogate {name}: a transfer surrogate needs torch weights")
            net = sur.model
            if tuple(sur.input_size) != tuple(adapter.input_size):
                from robustpose.attacks import ResizedInput

                # the victim's crop, resized for the surrogate (differentiably); the attack
                # differentiates the wrapper, so the surrogate's network sees its own size
                net = ResizedInput(net, sur.input_size)
            attacked[name] = net
    elif attack != "spsa" and not hasattr(adapter, "model"):
        raise ValueError(f"{attack} is white-box: it needs a torch model; attack "
                         f"{adapter.name} with spsa or transfer")
    from robustpose.benchmarking.attack_loss import model_loss

    losses = {s: model_loss(loss, attacked[s], infos[s], name=s or adapter.name) for s in attacked}
    options = {"loss": loss, "targeted": bool(targeted), "all_stacks": bool(all_stacks),
               "seed": int(seed), "alpha": alpha, "spsa_samples": int(spsa_samples),
               "max_queries": max_queries, "batch_size": int(batch_size),
               "uap_patience": int(uap_patience), "uap_min_delta": float(uap_min_delta),
               # GT targets live in the attacked model's output space: a black box (SPSA on
               # ONNX) or a surrogate of another kind is attacked against its own prediction
               "reference": "target" if targeted else (
                   reference if hasattr(adapter, "model") and attack != "transfer" else "clean")}
    conventions = {**adapter.inference.to_dict(), "command": COMMAND, "attack": attack,
                   "flip_test": False, "boxes": source.boxes, "pck_thr": PCK_THR,
                   "weights_sha256": weights_fingerprint(model_info),
                   **{k: v for k, v in options.items()
                      if k not in ("batch_size", "uap_patience", "uap_min_delta")},

                   "loss_used": {s or "model": used for s, (used, _) in losses.items()},
                   "loss_source": {s or "model": why for s, (_, why) in losses.items()},
                   "uap_fit_images": int(uap_fit_images) if attack == "uap" else None,
                   "uap_holdout_images": int(uap_holdout_images) if attack == "uap" else None,
                   "uap_stop": {"patience": int(uap_patience), "min_delta": float(uap_min_delta)}
                   if attack == "uap" and uap_patience else None,
                   "target_rule": "partner pose (seeded derangement), crop frame" if targeted else None}
    if attack in ("spsa", "uap"):  # their draws are per batch: the batch size changes cells
        conventions["batch_size"] = int(batch_size)
    if attack == "transfer":  # a surrogate's weights are named in the cell key, not hashed
        conventions["surrogate_identity"] = {s: infos[s].get("identity") for s in attacked}
    folder = RunFolder(base)
    folder.claim({"model": adapter.name, "dataset": source.name, "conventions": conventions,
                  "command": COMMAND, "attack": attack, "metric": source.metric_name,
                  "keypoint_names": list(source.spec.keypoint_names),
                  "model_info": model_info, "num_people": len(source.records),
                  "annotation_file": str(source.annotation_file),
                  "input_files": {"uap_fit_annotations": None if attack != "uap" or
                                  uap_fit_annotations is None else str(uap_fit_annotations)}})
    try:
        cells = [Cell("clean", 0)] + [
            Cell(cell_key(attack, e, targeted, all_stacks, s), n)
            for s in attacked for n in steps_list for e in eps_list]
        todo = folder.todo(cells)
        if progress:
            print(f"robustpose attack {attack}: {adapter.name} on {source.name} "
                  f"({len(source.records)} people): {len(todo)} cell(s) to run, "
                  f"{len(cells) - len(todo)} done already -> {folder.path}", file=sys.stderr)
        partner = None
        if targeted:
            from robustpose.attacks import derangement

            joints = crop_frame_joints(source.records, adapter.input_size)
            partner = joints[derangement(len(joints), int(seed))]
        fit = None
        if attack == "uap" and len(todo) > (Cell("clean", 0) in todo):
            from robustpose.benchmarking.attack_uap import uap_fit_records

            fit = uap_fit_records(dataset, data_root, annotations, uap_fit_annotations,
                                  source, adapter, uap_fit_images, spec, uap_holdout_images)
        for i, cell in enumerate(todo):
            record = _run_one(cell, cells, attack, attacked, adapter, source, options,
                              partner, fit, eps_list, steps_list, folder, losses)
            folder.append(record)
            if progress:
                print(f"[{i + 1:>3}/{len(todo)}] {cell_line(record, source.metric_name)}")
                sys.stdout.flush()
    finally:
        folder.close()
    from robustpose.benchmarking.attack_card import write_attack_reports

    card = write_attack_reports(folder, plots=plots)
    card["run_dir"] = str(folder.path)
    return card


def _run_one(cell: Cell, cells: list, attack: str, attacked: dict, adapter: Any, source: Any,
             options: dict, partner: Any, fit: Any, eps_list: list, steps_list: list,
             folder: Any, losses: dict) -> dict:
    index = cells.index(cell) - 1
    record = {"model": adapter.name, "dataset": source.name, "corruption": cell.corruption,
              "severity": int(cell.severity), "metric": source.metric_name,
              "num_people": len(source.records)}
    if cell.is_clean:
        record.update(attack="clean", eps=0.0, steps=0, targeted=False, all_stacks=False)
        record.update(evaluate_cell(adapter, source, None, {**options, "targeted": False},
                                    None))
        return record
    per_surrogate = len(steps_list) * len(eps_list)
    surrogate = list(attacked)[index // per_surrogate]
    eps = eps_list[index % len(eps_list)]
    loss = losses[surrogate][0]
    atk = build_attack(attack, attacked[surrogate], eps, int(cell.severity),
                       {**options, "loss": loss})
    if attack == "uap":
        from robustpose.benchmarking.attack_uap import fit_uap

        record.update(fit_uap(atk, fit, adapter, source.spec, options,
                              folder.path / "uap" / f"uap-eps{eps:g}-epochs{cell.severity}"))
    record.update(attack=attack, surrogate=surrogate, eps=float(eps), steps=int(cell.severity),
                  targeted=options["targeted"], all_stacks=options["all_stacks"],
                  alpha=float(atk.alpha), loss=loss)
    record.update(evaluate_cell(adapter, source, atk, options, partner))
    return record
