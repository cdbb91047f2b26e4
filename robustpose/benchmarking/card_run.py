"""``robustpose card``: one model's robustness card from one run (issue 25, section 2).

The card is a *composite* run kind (:class:`CardKind`, registered as ``card``): it loads
the model once (:func:`~robustpose.benchmarking.run_layer.load_adapter`), then runs its
three faces through :func:`~robustpose.benchmarking.run_layer.execute` with that adapter
(``options['loaded']``), each face in its own run folder under the card's folder::

    OUT/run.json        kind 'card', the budget and what it asks of each face
    OUT/benchmark/      a `robustpose benchmark` run folder (corruption and box faces:
                        the pixel corruptions and the box perturbations, one grid)
    OUT/attack/         a `robustpose attack` run folder (IGSM-10, or SPSA for ONNX-only)
    OUT/stability/      a `robustpose stability` run folder (heldout5)
    OUT/card.json, card.md, card.png   (robustpose.reports.card, docs/card.md)

Every face resumes per cell as its command does: a rerun of the same card computes no
cell. The face folders are the commands' own folders (same run.json, same records), so
``robustpose report OUT/attack`` reads one, and ``robustpose report OUT`` rebuilds the card.

Budgets (:data:`BUDGETS`): ``paper`` is the issue's card (15 corruptions x 5 severities,
IGSM-10 at eps 2 and 8, heldout5 x 5 severities, every image); ``quick`` a documented
subset that finishes in a few CPU minutes on the bundled model; the card lists what the
budget skipped (``budget.skipped``). The box face (the ``box`` family: the person box a
top-down crop follows moves, the pixels stay) rides in the benchmark face's grid at the
corruption severities: ``summary.py`` keeps box cells out of mPC / rPC / mRR, so the
corruption face's figures are those of the 15 alone.
"""
from __future__ import annotations

import json
import re
import sys
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from robustpose.benchmarking.run_layer import (SCHEMA_VERSION, DataChoice, ModelChoice,
                                               device_for, execute, load_adapter,
                                               register_kind)
from robustpose.utils.io import atomic_write_text

COMMAND = "card"
FACE_DIRS = {"benchmark": "benchmark", "attack": "attack", "stability": "stability"}
#: what a whole-image model's card leaves out, and why (``budget.skipped``)
WHOLE_IMAGE_SKIPS = [
    "stability face: a whole-image model has no per-person crop heatmaps to compare with the "
    "clean crop's",
    "box face: a whole-image model finds its own people; the box perturbations move the "
    "person boxes a top-down crop follows and change no pixel"]
#: the card's attack for a whole-image model: queries on the whole image (issue 26), the
#: only attack such a model takes (benchmarking/whole_image_attack.py)
WHOLE_IMAGE_ATTACK = "spsa"
#: attacks the card runs: gradient (torch models) or queries (a model without torch weights)
CARD_ATTACKS = ("auto", "igsm", "spsa")


@dataclass(frozen=True)
class CardBudget:
    """What one card measures. eps on the 0..255 scale; ``max_images`` None: every image.
    ``spsa_steps`` x ``spsa_samples`` x 2 + 1 queries per crop for a query attack.
    ``box``: the box perturbations (the grammar's words; '' for none) the benchmark face
    runs beside ``corruptions``, at ``severities``."""

    name: str
    corruptions: str
    severities: str
    eps: str
    steps: int
    spsa_steps: int
    spsa_samples: int
    perturbations: str
    stability_severities: str
    max_images: int | None
    box: str = "box"


BUDGETS: dict[str, CardBudget] = {
    # the card: 15 x 5 corruption cells (+ the 4 box perturbations x 5), IGSM-10
    # at eps 2 and 8, heldout5 x 5
    "paper": CardBudget("paper", "benchmark", "1-5", "2,8", 10, 10, 8, "heldout5", "1-5", None,
                        "box"),
    # a few CPU minutes on the bundled model: severities 1/3/5 (also of the box cells; 3 of
    # stability), eps 8, the first 16 images (synth val: 16 images of 1-3 people)
    "quick": CardBudget("quick", "benchmark", "1,3,5", "8", 10, 5, 4, "heldout5", "3", 16,
                        "box"),
}


def _sev_list(text: str) -> list[int]:
    from robustpose.benchmarking.cells import parse_severities

    return list(parse_severities(text))


