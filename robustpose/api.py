"""The typed top-level API: ``robustpose.benchmark`` / ``attack`` / ``stability`` / ``card``.

Each call takes a model choice and a data choice, runs (or resumes) the command's run
folder through the run function of :mod:`robustpose.benchmarking`, and returns a frozen
dataclass built from that function's card (the dict also written to the folder)::

    >>> import robustpose
    >>> result = robustpose.benchmark(corruptions="fog", severities="1")   # doctest: +SKIP
    >>> result.clean, result.mPC, result.rPC, result.run_dir              # doctest: +SKIP

Model choice (as the commands take it): ``model`` = a registry name (with ``checkpoint``),
a ``PoseModel``, an adapter or a callable; or ``config`` (+ ``checkpoint``); or ``onnx`` +
``onnx_spec``; nothing = the bundled SynthPose model. Data choice: ``dataset`` (a name of
the dataset registry), ``data_root``, ``annotations``, ``max_images``, ``spec``. Every
other keyword is the run function's own (``corruptions``, ``eps``, ``out``, ...); a
mistyped one is a ``TypeError`` naming it.

Dict-style access (``result["mPC"]``), what ``robustpose.benchmark`` returned before, still
works with a ``DeprecationWarning``; ``result.to_dict()`` is the card itself.
This module imports no torch at import time (``import robustpose`` stays light).
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

__all__ = ["BenchmarkResult", "AttackResult", "AttackPoint", "StabilityResult", "CardResult",
           "benchmark", "attack", "stability", "card"]


@dataclass(frozen=True)
class _Result:
    """The card a run function returned, kept whole (``to_dict``), and its run folder."""

    card: dict = field(repr=False, compare=False)

    def to_dict(self) -> dict:
        """A deep copy of the run's card: the JSON the run folder holds, plus ``run_dir``."""
        return copy.deepcopy(self.card)

    # --- the dict the API returned before: still readable, with a warning -------------
    def __getitem__(self, key: str) -> Any:
        warnings.warn(f"{type(self).__name__}[{key!r}]: dict access to a robustpose result is "
                      f"deprecated; use the attribute or .to_dict()[{key!r}]",
                      DeprecationWarning, stacklevel=2)
        return self.card[key]

    def __contains__(self, key: object) -> bool:
        return key in self.card

    def keys(self) -> Iterator[str]:
        """The card's keys (what ``dict(result)``-style callers iterate)."""
        return iter(self.card.keys())

    def get(self, key: str, default: Any = None) -> Any:
        """``card.get(key, default)``, deprecated like ``result[key]``."""
        return self[key] if key in self.card else default


def _run_dir(card: dict) -> Path | None:
    return Path(card["run_dir"]) if card.get("run_dir") else None


@dataclass(frozen=True)
class BenchmarkResult(_Result):
    """A corruption benchmark (``robustpose benchmark``). Metric values in the card's
    ``units`` (percent for AP / PCKh): ``clean`` (AP* / PCKh*), ``mPC`` (mean over the
    corruptions x severities run), ``rPC`` (mPC / clean, percent), ``per_corruption``
    {name: mean over severities}, ``per_severity`` {'1'..'5': mean over corruptions},
    ``per_family`` and ``worst`` ({'corruption', 'value'}); ``None`` where not computed
    (e.g. only the clean cell, or an unfinished shard: ``incomplete``)."""

    model: str = ""
    dataset: str = ""
    metric: str = ""
    clean: float | None = None
    mPC: float | None = None
    rPC: float | None = None
    per_corruption: dict[str, float] = field(default_factory=dict)
    per_severity: dict[str, float] = field(default_factory=dict)
    per_family: dict[str, Any] = field(default_factory=dict)
    worst: dict[str, Any] | None = None
    run_dir: Path | None = None
    incomplete: bool = False

    @classmethod
    def from_card(cls, card: dict) -> "BenchmarkResult":
        """From what :func:`robustpose.benchmarking.run_benchmark` returns (or summary.json)."""
        return cls(card=card, model=card.get("model", ""), dataset=card.get("dataset", ""),
                   metric=card.get("metric", ""), clean=card.get("clean"),
                   mPC=card.get("mPC"), rPC=card.get("rPC"),
                   per_corruption=dict(card.get("per_corruption") or {}),
                   per_severity=dict(card.get("per_severity") or {}),
                   per_family=dict(card.get("per_family") or {}), worst=card.get("worst"),
                   run_dir=_run_dir(card), incomplete=bool(card.get("incomplete")))


@dataclass(frozen=True)
class AttackPoint:
    """One attacked cell: relative = attacked / clean (fractions, 1.0 = unharmed);
    ``metric_value`` (the set's AP / PCKh, fraction) and ``pck`` (PCK@0.1 of the box)."""

    eps: float
    steps: int
    targeted: bool
    all_stacks: bool
    surrogate: str | None
    loss: str | None
    relative_metric: float | None
    relative_pck: float | None
    metric_value: float | None
    pck: float | None


