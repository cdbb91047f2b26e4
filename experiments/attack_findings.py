"""Findings of the miniature attack study: run folders' records -> "claim | measured | holds?".

Used by ``experiments/attack_study.py`` (which runs the folders); every number here is
read from ``<out>/<model>/<variant>/`` run folders (``RunFolder.records()``), nothing is
hard-coded. Relative = attacked / clean of PCK@0.1 (default, the study's relative PCKh)
or OKS AP; "robustness" = the mean relative metric over the eps grid under IGSM-U-N, and
beside it under the strongest attack tried at each eps (:meth:`Results.strongest`: the
minimum over FGSM, IGSM-U with the model's training loss and with pck_margin, IGSM-ALL).
A verdict is ``yes`` / ``no`` / ``partly (k/n)`` over the models or pairs a row compares,
``n/a`` when nothing was measured; the thresholds of the two vague claims are
:data:`UAP_RATIO` and :data:`TRANSFER_RATIO`.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from robustpose.benchmarking.attack_run import cell_key
from robustpose.benchmarking.run_folder import RunFolder

MODELS = ("heatmap", "regression", "hourglass2", "hourglass8")
LABELS = {"heatmap": "heatmap (bundled ShuffleNetV2)", "regression": "regression (DeepPose ShuffleNetV2)",
          "hourglass2": "hourglass-2", "hourglass8": "hourglass-8"}
#: seed of the SynthPose images the UAP is fitted on: a training-distribution split that
#: no model trained on (training uses seed 1) and disjoint from the validation split
UAP_FIT_SEED = 101
UAP_RATIO = 0.8       # "about as effective": the UAP's drop is >= 80% of the per-image drop
TRANSFER_RATIO = 0.5  # "far less": the transfer drop is <= half the white-box drop
GROUPS = ("head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")


@dataclass
class Row:
    claim: str
    measured: str
    holds: str


def verdict(results: list[bool]) -> str:
    """'yes' (all), 'no' (none), 'partly (k/n)', 'n/a' (nothing measured)."""
    if not results:
        return "n/a"
    k = sum(bool(r) for r in results)
    return "yes" if k == len(results) else "no" if k == 0 else f"partly ({k}/{len(results)})"


# -- reading ---------------------------------------------------------------------------
class Results:
    """The records of ``<out>/<model>/<variant>`` folders, as relative numbers."""

    def __init__(self, out: Path, metric: str) -> None:
        self.out, self.field = out, "metric_value" if metric == "ap" else "pck"
        self._cache: dict[tuple[str, str], tuple[dict | None, dict, list]] = {}

    def folder(self, model: str, variant: str) -> tuple[dict | None, dict, list]:
        """(clean record, {(corruption, severity): record}, keypoint names)."""
        if (model, variant) not in self._cache:
            path = self.out / model / variant
            clean, cells, names = None, {}, []
            if (path / "run.json").is_file():
                folder = RunFolder(path)
                names = list(folder.settings.get("keypoint_names") or [])
                for r in folder.records():
                    if r["corruption"] == "clean":
                        clean = r
                    else:
                        cells[(r["corruption"], int(r["severity"]))] = r
            self._cache[(model, variant)] = (clean, cells, names)
        return self._cache[(model, variant)]

    def record(self, model: str, variant: str, key: str, steps: int) -> dict | None:
        return self.folder(model, variant)[1].get((key, int(steps)))

    def rel(self, model: str, variant: str, key: str, steps: int, field: str | None = None) -> float | None:
        """attacked / clean of the metric (or ``field``), None when absent or clean is 0."""
        field = field or self.field
        clean, _, _ = self.folder(model, variant)
        rec = self.record(model, variant, key, steps)
        if clean is None or rec is None or rec.get(field) is None or not clean.get(field):
            return None
        return float(rec[field]) / float(clean[field])

    def robustness(self, model: str, variant: str, grid: list[float], steps: int,
                   all_stacks: bool = False) -> float | None:
        """Mean relative metric over the eps grid (None unless every eps is measured)."""
        vals = [self.rel(model, variant, cell_key("igsm", e, False, all_stacks), steps) for e in grid]
        return None if not vals or any(v is None for v in vals) else sum(vals) / len(vals)

    def joint_groups(self, model: str, grid: list[float], steps: int) -> dict[str, float]:
        """Per body-part group: mean over its joints and the eps grid of relative PCK."""
        clean, cells, names = self.folder(model, "igsm-U")
        if clean is None:
            return {}
        sums: dict[str, list[float]] = {}
        for e in grid:
            rec = cells.get((cell_key("igsm", e, False, False), steps))
            if rec is None:
                return {}
            for name, a, b in zip(names, rec.get("pck_per_joint") or [], clean.get("pck_per_joint") or []):
                if a is not None and b:
                    sums.setdefault(group_of(name), []).append(a / b)
        return {g: sum(v) / len(v) for g, v in sums.items()}

    def settings(self, model: str, variant: str) -> dict:
        """The folder's run conventions (run.json), {} when it was not run."""
        path = self.out / model / variant
        return dict(RunFolder(path).settings.get("conventions") or {}) \
            if (path / "run.json").is_file() else {}

    def strongest(self, model: str, eps: float, steps: int, long_steps: int) -> tuple[float | None, str]:
        """(the minimum relative metric at ``eps`` over the untargeted white-box attacks and
        losses tried, its attack's name); (None, 'n/a') when none was measured."""
        key, n = (lambda all_: cell_key("igsm", eps, False, all_)), steps
        tried = {"FGSM": self.rel(model, "fgsm-U", cell_key("fgsm", eps, False, False), 1),
                 f"IGSM-{n}": self.rel(model, "igsm-U", key(False), n),
                 f"IGSM-{long_steps}": self.rel(model, "igsm-U", key(False), long_steps),
                 f"IGSM-{n} pck_margin": self.rel(model, "igsm-U-pck", key(False), n),
                 f"IGSM-{n}-ALL": self.rel(model, "igsm-U-ALL", key(True), n)}
        measured = {k: v for k, v in tried.items() if v is not None}
        if not measured:
            return None, "n/a"
        name = min(measured, key=measured.get)
        return measured[name], name

    def strongest_robustness(self, model: str, grid: list[float], steps: int,
                             long_steps: int) -> float | None:
        """Mean over the eps grid of :meth:`strongest` (None unless every eps has one)."""
        vals = [self.strongest(model, e, steps, long_steps)[0] for e in grid]
        return None if not vals or any(v is None for v in vals) else sum(vals) / len(vals)

    def variants(self, model: str, prefix: str) -> list[str]:
        """Names of the model's run folders starting with ``prefix``."""
        return sorted(p.name for p in (self.out / model).glob(prefix + "*") if (p / "run.json").is_file())

    def transfer_rel(self, model: str, variant: str, eps: float, steps: int) -> float | None:
        """Relative metric of the (single-surrogate) transfer folder's IGSM-U cell at eps."""
        _, cells, _ = self.folder(model, variant)
        tail = f"]-igsm-U@{eps:g}"
        keys = [k for (k, s) in cells if k.startswith("transfer[") and k.endswith(tail) and s == steps]
        return self.rel(model, variant, keys[0], steps) if len(keys) == 1 else None

    def elapsed_s(self) -> float:
        return sum(float(r.get("elapsed_s") or 0.0) for clean, cells, _ in self._cache.values()
                   for r in ([clean] if clean else []) + list(cells.values()))