def skipped_by(budget: CardBudget, attack: str, max_images: int | None,
               whole_image: bool = False) -> list[str]:
    """What ``budget`` leaves out of the paper card, one line each (``budget.skipped``).
    ``whole_image`` (image in, people out): the stability and box faces are not run, so
    their lines are :data:`WHOLE_IMAGE_SKIPS`, not the budget's; its attack is the query
    attack on the whole image."""
    paper, out = BUDGETS["paper"], []
    missing = [s for s in _sev_list(paper.severities) if s not in _sev_list(budget.severities)]
    if missing:
        runs_box = budget.box and not whole_image
        out.append(f"{'corruption and box' if runs_box else 'corruption'} severities "
                   f"{','.join(map(str, missing))} (ran {budget.severities})")
    if budget.corruptions != paper.corruptions:
        out.append(f"corruptions: ran {budget.corruptions!r}, not the 15")
    if whole_image:
        out += WHOLE_IMAGE_SKIPS
    elif budget.box != paper.box:
        out.append(f"box perturbations: ran {budget.box or 'none'!r}, not {paper.box!r}")
    eps = [e for e in paper.eps.split(",") if e not in budget.eps.split(",")]
    if eps:
        out.append(f"attack eps {','.join(eps)} (ran eps {budget.eps})")
    if attack == "spsa" and (budget.spsa_steps, budget.spsa_samples) != (paper.spsa_steps,
                                                                        paper.spsa_samples):
        out.append(f"SPSA {budget.spsa_steps} steps x {budget.spsa_samples} samples "
                   f"(paper budget: {paper.spsa_steps} x {paper.spsa_samples})")
    if budget.steps != paper.steps and attack == "igsm":
        out.append(f"IGSM steps: ran {budget.steps}, not {paper.steps}")
    missing = [s for s in _sev_list(paper.stability_severities)
               if s not in _sev_list(budget.stability_severities)]
    if missing and not whole_image:
        out.append(f"stability severities {','.join(map(str, missing))} "
                   f"(ran {budget.stability_severities})")
    if max_images is not None:
        out.append(f"images after the first {max_images}")
    return out


def choose_attack(adapter: Any, attack: str = "auto") -> str:
    """``igsm`` for a model with torch weights (gradients), ``spsa`` (queries) otherwise;
    an explicit ``igsm`` on a model without gradients is refused in one line."""
    if attack not in CARD_ATTACKS:
        raise ValueError(f"card attack {attack!r}; choose from {', '.join(CARD_ATTACKS)}")
    white_box = hasattr(adapter, "model")
    if attack == "auto":
        return "igsm" if white_box else "spsa"
    if attack == "igsm" and not white_box:
        raise ValueError(f"{adapter.name}: igsm needs torch weights (gradients); this model "
                         "answers queries only: use the card's spsa")
    return attack