@dataclass(frozen=True)
class AttackResult(_Result):
    """An attack run (``robustpose attack``): ``points`` (one :class:`AttackPoint` per
    cell, in the card's order), ``clean_metric`` / ``clean_pck`` (fractions), and per eps
    (0..255 scale) ``relative_metric`` / ``relative_pck``: the cell with the most steps at
    that eps (the strongest run), ``None`` where a ratio is undefined."""

    attack: str = ""
    model: str = ""
    dataset: str = ""
    metric: str = ""
    clean_metric: float | None = None
    clean_pck: float | None = None
    points: tuple[AttackPoint, ...] = ()
    relative_metric: dict[float, float | None] = field(default_factory=dict)
    relative_pck: dict[float, float | None] = field(default_factory=dict)
    run_dir: Path | None = None

    @classmethod
    def from_card(cls, card: dict) -> "AttackResult":
        """From what :func:`robustpose.benchmarking.attack_run.run_attack` returns."""
        points = tuple(AttackPoint(eps=float(c["eps"]), steps=int(c.get("steps") or 0),
                                   targeted=bool(c.get("targeted")),
                                   all_stacks=bool(c.get("all_stacks")),
                                   surrogate=c.get("surrogate"), loss=c.get("loss"),
                                   relative_metric=c.get("relative_metric"),
                                   relative_pck=c.get("relative_pck"),
                                   metric_value=c.get("metric_value"), pck=c.get("pck"))
                       for c in card.get("cells") or [])
        strongest: dict[float, AttackPoint] = {}
        for point in points:  # first one wins a tie (card order)
            if point.eps not in strongest or point.steps > strongest[point.eps].steps:
                strongest[point.eps] = point
        clean = card.get("clean") or {}
        return cls(card=card, attack=card.get("attack", ""), model=card.get("model", ""),
                   dataset=card.get("dataset", ""), metric=card.get("metric", ""),
                   clean_metric=clean.get("metric_value"), clean_pck=clean.get("pck"),
                   points=points,
                   relative_metric={e: p.relative_metric for e, p in sorted(strongest.items())},
                   relative_pck={e: p.relative_pck for e, p in sorted(strongest.items())},
                   run_dir=_run_dir(card))


@dataclass(frozen=True)
class StabilityResult(_Result):
    """A stability run (``robustpose stability``, docs/stability.md), pooled over every
    perturbation cell: ``R`` (sum of squared displacements, heatmap px^2), ``R_mean``
    (per keypoint), ``RUC`` (fraction of keypoints moved <= P heatmap px, P = 0..p_max),
    ``RUC_area``, ``D_n`` and ``D_12`` (of the perturbed maps), ``clean`` (the clean
    cell's row: AUC, EPE, D_n, D_12), ``per_perturbation`` {name: pooled row}."""

    model: str = ""
    dataset: str = ""
    R: float | None = None
    R_mean: float | None = None
    RUC: tuple[float, ...] = ()
    RUC_area: float | None = None
    D_n: float | None = None
    D_12: float | None = None
    clean: dict[str, Any] = field(default_factory=dict)
    per_perturbation: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    incomplete: bool = False

    @classmethod
    def from_card(cls, card: dict) -> "StabilityResult":
        """From what :func:`robustpose.benchmarking.stability_run.run_stability` returns."""
        overall = card.get("overall") or {}
        r = overall.get("R_heatmap") or {}
        return cls(card=card, model=card.get("model", ""), dataset=card.get("dataset", ""),
                   R=r.get("sum"), R_mean=r.get("mean"), RUC=tuple(overall.get("RUC") or ()),
                   RUC_area=overall.get("RUC_area"), D_n=overall.get("D_n"),
                   D_12=overall.get("D_12"), clean=dict(card.get("clean") or {}),
                   per_perturbation=dict(card.get("per_perturbation") or {}),
                   run_dir=_run_dir(card), incomplete=bool(card.get("incomplete")))


def benchmark(model: Any = None, *, dataset: str = "synth", **options: Any) -> BenchmarkResult:
    """Corruption benchmark of ``model`` on ``dataset`` (clean + corruptions x severities);
    ``options`` are :func:`robustpose.benchmarking.run_benchmark`'s keywords."""
    from robustpose.benchmarking import run_benchmark

    card = run_benchmark(model, dataset=dataset, **options)
    card.pop("printed", None)  # the command's bookkeeping, not a figure
    return BenchmarkResult.from_card(card)


def attack(kind: str = "igsm", model: Any = None, *, dataset: str = "synth",
           **options: Any) -> AttackResult:
    """Adversarial attack ``kind`` (fgsm, igsm, uap, transfer, spsa) on ``model``;
    ``options`` are :func:`robustpose.benchmarking.attack_run.run_attack`'s keywords
    (``eps``, ``steps``, ``targeted``, ``out``, ...)."""
    from robustpose.benchmarking.attack_run import run_attack

    return AttackResult.from_card(run_attack(kind, model, dataset=dataset, **options))