def group_of(name: str) -> str:
    """COCO joint -> body-part group (face points and ears are the head; COCO has no neck)."""
    base = name.replace("left_", "").replace("right_", "")
    return "head" if base in ("nose", "eye", "ear") else base


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


# -- the findings ----------------------------------------------------------------------
def findings(res: Results, args: argparse.Namespace, models: list[str]) -> list[Row]:
    grid, e, n, metric = args.eps, args.eps_finding, args.steps, f"rel. {args.metric.upper()}"
    igsm = lambda m, eps=e, steps=n: res.rel(m, "igsm-U", cell_key("igsm", eps, False, False), steps)  # noqa: E731
    rows: list[Row] = []
    robust = {m: res.robustness(m, "igsm-U", grid, n) for m in models}
    heat = [m for m in models if m != "regression" and robust[m] is not None]
    reg = robust.get("regression")
    rows.append(Row("heatmap models are more robust than direct regression",
                    f"IGSM-U-{n} (each model's training loss), mean {metric} over eps "
                    f"{{{args.eps_text}}}: " + ", ".join(f"{LABELS[m]} {fmt(robust[m])}" for m in models),
                    verdict([robust[m] > reg for m in heat] if reg is not None else [])))
    # robustness = the strongest attack tried: the minimum over attacks and losses per eps
    strong = {m: res.strongest_robustness(m, grid, n, args.long_steps) for m in models}
    at_e = {m: res.strongest(m, e, n, args.long_steps) for m in models}
    heat_s = [m for m in models if m != "regression" and strong[m] is not None]
    reg_s = strong.get("regression")
    rows.append(Row("under the strongest attack tried per model (minimum over FGSM, IGSM with "
                    "the training loss and with pck_margin, IGSM-ALL, at each eps), heatmap "
                    "models are more robust than direct regression",
                    f"mean {metric} over the grid of the per-eps minimum: " +
                    ", ".join(f"{LABELS[m]} {fmt(strong[m])}" for m in models) +
                    f"; at eps {e:g}: " + ", ".join(f"{LABELS[m]} {fmt(at_e[m][0])} ({at_e[m][1]})"
                                                    for m in models),
                    verdict([strong[m] > reg_s for m in heat_s] if reg_s is not None else [])))
    order, parts = [], []
    for m in models:
        f = res.rel(m, "fgsm-U", cell_key("fgsm", e, False, False), 1)
        short, long_ = igsm(m), igsm(m, steps=args.long_steps)
        parts.append(f"{LABELS[m]}: FGSM {fmt(f)}, IGSM-{n} {fmt(short)}, IGSM-{args.long_steps} {fmt(long_)}")
        if None not in (f, short, long_):
            order.append(long_ < short < f)
    rows.append(Row(f"IGSM-{args.long_steps} > IGSM-{n} > FGSM at eps {e:g} (lower {metric} = stronger)",
                    "; ".join(parts), verdict(order)))
    # IGSM-T-N and the paper's IGSM-T-20 (--targeted-long-steps), both against IGSM-U-N
    for t_steps in dict.fromkeys((n, args.targeted_long_steps)):
        harder, parts = [], []
        for m in models:
            key = lambda eps: cell_key("igsm", eps, True, False)  # noqa: E731
            t0, t1 = (res.record(m, "igsm-T", key(x), t_steps) for x in (0.0, e))
            u = res.rel(m, "igsm-U", cell_key("igsm", e, False, False), n, field="pck")
            if t0 is None or t1 is None or u is None or t0.get("target_pck") is None:
                continue
            base = float(t0["target_pck"])
            s_t = (float(t1["target_pck"]) - base) / max(1.0 - base, 1e-9)
            s_u = 1.0 - u
            harder.append(s_t < s_u)
            parts.append(f"{LABELS[m]}: targeted success {s_t:.3f} (target PCK {base:.3f} -> "
                         f"{float(t1['target_pck']):.3f}) vs untargeted {s_u:.3f}")
        rows.append(Row(f"targeted attacks are harder than untargeted (IGSM-T-{t_steps} vs "
                        f"IGSM-U-{n}, eps {e:g}; success: share of the missing target PCK gained "
                        "vs share of clean PCK lost)", "; ".join(parts) or "n/a", verdict(harder)))
    h2, h8 = robust.get("hourglass2"), robust.get("hourglass8")
    rows.append(Row("the deeper hourglass is more robust (8 vs 2 stacks)",
                    f"IGSM-U-{n}, mean {metric} over the grid: hourglass-2 {fmt(h2)}, hourglass-8 {fmt(h8)}",
                    verdict([h8 > h2] if None not in (h2, h8) else [])))
    stronger, parts = [], []
    for m in (x for x in models if x.startswith("hourglass")):
        last, all_ = robust[m], res.robustness(m, "igsm-U-ALL", grid, n, all_stacks=True)
        parts.append(f"{LABELS[m]}: last stack {fmt(last)}, ALL {fmt(all_)}")
        if None not in (last, all_):
            stronger.append(all_ < last)
    rows.append(Row("ALL (loss on every stack) is stronger than last-stack",
                    f"IGSM-U-{n}, mean {metric} over the grid: " + ("; ".join(parts) or "n/a"),
                    verdict(stronger)))
    groups = {m: res.joint_groups(m, grid, n) for m in models}
    groups = {m: g for m, g in groups.items() if g}
    pooled = {g: sum(v[g] for v in groups.values() if g in v) / sum(g in v for v in groups.values())
              for g in GROUPS if any(g in v for v in groups.values())}
    ranking = ", ".join(f"{g} {v:.3f}" for g, v in sorted(pooled.items(), key=lambda x: -x[1]))
    per = lambda pick: [max(g, key=g.get) == pick if pick == "head" else min(g, key=g.get) == pick  # noqa: E731
                        for g in groups.values() if pick in g]
    note = f"per-joint rel. PCK, IGSM-U-{n}, mean over the grid, mean over {len(groups)} model(s): {ranking or 'n/a'}"
    rows.append(Row("head (nose, eyes, ears) joints are the most robust", note + "; per model: head highest in "
                    f"{sum(per('head'))}/{len(per('head'))}", verdict(per("head"))))
    rows.append(Row("hips are the most vulnerable joints", f"(as above) per model: hips lowest in "
                    f"{sum(per('hip'))}/{len(per('hip'))}", verdict(per("hip"))))
    # the UAP: fitted on >= --uap-min-people unseen people until its held-out curve flattens
    close, parts = [], []
    for m in models:
        for eps in args.uap_eps:
            key = cell_key("uap", eps, False, False)
            rec = res.record(m, "uap", key, args.uap_max_epochs) or {}
            uap = res.rel(m, "uap", key, args.uap_max_epochs)
            pi = res.rel(m, "igsm-U", cell_key("igsm", eps, False, False), n)
            curve = rec.get("uap_curve") or []
            fit = (f" (fit on {rec.get('fit_people')} people, {rec.get('epochs_run')} epochs, "
                   f"{'stopped by the rule' if rec.get('stopped_early') else 'the maximum'}; "
                   f"held-out rel. PCK {fmt(curve[-1][1]) if curve else 'n/a'})") if rec else ""
            parts.append(f"{LABELS[m]} eps {eps:g}: UAP {fmt(uap)}{fit} vs per-image IGSM-U-{n} {fmt(pi)}")
            if None not in (uap, pi):
                close.append((1 - uap) >= UAP_RATIO * (1 - pi))
    rows.append(Row(f"a UAP (fitted until its held-out curve flattens) is about as effective as "
                    f"per-image untargeted attacks (its drop >= {UAP_RATIO:g} x the per-image drop; "
                    f"{metric})", "; ".join(parts), verdict(close)))
    less, parts = [], []
    for victim in models:
        for variant in res.variants(victim, "transfer-from-"):
            for eps in args.transfer_eps:
                t = res.transfer_rel(victim, variant, eps, n)
                w = res.rel(victim, "igsm-U", cell_key("igsm", eps, False, False), n)
                parts.append(f"{variant.removeprefix('transfer-from-')} -> {victim} eps {eps:g}: "
                             f"drop {fmt(None if t is None else 1 - t)} vs white-box "
                             f"{fmt(None if w is None else 1 - w)}")
                if None not in (t, w):
                    less.append((1 - t) <= TRANSFER_RATIO * (1 - w))
    rows.append(Row(f"transfer degrades far less than white-box (study: 30-40% vs 85-90%; here: "
                    f"transfer drop <= {TRANSFER_RATIO:g} x white-box drop, IGSM-U-{n}, {metric})",
                    "; ".join(parts) or "n/a", verdict(less)))
    return rows


