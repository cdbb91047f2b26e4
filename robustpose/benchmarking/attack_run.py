"""``robustpose attack``: one record per (attack, eps, steps) cell in a run folder.

The attack run kind (:class:`AttackKind`) on the run layer
(:func:`~robustpose.benchmarking.run_layer.execute`: adapter, data source with
ground-truth boxes, run folder, resume per cell). Cells are typed
(:class:`~robustpose.benchmarking.attack_cells.AttackCell`); the clean cell ('clean', 0)
is the reference of every relative number. Crops are the top-down
path's [0, 1] crops (no flip test: an attack perturbs the crop the model sees); the
adversarial crop never leaves that space. Per cell: the data set's own metric (OKS AP /
PCKh), PCK@0.1 of the box size (max of box w, h), per-joint PCK, and for targeted
attacks the target success PCK@0.1 against the partner pose. The card
(``attack.json``, ``attack.md``, plots) holds relative = attacked / clean.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from robustpose.benchmarking import attack_card, whole_image_attack
from robustpose.benchmarking.attack_args import (SPSA_SAMPLES, check_alpha, check_counts,
                                                 default_steps, parse_numbers)
from robustpose.benchmarking.attack_cells import AttackCell, key_from_json, key_to_json
# the cell evaluation, importable from here as before the split
from robustpose.benchmarking.attack_eval import (PCK_THR, box_pck, crop_batches,  # noqa: F401
                                                 crop_frame_joints, crop_to_image,
                                                 evaluate_cell, target_encoder)
from robustpose.benchmarking.cells import Cell
from robustpose.benchmarking.run_layer import DataChoice, ModelChoice, execute, register_kind
from robustpose.models.whole_image import is_whole_image

COMMAND = "attack"
ATTACK_KINDS = ("fgsm", "igsm", "uap", "transfer", "spsa")


def cell_key(attack: str, eps: float, targeted: bool, all_stacks: bool,
             surrogate: str | None = None) -> str:
    """The store's ``corruption`` string of an attack cell (:attr:`AttackCell.corruption`)."""
    return AttackCell(attack, eps, 1, targeted, all_stacks, surrogate).corruption


def _recorded_convention(folder: Path, key: str) -> Any:
    """``conventions[key]`` of the folder's run.json, or None (no folder, unreadable)."""
    import json

    try:
        settings = json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return (settings.get("conventions") or {}).get(key)


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