def face_options(budget: CardBudget, attack: str, batch_size: int, workers: int,
                 whole_image: bool = False) -> dict:
    """The faces' run options, as ``run_benchmark`` / ``run_attack`` / ``run_stability``
    build them from their defaults (the card changes only the grid). The benchmark face
    also runs the budget's box perturbations; a whole-image model (its benchmark refuses
    box cells, and it has no crop heatmaps) gets the benchmark and attack faces only."""
    steps = budget.steps if attack == "igsm" else budget.spsa_steps
    corruptions = budget.corruptions
    if budget.box and not whole_image:
        corruptions = f"{corruptions},{budget.box}"
    return {
        "benchmark": {"corruptions": corruptions, "severities": budget.severities,
                      "flip_test": None, "detections": None, "batch_size": batch_size,
                      "workers": workers, "save_predictions": False, "print_table": False,
                      "from_env": False},
        "attack": {"attack": attack, "eps": budget.eps, "steps": str(steps), "targeted": False,
                   "all_stacks": False, "loss": "auto", "reference": "gt", "alpha": None,
                   "surrogates": [], "spsa_samples": budget.spsa_samples, "max_queries": None,
                   "uap_fit_images": 32, "uap_fit_annotations": None, "uap_holdout_images": 0,
                   "uap_patience": 0, "uap_min_delta": 0.005,
                   "batch_size": min(16, batch_size)},
        "stability": {"perturbations": budget.perturbations,
                      "severities": budget.stability_severities, "dn_n": 64,
                      "d12_normalisation": "auto", "ruc_p_max": 10, "dn_ties": "peak",
                      "batch_size": batch_size, "workers": workers},
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _count_records(folder: Path) -> int:
    """Records stored in a face folder (every shard's store), 0 for a new folder."""
    return sum(len(p.read_text(encoding="utf-8").splitlines())
               for p in folder.glob("results*.jsonl")) if folder.is_dir() else 0


def _claim_card_folder(out: Path, settings: dict) -> None:
    """The card folder's run.json (kind 'card'); a folder made with another budget, model
    or data set is refused in one line (its faces would mix two requests)."""
    path = out / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise ValueError(f"{path}: unreadable run settings") from None
        if old.get("kind") != COMMAND:
            raise ValueError(f"{out}: holds a {old.get('kind') or 'benchmark'} run, not a card; "
                             "give another --out")
        for key in ("budget", "model", "dataset", "max_images", "seed"):
            if old.get(key) != settings.get(key):
                raise ValueError(f"{path}: made with {key} {old.get(key)!r}, this run asks "
                                 f"{settings.get(key)!r}; give another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings, indent=2) + "\n")


def run_card(model: ModelChoice | None = None, data: DataChoice | None = None, *,
             budget: str = "quick", attack: str = "auto", out: Any = None,
             device: str = "cpu", batch_size: int = 32, workers: int = 2,
             progress: bool = True, plots: bool = True, keep_adapter: bool = False) -> dict:
    """Run (or resume) one model's card; returns the card (schema v1, docs/card.md) plus
    ``run_dir`` and ``cells_run`` {face: cells computed by this call} (0 on a rerun).

    ``model`` / ``data``: the run layer's choices (None: the bundled model / synth val).
    ``data.max_images`` None takes the budget's. ``attack``: auto (IGSM for torch
    weights, SPSA for a query-only model), igsm or spsa. ``out`` None:
    ``runs/card/<model>__<dataset>``. ``keep_adapter``: also return the loaded adapter
    under ``_adapter`` (the comparison's Fig. 6 reuses it; not part of the card)."""
    from robustpose.benchmarking.card_share import CleanPassCache
    from robustpose.benchmarking.sources import resolve_source
    from robustpose.data.registry import keypoint_count
    from robustpose.models.whole_image import is_whole_image

    if budget not in BUDGETS:
        raise ValueError(f"card budget {budget!r}; choose from {', '.join(BUDGETS)}")
    if attack not in CARD_ATTACKS:
        raise ValueError(f"card attack {attack!r}; choose from {', '.join(CARD_ATTACKS)}")
    if batch_size < 1 or workers < 0:
        raise ValueError("card: batch_size must be >= 1 and workers >= 0")
    plan = BUDGETS[budget]
    model = model or ModelChoice()
    data = DataChoice() if data is None else DataChoice(**asdict(data))
    if data.max_images is None:
        data.max_images = plan.max_images
    device = device_for(device)
    joints = model.num_joints or keypoint_count(data.dataset, data.annotations,
                                                data_root=data.data_root, spec=data.spec)
    adapter, info = load_adapter(model, device, joints)  # once, for the three faces
    if model.name:
        adapter.name = model.name
    whole = is_whole_image(adapter)
    if whole and attack not in ("auto", WHOLE_IMAGE_ATTACK):
        raise ValueError(f"{adapter.name}: a whole-image model takes the query attack only "
                         f"(card attack {WHOLE_IMAGE_ATTACK} or auto), not {attack}")
    chosen = WHOLE_IMAGE_ATTACK if whole else choose_attack(adapter, attack)
    name = adapter.name
    out = Path(out) if out is not None else Path("runs") / COMMAND / _slug(
        f"{name}__{data.dataset}")
    options = face_options(plan, chosen, batch_size, workers, whole_image=whole)
    if whole:  # image in, people out: no crop heatmaps to compare; the whole image attacked
        options = {"benchmark": options["benchmark"], "attack": options["attack"]}
    # the data once for every face (the same records, crops and subset file)
    source = resolve_source(data.dataset, data.data_root, data.annotations, data.detections,
                            input_size=adapter.input_size, padding=adapter.padding,
                            max_images=data.max_images, subset_dir=out / "subsets",
                            metric_options=data.metric_options, spec=data.spec)
    _claim_card_folder(out, {"kind": COMMAND, "schema_version": SCHEMA_VERSION,
                             "budget": budget, "model": name, "dataset": data.dataset,
                             "max_images": data.max_images, "seed": int(data.seed),
                             "attack": chosen, "whole_image": whole,
                             "faces": dict(FACE_DIRS),
                             "face_options": {f: {k: v for k, v in o.items()
                                                  if k not in ("workers", "batch_size")}
                                              for f, o in options.items()}})
    faces, cells_run = {face: None for face in FACE_DIRS}, {}
    # a later face's clean reference reuses an earlier face's forward pass of the same
    # crops (card_share: keyed by the crops' bytes, so reused only for the same input)
    cache = CleanPassCache(adapter, len(source.records))
    with (nullcontext() if whole else cache):
        for face in options:
            sub = FACE_DIRS[face]
            before = _count_records(out / sub)
            if progress:
                print(f"robustpose card: {face} face -> {out / sub}", file=sys.stderr)
            faces[face] = execute(face, model, data, out=out / sub,
                                  options={**options[face], "loaded": (adapter, info),
                                           "source": source},
                                  device=device, progress=progress, plots=plots)
            cells_run[face] = _count_records(out / sub) - before
    card = assemble(out, budget, chosen, data.max_images, faces, plots=plots,
                    whole_image=whole)
    card["run_dir"], card["cells_run"] = str(out), cells_run
    card["shared"] = cache.summary()  # crops answered from an earlier face's pass
    if keep_adapter:
        card["_adapter"] = adapter
    return card


def assemble(out: Path, budget: str, attack: str, max_images: int | None,
             faces: dict, plots: bool = True, whole_image: bool = False) -> dict:
    """The card of the three face cards; written to ``out`` (card.json / .md / .png)."""
    from robustpose.reports.card import card_from_faces, write_card

    runs = {f: str(out / d) if faces.get(f) is not None else None
            for f, d in FACE_DIRS.items()}
    skipped = skipped_by(BUDGETS[budget], attack, max_images, whole_image)
    card = card_from_faces(faces.get("benchmark"), faces.get("attack"), faces.get("stability"),
                           {"budget": budget, "runs": runs, "skipped": skipped})
    write_card(card, out, plots=plots)
    return card


class CardKind:
    """The card as a composite run kind: its cells are its faces' cells (each face's
    kind runs and resumes them, see :func:`run_card`); ``robustpose report CARD_DIR``
    rebuilds card.json / .md / .png from the face folders' own cards."""

    name = COMMAND
    checks_keypoints = True

    def title(self, run: Any) -> str:
        return COMMAND

    def default_dir(self, run: Any, slug: str) -> Path:
        return Path("runs") / COMMAND / slug

    def check(self, options: dict) -> None:
        for key, choices in (("budget", BUDGETS), ("attack", CARD_ATTACKS)):
            if options.get(key, next(iter(choices))) not in choices:
                raise ValueError(f"card {key} {options[key]!r}; choose from {', '.join(choices)}")

    def write_reports(self, folder: Any, plots: bool = True) -> dict:
        """Rebuild the card from the face folders (each face's kind rebuilds its card)."""
        from robustpose.benchmarking.run_folder import RunFolder
        from robustpose.benchmarking.run_layer import get_kind

        out = Path(getattr(folder, "path", folder))
        try:
            settings = json.loads((out / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ValueError(f"{out}/run.json: unreadable card settings") from None
        faces = {}
        for face, sub in settings.get("faces", FACE_DIRS).items():
            path = out / sub
            faces[face] = get_kind(face).write_reports(RunFolder(path), plots=plots) \
                if (path / "run.json").is_file() else None
        return assemble(out, settings["budget"], settings.get("attack", "igsm"),
                        settings.get("max_images"), faces, plots=plots,
                        whole_image=bool(settings.get("whole_image")))

    def report(self, run_dir: Any, plots: bool = True) -> int:
        from robustpose.reports.card import format_card

        print(format_card(self.write_reports(run_dir, plots=plots)), end="")
        print(f"rebuilt: {run_dir}/card.json, card.md" + (", card.png" if plots else ""))
        return 0


    def compare(self, run_dirs: Any, out: Any, plots: bool = True) -> int:
        """``robustpose report CARD_A CARD_B ...``: the comparison of the card folders
        (card_models.compare_models: table, mCE against the first, Fig. 4 / 5) in ``out``
        (default ``<first card>/compare``)."""
        from robustpose.benchmarking.card_models import compare_models
        from robustpose.reports.card import read_card

        cards = [read_card(d) for d in run_dirs]
        target = Path(out) if out is not None else Path(run_dirs[0]) / "compare"
        got = compare_models(cards, target, plots=plots)
        print(got["table"].to_markdown(), end="")
        print(f"compared: {target}/compare.md, compare.csv" + (", compare.png" if plots else ""))
        return 0


CARD = register_kind(CardKind())