# -- the report ------------------------------------------------------------------------
def cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def write_table(res: Results, args: argparse.Namespace, rows: list[Row], failures: list[str],
                command: str) -> Path:
    """The findings document (markdown), every number from the folders' records."""
    from robustpose.utils.io import atomic_write_text

    lines = ["# The attack study in miniature (SynthPose)", "",
             f"Written by `{command}` from the run folders under `{args.out}` "
             "(do not edit by hand: rerun the script). Study: Jain et al., \"On the Robustness "
             "of Human Pose Estimation\" (CVPRW 2019); issue 13; docs/attacks.md.", "",
             "SynthPose validation split" + (f" (first {args.max_images} images)" if args.max_images else "")
             + ", ground-truth boxes, no flip test; relative = attacked / clean "
             f"({'PCK@0.1 of the box size' if args.metric == 'pck' else 'OKS AP'}); eps on the 0..255 scale, "
             f"grid {{{args.eps_text}}}; IGSM alpha = 2.5 eps / steps; seed {args.seed}.", "",
             "## Models", "", "| model | run name | people | clean AP | clean PCK@0.1 | attack loss (igsm-U) |",
             "|---|---|---|---|---|---|"]
    for m in MODELS:
        clean = res.folder(m, "igsm-U")[0]
        if clean is None:
            lines.append(f"| {LABELS[m]} | not run | - | - | - | - |")
            continue
        ap, pck = clean.get("metric_value"), clean.get("pck")
        conv = res.settings(m, "igsm-U")
        loss = (conv.get("loss_used") or {}).get("model", "-")
        why = (conv.get("loss_source") or {}).get("model", "")
        lines.append(f"| {LABELS[m]} | {cell(clean['model'])} | {clean.get('num_people')} | "
                     f"{'-' if ap is None else f'{100 * ap:.1f}'} | {'-' if pck is None else f'{100 * pck:.1f}'} | "
                     f"{cell(loss)}{f' ({cell(why)})' if why else ''} |")
    lines += ["", "## Findings", "", "| claim | measured | holds? |", "|---|---|---|"]
    lines += [f"| {cell(r.claim)} | {cell(r.measured)} | {r.holds} |" for r in rows]
    lines += ["", "## How the rows are measured", "",
              f"- Robustness of a model: the mean relative metric over the eps grid under IGSM-U-{args.steps} "
              "(untargeted, ascending the model's own training loss to the ground-truth targets of its "
              "codec); beside it, under the strongest attack tried: at each eps the minimum over FGSM, "
              f"IGSM-U-{args.steps} (training loss), IGSM-U-{args.long_steps} (where run), IGSM-U-{args.steps} "
              "with the bounded pck_margin loss and IGSM-ALL (hourglasses).",
              f"- Attack strength at eps {args.eps_finding:g}: lower relative metric = stronger.",
              "- Targeted (IGSM-T, target = another person's pose, seeded derangement): success = "
              "(target PCK at eps - target PCK at eps 0) / (1 - target PCK at eps 0), the share of the "
              "missing target PCK the attack gains; untargeted success = 1 - relative PCK. "
              f"Harder = lower success at the same eps; IGSM-T-{args.steps} is compared with IGSM-U-{args.steps} "
              f"(the same budget) and the paper's IGSM-T-{args.targeted_long_steps} with the same "
              f"IGSM-U-{args.steps} (a larger budget for the targeted attack).",
              "- Joint groups: per-joint relative PCK averaged over the grid; head = nose, eyes, "
              "ears (COCO has no neck joint); left and right pooled.",
              "- UAP: stochastic signed-gradient ascent (step eps/10 per batch of "
              f"{args.batch_size}) on the first {args.uap_fit_images} images (>= {args.uap_min_people} "
              f"people) of an unseen SynthPose training-distribution split (seed {UAP_FIT_SEED}); after "
              f"every epoch its relative PCK@0.1 on the next {args.uap_holdout_images} images of that split "
              f"(held out, never fitted on) is recorded; the fit stops once that curve has not improved by "
              f"more than {args.uap_min_delta:g} over {args.uap_patience} epochs, or after "
              f"{args.uap_max_epochs} epochs (rule fixed before any result); evaluated on the validation "
              f"images; per-image = IGSM-U-{args.steps} at the same eps. Curves: `uap_curves.png`.",
              f"- Transfer: IGSM-U-{args.steps} crafted on the surrogate against its own clean prediction, "
              "evaluated on the victim; white-box = the victim's own IGSM-U at the same eps. The "
              "narrow hourglasses are victims only (a `NAME=CHECKPOINT` surrogate is built "
              "from the registry preset, which has no narrow width).",
              "- Verdicts: yes / no / partly (k of n models or pairs); n/a = not measured.", "",
              f"CPU time of all cells: {res.elapsed_s() / 60:.1f} min (sum of the records' `elapsed_s`)."]
    if failures:
        lines += ["", "Jobs that failed (their rows are n/a or partial):", ""] + [f"- {cell(f)}" for f in failures]
    path = Path(args.table)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def write_uap_curves(res: Results, path: Path) -> Path | None:
    """Every model's held-out UAP curve on one plot (None when no UAP cell has one)."""
    curves = {}
    for m in MODELS:
        for (key, _), rec in sorted(res.folder(m, "uap")[1].items()):
            if rec.get("uap_curve"):
                curves[f"{LABELS[m]} eps {key.split('@')[-1]}"] = rec["uap_curve"]
    if not curves:
        return None
    from robustpose.reports.attack_plots import plot_uap_curves

    return plot_uap_curves(curves, path)
