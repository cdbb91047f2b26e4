"""The query (SPSA) attack on a whole-image model (image in, people out; issue 26 s2).

``robustpose attack spsa --onnx movenet_multipose_lightning.onnx --onnx-spec
movenet-multipose ...``: :class:`~robustpose.benchmarking.attack_run.AttackKind` hands its
``prepare`` and ``evaluate`` here when the adapter is whole-image, so the cells
(:class:`~robustpose.benchmarking.attack_cells.AttackCell`), run folder, resume and card
(relative = attacked / clean) are the crop attack's.

What is perturbed: the image *as the model is fed it* (the adapter's letterboxed input,
:meth:`~robustpose.models.whole_image.WholeImageAdapter.query_view`), the image's pixels
only (the padding is the adapter's), within ``eps`` on the 0..255 scale, as the crop
attacks perturb the crop the model sees. Every query is quantised to the model's input
dtype (MultiPose: int32, rounded) by the runner that feeds :meth:`predict_image`.

The objective (bounded in [0, 1], ascended): ``1 - sum_j c_j max_i s_i OKS(i, j) /
sum_j c_j`` over the reference people j and the predicted people i with person score
s_i (clipped to [0, 1]). Scoring the match *and* the person score follows what COCO AP
reads: a person found at the right place but ranked low costs AP as a person lost does.
The reference (``--reference``): ``gt`` (default, as the crop attack's) the image's
ground-truth people (c_j = 1, keypoints with v > 0, the annotation's area), so the
attack ascends the quantity the metric scores; ``clean`` (label-free) the model's own
clean people (c_j and keypoint weights: the model's scores, area: the box's w x h; one
query more, and the start is a seeded draw in the ball as for the crop attacks, since the
clean input is the objective's minimum in the keypoints). An image with no reference
person is scored unattacked (0 queries): the objective has nothing to move there.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch

from robustpose.attacks.spsa import SPSA
from robustpose.benchmarking import whole_image
from robustpose.benchmarking.attack_cells import key_to_json
from robustpose.benchmarking.cells import Cell
from robustpose.models.whole_image import People, QueryView
from robustpose.utils.seeding import derive_seed

__all__ = ["OBJECTIVE", "Reference", "gt_references", "clean_reference", "oks_matrix",
           "match_loss", "WholeImageSPSA", "prepare", "evaluate"]

#: the objective's name in the cells and run.json (``loss_used``)
OBJECTIVE = "oks_match"


class Reference:
    """The people an image's objective compares with: ``keypoints`` (R, K, 3) x, y in
    image px and a weight per keypoint (GT: v > 0; clean: the keypoint score), ``areas``
    (R,) px^2 (OKS's scale), ``weights`` (R,) per person."""

    def __init__(self, keypoints: Any, areas: Any, weights: Any) -> None:
        self.keypoints = np.asarray(keypoints, np.float64)
        if self.keypoints.ndim != 3:  # nobody: (0, 0, 3)
            self.keypoints = self.keypoints.reshape(0, 0, 3)
        self.areas = np.asarray(areas, np.float64).reshape(-1)
        self.weights = np.asarray(weights, np.float64).reshape(-1)

    def __len__(self) -> int:
        return int((self.weights > 0).sum()) if len(self.weights) else 0


def gt_references(records: Sequence[Any]) -> dict:
    """image_id -> :class:`Reference` of its ground-truth people with a labelled keypoint."""
    grouped: dict = {}
    for r in records:
        if r.keypoints is None or not (np.asarray(r.keypoints)[:, 2] > 0).any():
            continue
        kps = np.asarray(r.keypoints, np.float64).copy()
        kps[:, 2] = (kps[:, 2] > 0).astype(np.float64)
        grouped.setdefault(r.image_id, []).append((kps, float(r.area)))
    return {i: Reference(np.stack([k for k, _ in v]), [a for _, a in v], np.ones(len(v)))
            for i, v in grouped.items()}


def clean_reference(people: People) -> Reference:
    """The model's clean people as the reference (label-free): keypoint and person
    weights are the model's scores, the area the box's w x h (or the keypoints' extent)."""
    if not len(people):
        return Reference(np.zeros((0, 0, 3)), [], [])
    if people.boxes is not None:
        size = people.boxes[:, 2:] - people.boxes[:, :2]
    else:
        size = people.keypoints[..., :2].max(1) - people.keypoints[..., :2].min(1)
    kps = people.keypoints.copy()
    kps[..., 2] = np.clip(kps[..., 2], 0.0, 1.0)
    return Reference(kps, np.clip(size, 0, None).prod(axis=1), np.clip(people.scores, 0, 1))


def oks_matrix(keypoints: np.ndarray, ref: Reference, sigmas: np.ndarray) -> np.ndarray:
    """COCO's OKS (P, R) of predicted keypoints (P, K, >=2) image px against the reference:
    ``sum_k w_k exp(-d_k^2 / (2 area (2 sigma_k)^2)) / sum_k w_k`` (COCOeval's formula with
    the reference's keypoint weights; a person with no weight scores 0)."""
    pred = np.asarray(keypoints, np.float64)[..., :2]
    var = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    d2 = ((pred[:, None] - ref.keypoints[None, :, :, :2]) ** 2).sum(-1)       # P, R, K
    e = d2 / var / (ref.areas[None, :, None] + np.spacing(1)) / 2.0
    w = ref.keypoints[..., 2][None]                                           # 1, R, K
    total = w.sum(-1)
    return np.divide((np.exp(-e) * w).sum(-1), total, out=np.zeros(d2.shape[:2]),
                     where=total > 0)


def match_loss(people: People, ref: Reference, sigmas: np.ndarray) -> float:
    """The bounded objective in [0, 1]: ``1 - sum_j c_j max_i s_i OKS(i, j) / sum_j c_j``
    (0: every reference person found at its place with score 1; 1: none found)."""
    if ref.weights.sum() <= 0:
        return 0.0
    if not len(people):
        return 1.0
    score = np.clip(people.scores, 0.0, 1.0)[:, None]
    best = (score * oks_matrix(people.keypoints, ref, sigmas)).max(axis=0)  # R
    return float(1.0 - (ref.weights * best).sum() / ref.weights.sum())


class WholeImageSPSA(SPSA):
    """SPSA (:class:`~robustpose.attacks.SPSA`: same estimator, signed step, projection
    and query count) on one image's :class:`QueryView`, ascending :func:`match_loss`
    against ``reference`` (None: the clean prediction, one query). Call it on
    ``view.input[None]`` (1, 3, h, w) [0, 1]; the padding (``view.mask`` 0) never moves."""

    def __init__(self, view: QueryView, reference: Reference | None, sigmas: Any,
                 eps: float, steps: int, samples: int, **kwargs: Any) -> None:
        super().__init__(view, eps, steps=steps, samples=samples, **kwargs)
        self.view, self.ref = view, reference
        self.sigmas = np.asarray(sigmas, np.float64)
        self.mask = view.mask

    def reference(self, crops: torch.Tensor, targets: Any):
        self.queries_used = 0
        if self.ref is None:  # label-free: the model's clean people
            self.ref = clean_reference(self.view.people(crops)[0])
            self.queries_used = 1
        n = crops.shape[0]
        return torch.zeros(n, 1), torch.ones(n, 1)  # the reference lives in self.ref

    def values(self, probes: torch.Tensor, target: torch.Tensor,
               weight: torch.Tensor) -> torch.Tensor:
        return torch.tensor([match_loss(p, self.ref, self.sigmas)
                             for p in self.view.people(probes)], dtype=torch.float32)

    def project(self, adv: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
        adv = super().project(adv, crops)
        return adv if self.mask is None else crops + (adv - crops) * self.mask


def prepare(run: Any) -> None:
    """``AttackKind.prepare`` for a whole-image adapter: one-line refusals of what only
    crops or gradients allow, the whole-image benchmark's images, metric and conventions,
    plus the attack's."""
    o, name = run.options, run.adapter.name
    if o["attack"] != "spsa":
        raise ValueError(f"{name}: a whole-image model is attacked with queries only "
                         f"(attack spsa), not {o['attack']}")
    if o["targeted"] or o["all_stacks"]:
        raise ValueError(f"{name}: the whole-image attack is untargeted on the final output "
                         "(no --targeted, no --all-stacks)")
    if o["loss"] not in ("auto", OBJECTIVE):
        raise ValueError(f"{name}: the whole-image attack ascends {OBJECTIVE} (1 - "
                         f"score-weighted OKS match), not --loss {o['loss']}")
    whole_image.prepare(run)  # images, the metric without GT boxes, its conventions
    cell_options = {"reference": o["reference"], "seed": int(run.data.seed),
                    "alpha": o["alpha"], "spsa_samples": int(o["spsa_samples"]),
                    "max_queries": o["max_queries"], "delta": 1.0}
    run.state["conventions"].update(
        command="attack", attack="spsa", objective=f"{OBJECTIVE}: 1 - sum_j c_j max_i "
        "s_i OKS(i, j) / sum_j c_j", perturbed="the letterboxed model input, image pixels "
        "only (padding untouched); each query quantised to the model's input dtype",
        draws="torch.Generator per image: derive_seed(seed, 'whole-image-spsa', image_id)",
        loss_used={"model": OBJECTIVE},
        loss_source={"model": "whole-image objective (1 - score-weighted OKS match)"},
        **cell_options)
    run.state.update(attacked={None: run.adapter},
                     losses={None: (OBJECTIVE, "whole-image objective")},
                     cell_options=cell_options,
                     references=gt_references(run.source.records)
                     if o["reference"] == "gt" else None)


def evaluate(run: Any, cells: Sequence) -> list[dict]:
    """``AttackKind.evaluate`` for a whole-image adapter: one record per cell, in order."""
    from robustpose.benchmarking.attack_card import store_cells

    return store_cells(run, cells, lambda cell: run_cell(cell, run))


def run_cell(cell: Any, run: Any) -> dict:
    """One cell over every image of the annotation file: the clean image through
    ``predict_image``, or the attacked input's people; the dataset's AP of them."""
    adapter, source, o = run.adapter, run.source, run.state["cell_options"]
    images, metric = run.state["images"], run.state["metric"]
    sigmas = np.asarray(metric.gt.sigmas, np.float64)  # the ones AP is scored with
    refs = run.state["references"]
    stream = whole_image.WholeImageStream([Cell("clean", 0)], images, source.spec, run.images,
                                          source.image_root)
    metric.reset()
    started, attack_s, queries, attacked, skipped = time.perf_counter(), 0.0, [], 0, []
    for index, record in enumerate(images):
        item = stream[(0, index)]
        if "skipped" in item:
            skipped.append((item["skipped"], item["problem"]))
            continue
        ref = None if refs is None else refs.get(record.image_id)
        if cell.is_clean or (refs is not None and ref is None):
            people = adapter.predict_image(item["image"])
        else:
            t0 = time.perf_counter()
            view = adapter.query_view(item["image"])
            atk = WholeImageSPSA(view, ref, sigmas, cell.eps, cell.steps, o["spsa_samples"],
                                 alpha=o["alpha"], max_queries=o["max_queries"],
                                 delta=o["delta"],
                                 seed=derive_seed(o["seed"], "whole-image-spsa", record.image_id))
            # a GT reference: the clean input is no extremum, so the start is the image
            adv = atk(view.input[None], None if ref is None else {"reference": "gt"})
            people = view.people(adv)[0]
            attack_s += time.perf_counter() - t0
            queries.append(atk.queries_used)
            attacked += 1
        if len(people):
            metric.accumulate(people.keypoints, whole_image.people_meta(people, record.image_id))
    if len(skipped) == len(images):
        raise ValueError(f"{source.name}: every image was skipped (unreadable), e.g. "
                         f"{skipped[0][0]}: {skipped[0][1]}")
    stats = metric.stats()
    out = {"model": adapter.name, "dataset": source.name, "corruption": cell.corruption,
           "severity": int(cell.severity), "metric": source.metric_name,
           "num_people": len(source.records), "num_images": len(images),
           "cell": key_to_json(cell), "metrics": {k: v for k, v in stats.items()
                                                  if isinstance(v, (int, float))},
           "metric_value": stats.get(source.metric_name), "pck": None, "pck_per_joint": [],
           "elapsed_s": round(time.perf_counter() - started, 3),
           "attack_s": round(attack_s, 3),
           "skipped_images": [{"path": p, "problem": q} for p, q in sorted(set(skipped))]}
    if cell.is_clean:
        out.update(attack="clean", eps=0.0, steps=0, targeted=False, all_stacks=False)
    else:
        out.update(attack=cell.attack, surrogate=None, eps=float(cell.eps),
                   steps=int(cell.steps), targeted=False, all_stacks=False,
                   alpha=float(2.5 * cell.eps / cell.steps if o["alpha"] is None
                               else o["alpha"]),
                   loss=cell.loss, attacked_images=attacked,
                   # the card's column; here per image (one image = one attacked input)
                   queries_per_crop=int(max(queries)) if queries else 0)
    return out