def run_attack(attack: str, model: Any = None, *, checkpoint: Any = None, config: Any = None,
               onnx: Any = None, onnx_spec: Any = None, dataset: str = "synth",
               data_root: Any = None, annotations: Any = None, max_images: int | None = None,
               spec: str | None = None, input_size: Any = None,
               eps: str | Sequence[float] = "0.25,0.5,1,2,4,8,16,32",
               steps: str | Sequence[int] | None = None, targeted: bool = False,
               all_stacks: bool = False, loss: str = "auto", reference: str = "gt",
               alpha: float | None = None, surrogates: Sequence[str] = (),
               spsa_samples: int = SPSA_SAMPLES, max_queries: int | None = None,
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
    and stopping rule (:mod:`robustpose.benchmarking.attack_uap`). ``steps`` None: 10,100
    (spsa: 10, :func:`~robustpose.benchmarking.attack_args.default_steps`)."""
    steps = default_steps(attack) if steps is None else steps
    options = {"attack": attack, "eps": eps, "steps": steps, "targeted": bool(targeted),
               "all_stacks": bool(all_stacks), "loss": loss, "reference": reference,
               "alpha": alpha, "surrogates": list(surrogates), "spsa_samples": spsa_samples,
               "max_queries": max_queries, "uap_fit_images": uap_fit_images,
               "uap_fit_annotations": uap_fit_annotations,
               "uap_holdout_images": uap_holdout_images, "uap_patience": uap_patience,
               "uap_min_delta": uap_min_delta, "batch_size": batch_size}
    return execute(ATTACK, ModelChoice(model, checkpoint, config, onnx, onnx_spec, input_size,
                                       model_identity=model_identity),
                   DataChoice(dataset, data_root, annotations, None, max_images, spec,
                              seed=seed),
                   out, None, options=options, device=device, progress=progress, plots=plots)


class AttackKind:
    """Attacks as a run kind: typed cells (:class:`AttackCell`), per cell the data set's
    metric, PCK@0.1 (per joint) and target PCK; the card holds attacked / clean."""

    name = COMMAND
    checks_keypoints = True

    def check(self, o: dict) -> None:
        attack = o["attack"]
        if attack not in ATTACK_KINDS:
            raise ValueError(f"unknown attack {attack!r}; choose from {', '.join(ATTACK_KINDS)}")
        if o["reference"] not in ("gt", "clean"):
            raise ValueError(f"--reference must be gt or clean, got {o['reference']!r}")
        if attack == "uap" and o["targeted"]:
            raise ValueError("uap is untargeted (one perturbation for every crop)")
        if o["uap_patience"] < 0 or o["uap_holdout_images"] < 0 or (
                o["uap_patience"] and not o["uap_holdout_images"]):
            raise ValueError("--uap-patience needs --uap-holdout-images > 0 (the curve it "
                             "reads); both must be >= 0")
        check_counts(max_queries=o["max_queries"], uap_fit_images=o["uap_fit_images"],
                     spsa_samples=o["spsa_samples"], batch_size=o["batch_size"])
        check_alpha(o["alpha"])
        if attack == "transfer" and not o["surrogates"]:
            raise ValueError("transfer needs --surrogate (a registry model name or 'bundled')")
        o["eps_list"] = parse_numbers(o["eps"], "--eps")
        o["steps_list"] = [1] if attack == "fgsm" else parse_numbers(o["steps"], "--steps",
                                                                     integer=True)

    def title(self, run: Any) -> str:
        return f"{COMMAND} {run.options['attack']}"

    def default_dir(self, run: Any, slug: str) -> Path:
        return Path("runs") / COMMAND / f"{run.options['attack']}-{slug}"

    def prepare(self, run: Any) -> None:
        """The attacked modules (the model's, each transfer surrogate's, or the adapter
        itself for SPSA's queries), their losses, and the conventions run.json records."""
        from robustpose.benchmarking.attack_loss import model_loss
        from robustpose.benchmarking.run_layer import load_adapter

        o, adapter, attack = run.options, run.adapter, run.options["attack"]
        if is_whole_image(adapter):  # image in, people out: benchmarking/whole_image_attack.py
            return whole_image_attack.prepare(run)
        infos = {None: run.model_info}
        attacked = {None: adapter if attack == "spsa" else getattr(adapter, "model", None)}
        if attack == "transfer":
            attacked = {}
            for name in o["surrogates"]:
                arch, _, weights = name.partition("=")  # NAME or NAME=CHECKPOINT
                size = None if arch == "bundled" or weights else adapter.input_size
                sur, infos[name] = load_adapter(
                    ModelChoice(None if arch == "bundled" else arch, weights or None,
                                input_size=size), run.device, run.num_joints)
                if not hasattr(sur, "model"):
                    raise ValueError(f"surrogate {name}: a transfer surrogate needs torch weights")
                net = sur.model
                if tuple(sur.input_size) != tuple(adapter.input_size):
                    from robustpose.attacks import ResizedInput

                    # the victim's crop, resized for the surrogate (differentiably); the
                    # attack differentiates the wrapper: the surrogate sees its own size
                    net = ResizedInput(net, sur.input_size)
                attacked[name] = net
        elif attack != "spsa" and not hasattr(adapter, "model"):
            raise ValueError(f"{attack} is white-box: it needs a torch model; attack "
                             f"{adapter.name} with spsa or transfer")
        losses = {s: model_loss(o["loss"], attacked[s], infos[s], name=s or adapter.name)
                  for s in attacked}
        cell_options = {
            "loss": o["loss"], "targeted": o["targeted"], "all_stacks": o["all_stacks"],
            "seed": int(run.data.seed), "alpha": o["alpha"],
            "spsa_samples": int(o["spsa_samples"]), "max_queries": o["max_queries"],
            "batch_size": int(o["batch_size"]), "uap_patience": int(o["uap_patience"]),
            "uap_min_delta": float(o["uap_min_delta"]),
            # GT targets live in the attacked model's output space: a black box (SPSA on
            # ONNX) or a surrogate of another kind is attacked against its own prediction
            "reference": "target" if o["targeted"] else (
                o["reference"] if hasattr(adapter, "model") and attack != "transfer"
                else "clean")}
        uap = attack == "uap"
        conventions = {
            **adapter.inference.to_dict(), "command": COMMAND, "attack": attack,
            "flip_test": False, "boxes": run.source.boxes, "pck_thr": PCK_THR,
            "weights_sha256": run.fingerprint,
            **{k: v for k, v in cell_options.items()
               if k not in ("batch_size", "uap_patience", "uap_min_delta")},
            "loss_used": {s or "model": used for s, (used, _) in losses.items()},
            "loss_source": {s or "model": why for s, (_, why) in losses.items()},
            "uap_fit_images": int(o["uap_fit_images"]) if uap else None,
            "uap_holdout_images": int(o["uap_holdout_images"]) if uap else None,
            "uap_stop": {"patience": int(o["uap_patience"]),
                         "min_delta": float(o["uap_min_delta"])}
            if uap and o["uap_patience"] else None,
            "target_rule": "partner pose (seeded derangement), crop frame"
            if o["targeted"] else None}
        if attack in ("spsa", "uap"):  # their draws are per batch: the batch size changes cells
            conventions["batch_size"] = int(o["batch_size"])
        if attack != "spsa":
            # a gradient attack draws no query directions: the SPSA sample count is none
            # of its conventions. Folders written before this rule recorded the default
            # of the day (16, now 8); adopting theirs keeps them resuming.
            conventions["spsa_samples"] = _recorded_convention(run.folder.path, "spsa_samples")
        if attack == "transfer":  # a surrogate's weights are named in the cell key, not hashed
            conventions["surrogate_identity"] = {s: infos[s].get("identity") for s in attacked}
        run.state.update(attacked=attacked, losses=losses, cell_options=cell_options,
                         conventions=conventions)

    def cells(self, run: Any) -> list:
        o, losses = run.options, run.state["losses"]
        return [Cell("clean", 0)] + [
            AttackCell(o["attack"], e, n, o["targeted"], o["all_stacks"], s, losses[s][0])
            for s in run.state["attacked"] for n in o["steps_list"] for e in o["eps_list"]]

    def settings(self, run: Any) -> dict:
        o, source = run.options, run.source
        fit = o["uap_fit_annotations"]
        return {"model": run.adapter.name, "dataset": source.name,
                "conventions": run.state["conventions"], "command": COMMAND,
                "attack": o["attack"], "metric": source.metric_name,
                "keypoint_names": list(source.spec.keypoint_names),
                "model_info": run.model_info, "num_people": len(source.records),
                "annotation_file": str(source.annotation_file),
                "input_files": {"uap_fit_annotations": None if o["attack"] != "uap" or
                                fit is None else str(fit)}}

    def requested(self, run: Any) -> dict:
        return {}  # the card lists the cells stored, not a requested grid

    def evaluate(self, run: Any, cells: Sequence) -> list[dict]:
        if is_whole_image(run.adapter):
            return whole_image_attack.evaluate(run, cells)
        o, adapter, source = run.options, run.adapter, run.source
        partner = fit = None
        if o["targeted"]:
            from robustpose.attacks import derangement

            joints = crop_frame_joints(source.records, adapter.input_size)
            partner = joints[derangement(len(joints), int(run.data.seed))]
        if o["attack"] == "uap" and any(not c.is_clean for c in cells):
            from robustpose.benchmarking.attack_uap import uap_fit_records

            d = run.data
            fit = uap_fit_records(d.dataset, d.data_root, d.annotations,
                                  o["uap_fit_annotations"], source, adapter,
                                  o["uap_fit_images"], d.spec, o["uap_holdout_images"])
        run.state["metric"] = source.make_metric()  # the ground truth read once; reset per cell
        return attack_card.store_cells(run, cells, lambda cell: run_cell(cell, run, partner, fit))

    def finish(self, run: Any, cells: Sequence) -> dict:
        return self.write_reports(run.folder, plots=run.plots)

    def write_reports(self, folder: Any, plots: bool = True) -> dict:
        return attack_card.write_attack_reports(folder, plots=plots)

    def report(self, run_dir: Any, plots: bool = True) -> int:
        from robustpose.benchmarking.run_folder import RunFolder

        self.write_reports(RunFolder(run_dir), plots=plots)
        print(f"rebuilt: {run_dir}/attack.json, attack.md"
              + ("" if not plots else " and the attack plots"))
        return 0

    key_to_json = staticmethod(key_to_json)
    key_from_json = staticmethod(key_from_json)


ATTACK = register_kind(AttackKind())


def run_cell(cell: Any, run: Any, partner: Any, fit: Any) -> dict:
    """One cell's record: the clean reference, or the cell's attack built from its key."""
    adapter, source, options = run.adapter, run.source, run.state["cell_options"]
    record = {"model": adapter.name, "dataset": source.name, "corruption": cell.corruption,
              "severity": int(cell.severity), "metric": source.metric_name,
              "num_people": len(source.records), "cell": key_to_json(cell)}
    if cell.is_clean:
        record.update(attack="clean", eps=0.0, steps=0, targeted=False, all_stacks=False)
        record.update(evaluate_cell(adapter, source, None, {**options, "targeted": False},
                                    None, run.state.get("metric")))
        return record
    atk = build_attack(cell.attack, run.state["attacked"][cell.surrogate], cell.eps,
                       cell.steps, {**options, "loss": cell.loss})
    if cell.attack == "uap":
        from robustpose.benchmarking.attack_uap import fit_uap

        record.update(fit_uap(atk, fit, adapter, source.spec, options, run.folder.path / "uap"
                              / f"uap-eps{cell.eps:g}-epochs{cell.steps}"))
    # the key's fields at the top level too, as schema-1 records have them
    record.update(attack=cell.attack, surrogate=cell.surrogate, eps=float(cell.eps),
                  steps=int(cell.steps), targeted=cell.targeted, all_stacks=cell.all_stacks,
                  alpha=float(atk.alpha), loss=cell.loss)
    record.update(evaluate_cell(adapter, source, atk, options, partner, run.state.get("metric")))
    return record
