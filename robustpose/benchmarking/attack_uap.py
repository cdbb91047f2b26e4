"""The UAP cells of ``robustpose attack uap``: fitting people, a held-out curve, a stopping rule.

The fitting images are the first ``uap_fit_images`` images of the annotation file outside
the evaluation set (or of ``--uap-fit-annotations``); the next ``uap_holdout_images``
images (also outside the evaluation set, never fitted on) are the *held-out* people whose
relative PCK@0.1 (PCK with the perturbation / clean PCK) is measured after every epoch.
That curve is stored in the cell's record (``uap_curve``: ``[epochs done, relative PCK]``)
and plotted (``attack_uap_curve.png``); with ``uap_patience`` the fit stops by
:class:`~robustpose.attacks.PlateauStop` (no improvement of the held-out curve by more
than ``uap_min_delta`` over ``uap_patience`` epochs), else after ``--steps`` epochs. The
fitting crops are held in memory (one crop pass), shuffled per epoch by the attack's
seeded generator.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robustpose.benchmarking.attack_eval import box_pck, crop_batches


def uap_fit_records(dataset: str, data_root: Any, annotations: Any, fit_annotations: Any,
                    source: Any, adapter: Any, fit_images: int, spec: Any,
                    holdout_images: int = 0) -> tuple[list, list]:
    """(fitting records, held-out records): the first ``fit_images`` images outside the
    evaluation set, then the next ``holdout_images`` (one-line error when the set has too
    few images left)."""
    from robustpose.benchmarking.sources import resolve_source

    full = resolve_source(dataset, data_root, fit_annotations or annotations, None,
                          input_size=adapter.input_size, padding=adapter.padding, spec=spec)
    held = {str(r.image_id) for r in source.records} if fit_annotations is None else set()
    # image-id order (numeric ids as numbers): the first images of a set, as documented
    ids = sorted({str(r.image_id) for r in full.records} - held,
                 key=lambda i: (0, int(i), i) if i.isdigit() else (1, 0, i))
    fit_ids, holdout_ids = ids[:int(fit_images)], ids[int(fit_images):int(fit_images) + int(holdout_images)]
    if not fit_ids:
        raise ValueError(f"{full.annotation_file}: no image outside the evaluation set to fit "
                         "the UAP on; use --max-images below the set's size or --uap-fit-annotations")
    if len(holdout_ids) < int(holdout_images):
        raise ValueError(f"{full.annotation_file}: {len(ids)} images outside the evaluation set, "
                         f"fewer than {fit_images} to fit the UAP on + {holdout_images} held out")
    fit_keep, holdout_keep = set(fit_ids), set(holdout_ids)
    return ([r for r in full.records if str(r.image_id) in fit_keep],
            [r for r in full.records if str(r.image_id) in holdout_keep])


def _fit_tensors(records: list, spec: Any, adapter: Any, options: dict) -> dict:
    """All fitting crops (M, 3, H, W) in memory, with the GT targets of the model's codec
    when the run ascends the loss to them (``--reference gt``)."""
    skipped: list = []
    parts = list(crop_batches(records, spec, adapter, options["batch_size"], skipped))
    if not parts:  # unreadable fitting images are skipped, as evaluation ones are
        raise ValueError(f"uap: every fitting image was skipped (unreadable), e.g. "
                         f"{skipped[0][0]}: {skipped[0][1]}")
    data = {"image": torch.cat([b["image"] for b in parts])}
    if options["reference"] == "gt" and parts[0]["target"].dim() > 2:
        data["target"] = torch.cat([b["target"] for b in parts])
        data["target_weight"] = torch.cat([b["target_weight"] for b in parts])
    return data


class HeldOutCurve:
    """Relative PCK@0.1 of held-out people with a perturbation: ``curve(delta) -> float``."""

    def __init__(self, records: list, spec: Any, adapter: Any, batch_size: int) -> None:
        self.batches = [(b["image"], b["meta"]) for b in crop_batches(records, spec, adapter, batch_size)]
        self.adapter, self.spec, self.k = adapter, spec, len(spec.keypoint_names)
        self.people = sum(len(c) for c, _ in self.batches)
        self.clean = self.pck(None)

    def pck(self, delta: torch.Tensor | None) -> float:
        """Mean PCK@0.1 (over joints) of the held-out people, crops + ``delta`` clipped."""
        acc = box_pck(self.k)
        with torch.no_grad():
            for crops, meta in self.batches:
                if delta is not None:
                    crops = (crops + delta.to(crops.device)).clamp(0.0, 1.0)
                keypoints = self.adapter.predict(crops, meta, self.spec, False)
                acc.accumulate(keypoints, np.asarray(meta["keypoints"], np.float64),
                               np.asarray(meta["bbox"], np.float64))
        return float(acc.stats()["PCK"] or 0.0)

    def __call__(self, delta: torch.Tensor) -> float:
        return self.pck(delta) / self.clean if self.clean else float("nan")


def fit_uap(atk: Any, fit: tuple[list, list], adapter: Any, spec: Any, options: dict,
            stem: Any) -> dict:
    """Fit ``atk`` (a :class:`~robustpose.attacks.UAP`) on the fitting records, following
    the held-out curve; save it to ``stem``; -> the record's UAP fields."""
    from robustpose.attacks import PlateauStop

    fit_records, holdout_records = fit
    data = _fit_tensors(fit_records, spec, adapter, options)
    out: dict[str, Any] = {"fit_people": int(data["image"].shape[0])}
    monitor = None
    if holdout_records:
        held = HeldOutCurve(holdout_records, spec, adapter, options["batch_size"])
        stop = PlateauStop(options["uap_patience"], options["uap_min_delta"]) \
            if options.get("uap_patience") else None
        curve: list[list[float]] = []
        out.update(holdout_people=held.people, holdout_clean_pck=held.clean, uap_curve=curve)

        def monitor(epochs_done: int, delta: torch.Tensor) -> bool:
            value = held(delta)
            curve.append([epochs_done, round(value, 6)])
            return stop is not None and stop.update(value)

    atk.fit(data, monitor)
    atk.save(stem)
    out["epochs_run"] = int(atk.epochs_run)
    out["stopped_early"] = atk.epochs_run < atk.epochs
    return out