def stability(model: Any = None, *, dataset: str = "synth", **options: Any) -> StabilityResult:
    """Stability of ``model`` under ``perturbations`` (default heldout5); ``options`` are
    :func:`robustpose.benchmarking.stability_run.run_stability`'s keywords."""
    from robustpose.benchmarking.stability_run import run_stability

    return StabilityResult.from_card(run_stability(model, dataset=dataset, **options))


@dataclass(frozen=True)
class CardResult(_Result):
    """A robustness card (``robustpose card``, docs/card.md, schema v1). Values in percent
    (AP x 100 or PCKh; relative figures: percent of clean): ``clean`` (AP* / PCKh*),
    ``clean_pck`` (PCK@0.1 of the box), ``mPC`` / ``rPC`` / ``per_family`` (corruption
    face), ``attack`` (e.g. 'IGSM-10', 'SPSA-10') with ``access`` ('gradient' | 'query')
    and per eps (0..255) ``relative_metric`` / ``relative_pck``, ``R_per_keypoint``
    (heatmap px^2), ``RUC_area`` (fraction), ``D_n`` (heatmap px^2); ``box`` /
    ``box_relative`` (the box perturbations' mean metric and its percent of clean); ``budget`` and
    ``skipped`` (what the budget left out); ``cells_run`` {face: cells computed by this
    call} (0 each when the card was already complete). None: a face not measured."""

    model: str = ""
    dataset: str = ""
    metric: str = ""
    budget: str = ""
    skipped: tuple[str, ...] = ()
    clean: float | None = None
    clean_pck: float | None = None
    mPC: float | None = None
    rPC: float | None = None
    per_family: dict[str, Any] = field(default_factory=dict)
    attack: str | None = None
    access: str | None = None
    relative_metric: dict[float, float | None] = field(default_factory=dict)
    relative_pck: dict[float, float | None] = field(default_factory=dict)
    R_per_keypoint: float | None = None
    RUC_area: float | None = None
    D_n: float | None = None
    box: float | None = None
    box_relative: float | None = None
    cells_run: dict[str, int] = field(default_factory=dict)
    run_dir: Path | None = None

    @classmethod
    def from_card(cls, card: dict) -> "CardResult":
        """From a card (what :func:`robustpose.benchmarking.card_run.run_card` returns, or
        a ``card.json`` loaded)."""
        corr, adv = card.get("corruption") or {}, card.get("adversarial") or {}
        stab, box = card.get("stability") or {}, card.get("box") or {}
        rows = adv.get("per_eps") or []
        return cls(card=card, model=card["model"]["name"], dataset=card["dataset"]["name"],
                   metric=card["dataset"]["metric"], budget=card["budget"]["name"],
                   skipped=tuple(card["budget"]["skipped"]), clean=card["clean"]["value"],
                   clean_pck=card["clean"]["pck"], mPC=corr.get("mPC"), rPC=corr.get("rPC"),
                   per_family=dict(corr.get("per_family") or {}), attack=adv.get("attack"),
                   access=adv.get("access"),
                   relative_metric={float(r["eps"]): r["relative_metric"] for r in rows},
                   relative_pck={float(r["eps"]): r["relative_pck"] for r in rows},
                   R_per_keypoint=stab.get("R_per_keypoint"), RUC_area=stab.get("RUC_area"),
                   box=box.get("mean"), box_relative=box.get("relative"),
                   D_n=stab.get("D_n"), cells_run=dict(card.get("cells_run") or {}),
                   run_dir=_run_dir(card))


def card(model: Any = None, *, dataset: str = "synth", budget: str = "quick",
         attack: str = "auto", checkpoint: Any = None, config: Any = None, onnx: Any = None,
         onnx_spec: Any = None, data_root: Any = None, annotations: Any = None,
         max_images: int | None = None, spec: str | None = None, input_size: Any = None,
         seed: int = 0, out: Any = None, device: str = "cpu", batch_size: int = 32,
         workers: int = 2, name: str | None = None, model_identity: str | None = None,
         progress: bool = True, plots: bool = True) -> CardResult:
    """The robustness card of ``model`` on ``dataset``: clean, corruption (mPC / rPC),
    adversarial (IGSM-10, or SPSA for a query-only model) and stability (heldout5) faces
    in one resumable run folder (``out``, default ``runs/card/<model>__<dataset>``).
    ``budget``: 'quick' or 'paper' (docs/card.md); ``max_images`` None: the budget's."""
    from robustpose.benchmarking.card_run import run_card
    from robustpose.benchmarking.run_layer import DataChoice, ModelChoice

    choice = ModelChoice(model, checkpoint, config, onnx, onnx_spec, input_size,
                         model_identity=model_identity, name=name)
    data = DataChoice(dataset, data_root, annotations, None, max_images, spec, seed=seed)
    got = run_card(choice, data, budget=budget, attack=attack, out=out, device=device,
                   batch_size=batch_size, workers=workers, progress=progress, plots=plots)
    return CardResult.from_card(got)
