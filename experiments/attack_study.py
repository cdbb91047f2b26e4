"""The attack study in miniature (issue 13; Jain et al., CVPRW 2019): SynthPose, four models.

Runs the study's cells through ``robustpose attack``'s machinery
(:func:`robustpose.benchmarking.attack_run.run_attack`) on the SynthPose validation split
(ground-truth boxes, no flip test) and writes the findings table "claim | measured |
holds?" (default ``docs/attacks_miniature.md``). Models: the bundled heatmap model, the
direct-regression counterpart and the 2- and 8-stack hourglasses trained with
``configs/attacks/*.yaml`` (a ``best.pt`` with the trainer's ``config.yaml`` beside it).

    OMP_NUM_THREADS=1 .venv/bin/python experiments/attack_study.py            # the full study
    .venv/bin/python experiments/attack_study.py --quick --out /tmp/study     # smoke run
    .venv/bin/python experiments/attack_study.py --table-only                 # re-read folders

Layout: ``<out>/<model>/<variant>/`` is one run folder per model and attack variant
(``run.json`` fixes attack kind, targeted and all-stacks, so each variant has its own);
each is resumable per cell: a rerun computes only the missing cells. Every number in the
table is computed from those folders' records (``results.jsonl``).

Measurements (all relative = attacked / clean, default metric PCK@0.1 of the box size,
the study's relative PCKh; ``--metric ap`` uses OKS AP). "Robustness" of a model is the
mean relative metric over the eps grid under IGSM-U-N (N = ``--steps``), each model
ascending its own training loss (``robustpose attack``'s default), and, beside it, under
the strongest attack tried per eps (the minimum over FGSM, IGSM-U with the training loss
and with ``pck_margin``, IGSM-ALL). Verdicts: ``yes`` / ``no`` / ``partly (k/n)`` over the
models (or model pairs) a row compares.

The UAP is fitted on the first ``--uap-fit-images`` images (at least ``--uap-min-people``
people) of a SynthPose training-distribution split no model saw (seed 101), its held-out
curve read on the next ``--uap-holdout-images`` images of that split after every epoch;
the fit stops when that curve has not improved by more than ``--uap-min-delta`` over
``--uap-patience`` epochs, or after ``--uap-max-epochs`` (the rule fixed before any
result).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]  # a checkout, not installed

from attack_findings import (LABELS, MODELS, UAP_FIT_SEED, Results, findings,  # noqa: E402
                             write_table, write_uap_curves)
from robustpose.benchmarking.attack_run import run_attack  # noqa: E402

GRID = "0.25,0.5,1,2,4,8,16,32"
DEFAULT_CKPT = {"heatmap": "bundled", "regression": "runs/attack_deeppose_shufflenetv2/best.pt",
                "hourglass2": "runs/attack_hourglass2/best.pt", "hourglass8": "runs/attack_hourglass8/best.pt"}


def numbers(text: str) -> list[float]:
    return [float(v) for v in str(text).split(",") if v.strip()]


# -- running ---------------------------------------------------------------------------
def model_source(spec: str) -> dict | None:
    """'bundled' -> {} (run_attack's default model); a best.pt -> its config.yaml + the
    file; None when the checkpoint is missing (the model's rows become n/a)."""
    if spec == "bundled":
        return {}
    ckpt = Path(spec)
    config = ckpt.parent / "config.yaml"
    if not ckpt.is_file() or not config.is_file():
        return None
    return {"config": str(config), "checkpoint": str(ckpt)}


def surrogate_name(model: str, source: dict) -> str:
    """The ``--surrogate`` text of a model: 'bundled' or ``NAME=CHECKPOINT``."""
    if not source:
        return "bundled"
    from robustpose.config import load_config

    return f"{load_config(source['config'])['model']['name']}={source['checkpoint']}"


def jobs(args: argparse.Namespace, sources: dict[str, dict]) -> list[tuple[str, str, dict]]:
    """(model, variant, run_attack keyword arguments) of every folder to run, in order."""
    grid, sweep = args.eps, args.sweep
    out = []
    for m in sources:
        out.append((m, "fgsm-U", dict(attack="fgsm", eps=sweep)))
        out.append((m, "igsm-U", dict(attack="igsm", eps=sweep, steps=[args.steps])))
        out.append((m, "igsm-U", dict(attack="igsm", eps=args.long_eps, steps=[args.long_steps])))
        # the bounded PCK-margin loss beside the model's own training loss (igsm-U)
        out.append((m, "igsm-U-pck", dict(attack="igsm", eps=sweep, steps=[args.steps],
                                          loss="pck_margin")))
        # eps 0 gives the target PCK of the clean prediction (partner poses resemble GT);
        # IGSM-T-N and the paper's IGSM-T-20 (--targeted-long-steps)
        out.append((m, "igsm-T", dict(attack="igsm", eps=sorted({0.0, *args.targeted_eps}),
                                      steps=sorted({args.steps, args.targeted_long_steps}),
                                      targeted=True)))
        if m.startswith("hourglass"):
            out.append((m, "igsm-U-ALL", dict(attack="igsm", eps=grid, steps=[args.steps],
                                              all_stacks=True)))
        out.append((m, "uap", dict(attack="uap", eps=args.uap_eps, steps=[args.uap_max_epochs],
                                   uap_holdout_images=args.uap_holdout_images,
                                   uap_patience=args.uap_patience,
                                   uap_min_delta=args.uap_min_delta)))
    # transfer: the heatmap model -> every other model, the regression model -> the heatmap one
    # (a narrow hourglass cannot be a NAME=CHECKPOINT surrogate: it needs its MODEL.EXTRA)
    pairs = [("heatmap", v) for v in ("regression", "hourglass2", "hourglass8")] + \
        [("regression", "heatmap")]
    for sur, victim in pairs:
        if sur in sources and victim in sources:
            out.append((victim, f"transfer-from-{sur}",
                        dict(attack="transfer", eps=args.transfer_eps, steps=[args.steps],
                             surrogates=[surrogate_name(sur, sources[sur])])))
    return out


def fit_annotations(n: int, min_people: int = 0, fit_images: int | None = None) -> str:
    """A SynthPose split of ``n`` unseen training-distribution images for UAP fitting (the
    first ``fit_images``) and its held-out curve (the rest); one-line error when the
    fitting images hold fewer than ``min_people`` labelled people."""
    import json

    from robustpose.data.synth import SynthPose, materialize

    folder = materialize(SynthPose(num_images=n, seed=UAP_FIT_SEED, split="train"), progress=False)
    path = folder / "annotations.json"
    fit_images = n if fit_images is None else fit_images
    anns = json.loads(path.read_text())["annotations"]
    people = sum(1 for a in anns if a["image_id"] <= fit_images and a.get("num_keypoints", 0) > 0)
    if people < min_people:
        raise ValueError(f"{path}: the first {fit_images} images hold {people} people, fewer "
                         f"than --uap-min-people {min_people}; raise --uap-fit-images")
    return str(path)


def run_all(args: argparse.Namespace, sources: dict[str, dict]) -> list[str]:
    """Run (or resume) every job (``--variants``: only those folders); returns the one-line
    failures (the study goes on)."""
    fit = fit_annotations(args.uap_fit_images + args.uap_holdout_images, args.uap_min_people,
                          args.uap_fit_images)
    failures = []
    for model, variant, kw in jobs(args, sources):
        if args.variants and variant not in args.variants:
            continue
        try:
            run_attack(**kw, **sources[model], dataset="synth", max_images=args.max_images,
                       uap_fit_images=args.uap_fit_images, uap_fit_annotations=fit,
                       batch_size=args.batch_size, device=args.device, seed=args.seed,
                       out=args.out / model / variant, plots=not args.no_plots,
                       progress=not args.quiet)
        except (ValueError, FileNotFoundError) as exc:
            failures.append(f"{model}/{variant}: {exc}")
            print(f"attack_study: {failures[-1]}", file=sys.stderr)
    return failures


QUICK = {"out": Path("runs/attack_study_quick"), "max_images": 2, "eps": "2,8", "steps": 2, "long_steps": 4,
         "targeted_long_steps": 3, "uap_max_epochs": 3, "uap_patience": 1, "uap_fit_images": 2,
         "uap_holdout_images": 1, "uap_min_people": 0, "no_plots": True}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for m in MODELS:
        p.add_argument(f"--{m}", default=DEFAULT_CKPT[m],
                       help=f"{LABELS[m]}: 'bundled' or a best.pt with config.yaml beside it")
    p.add_argument("--out", type=Path, default=Path("runs/attack_study"))
    p.add_argument("--table", help="findings file (default docs/attacks_miniature.md; --quick: OUT/findings.md)")
    p.add_argument("--eps", default=GRID, help="the eps grid (0..255 scale)")
    p.add_argument("--eps-finding", type=float, default=8.0, help="eps of the single-eps findings")
    p.add_argument("--steps", type=int, default=10, help="IGSM iterations of the sweeps")
    p.add_argument("--long-steps", type=int, default=100, help="the long IGSM budget")
    p.add_argument("--long-eps", help="eps list of the long IGSM (default: --eps-finding)")
    p.add_argument("--targeted-eps", help="eps list of IGSM-T (default: --eps-finding; eps 0 is added)")
    p.add_argument("--uap-eps", help="eps list of the UAP (default: --eps-finding)")
    p.add_argument("--targeted-long-steps", type=int, default=20,
                   help="IGSM-T budget beside --steps (the paper's targeted figure: IGSM-T-20)")
    p.add_argument("--uap-fit-images", type=int, default=256,
                   help="SynthPose seed-101 images to fit the UAP on (256: 557 people)")
    p.add_argument("--uap-min-people", type=int, default=500,
                   help="refuse a UAP fit on fewer people (the fit over-fits 64 people)")
    p.add_argument("--uap-holdout-images", type=int, default=64,
                   help="the next images of that split: the held-out curve per epoch")
    p.add_argument("--uap-max-epochs", type=int, default=100)
    p.add_argument("--uap-patience", type=int, default=5,
                   help="stop when the held-out curve has not improved by > --uap-min-delta "
                   "over this many epochs")
    p.add_argument("--uap-min-delta", type=float, default=0.005)
    p.add_argument("--transfer-eps", help="eps list of transfer (default: --eps-finding)")
    p.add_argument("--max-images", type=int, help="only the first N validation images")
    p.add_argument("--metric", choices=("pck", "ap"), default="pck")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()) + " (unless given)")
    p.add_argument("--variants", help="run only these run folders, e.g. igsm-U,igsm-T (two "
                   "processes with disjoint lists share the cores; the table reads every folder)")
    p.add_argument("--table-only", action="store_true", help="run nothing; rewrite the table")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, value)
    if args.uap_holdout_images < 1 or args.uap_patience < 1 or args.uap_max_epochs < 1:
        p.error("--uap-holdout-images, --uap-patience and --uap-max-epochs must be >= 1")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else []
    args.eps_text = ",".join(f"{v:g}" for v in numbers(args.eps))
    args.eps = numbers(args.eps)
    e = args.eps_finding
    for key in ("long_eps", "targeted_eps", "uap_eps", "transfer_eps"):
        setattr(args, key, numbers(getattr(args, key)) if getattr(args, key) else [e])
    # the single-eps findings compare with IGSM-U / FGSM at those eps: sweep them too
    args.sweep = sorted(set(args.eps) | {e} | set(args.uap_eps) | set(args.transfer_eps))
    if args.table is None:
        args.table = args.out / "findings.md" if args.quick else REPO / "docs" / "attacks_miniature.md"
    known = list(dict.fromkeys(v for _, v, _ in jobs(args, {m: {} for m in MODELS})))
    unknown = [v for v in args.variants if v not in known]
    if unknown:
        p.error(f"--variants: unknown {', '.join(unknown)} (the study's: {', '.join(known)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sources = {}
    for m in MODELS:
        src = model_source(getattr(args, m))
        if src is None:
            print(f"attack_study: {m}: {getattr(args, m)} (with config.yaml beside it) not found; "
                  "its rows are n/a", file=sys.stderr)
        else:
            sources[m] = src
    failures = [] if args.table_only else run_all(args, sources)
    res = Results(args.out, args.metric)
    rows = findings(res, args, list(MODELS))
    command = "experiments/attack_study.py " + " ".join(argv if argv is not None else sys.argv[1:])
    path = write_table(res, args, rows, failures, command.strip())
    if not args.no_plots:
        write_uap_curves(res, args.out / "uap_curves.png")
    for r in rows:
        print(f"{r.holds:<12} {r.claim}")
    print(f"findings: {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
