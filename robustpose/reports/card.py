"""The robustness card (schema v1): one model's clean, corruption, adversarial and
stability figures in one JSON, one markdown page and one figure (docs/card.md).

:func:`card_from_faces` assembles the card from the three runs' own cards as they are
written today: the benchmark's ``summary.json`` (what ``run_benchmark`` returns), the
attack run's ``attack.json`` and the stability run's ``stability.json``; any face may be
missing (the budget says what it skipped). :func:`validate_card` checks a card (one-line
``ValueError`` naming the key), :func:`write_card` writes ``card.json``, ``card.md`` and
``card.png`` (the four faces), :func:`read_card` reads one back and refuses another
schema version with a line naming it. The optional ``box`` face (the box perturbations:
the person box a top-down crop follows moves, the pixels stay) comes from the benchmark
card's ``box`` block and box cells; it is null when not run, and a card.json written
before it existed (no ``box`` key) still reads.

Units: every metric value is in percent (AP x 100, PCKh, PCK@0.1 x 100); every relative
figure (rPC, adversarial relative AP / PCK) is a percentage of the clean value; eps is on
the 0..255 scale; R is in heatmap px^2, D_n in heatmap px^2 (Eq. 11), the RUC area is a
fraction in [0, 1].
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from robustpose.reports.card_figure import fmt as _f
from robustpose.reports.card_figure import plot_card
from robustpose.utils.io import atomic_write_text

SCHEMA = "robustpose.card"
VERSION = 1
CARD_FILE, PAGE_FILE, FIGURE_FILE = "card.json", "card.md", "card.png"
BUDGETS = ("quick", "paper", "custom")
MODEL_KINDS = ("bundled", "registry", "config", "onnx", "callable")
#: attacks that read only the model's outputs (ONNX-only models); the others use gradients
QUERY_ATTACKS = ("spsa",)
FACES = ("benchmark", "attack", "stability")
META_KEYS = ("budget", "skipped", "runs", "model_kind", "name", "weights_sha256")

_NUM, _OPT_NUM = (int, float), (int, float, type(None))
_OPT_STR, _OPT_DICT = (str, type(None)), (dict, type(None))
#: key -> accepted types; a face's keys are checked only when the face is present
_FIELDS: dict[str, tuple] = {
    "schema": (str,), "version": (int,), "model": (dict,), "model.name": (str,),
    "model.weights_sha256": _OPT_STR, "model.kind": (str,), "dataset": (dict,),
    "dataset.name": (str,), "dataset.metric": (str,), "budget": (dict,),
    "budget.name": (str,), "budget.skipped": (list,), "clean": (dict,),
    "clean.value": _OPT_NUM, "clean.pck": _OPT_NUM, "corruption": _OPT_DICT,
    "adversarial": _OPT_DICT, "stability": _OPT_DICT, "runs": (dict,),
    "corruption.mPC": _OPT_NUM, "corruption.rPC": _OPT_NUM,
    "corruption.per_family": (dict,), "corruption.per_corruption": (dict,),
    "corruption.per_severity": (dict,), "corruption.corruptions": (list,),
    "corruption.severities": (list,), "corruption.complete": (bool,),
    "adversarial.attack": (str,), "adversarial.access": (str,),
    "adversarial.per_eps": (list,),
    "stability.perturbations": (list,), "stability.held_out": (bool,),
    "stability.R_per_keypoint": _OPT_NUM, "stability.RUC_area": _OPT_NUM,
    "stability.D_n": _OPT_NUM, "stability.complete": (bool,),
    "box": _OPT_DICT, "box.perturbations": (list,), "box.severities": (list,),
    "box.mean": _OPT_NUM, "box.relative": _OPT_NUM, "box.per_perturbation": (dict,),
    "box.complete": (bool,),
}
#: faces whose keys are checked only when present; ``box`` may be absent (older cards)
_FACE_KEYS = ("corruption", "adversarial", "stability", "box")
_OPTIONAL = ("box",)
_CHOICES = {"model.kind": MODEL_KINDS, "dataset.metric": ("AP", "PCKh"),
            "budget.name": BUDGETS, "adversarial.access": ("gradient", "query")}
_EPS_FIELDS = {"eps": _NUM, "steps": (int,), "relative_metric": _OPT_NUM,
               "relative_pck": _OPT_NUM, "metric": _OPT_NUM, "pck": _OPT_NUM}


def _get(card: Mapping, dotted: str) -> tuple[bool, Any]:
    node: Any = card
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def validate_card(card: Any, where: str = "card") -> dict:
    """Check ``card`` against schema v1; returns it. Raises a one-line ``ValueError``
    naming ``where`` and the first bad key (``where``: the file, in messages)."""
    if not isinstance(card, Mapping):
        raise ValueError(f"{where}: a card is a JSON object, not {type(card).__name__}")
    if card.get("schema") != SCHEMA:
        raise ValueError(f"{where}: key 'schema' must be {SCHEMA!r}, not {card.get('schema')!r}")
    if card.get("version") != VERSION:
        raise ValueError(f"{where}: card schema version {card.get('version')!r}; this "
                         f"robustpose reads version {VERSION}")
    for key, types in _FIELDS.items():
        face = key.split(".")[0]
        if "." in key and face in _FACE_KEYS and card.get(face) is None:
            continue
        present, value = _get(card, key)
        if not present and key in _OPTIONAL:
            continue
        if not present:
            raise ValueError(f"{where}: missing key {key!r}")
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise ValueError(f"{where}: key {key!r} must be "
                             f"{' or '.join(t.__name__ for t in types)}, "
                             f"not {type(value).__name__}")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ValueError(f"{where}: key {key!r} is {value!r}; choose from "
                             f"{', '.join(_CHOICES[key])}")
    for i, row in enumerate((card.get("adversarial") or {}).get("per_eps", [])):
        for field, types in _EPS_FIELDS.items():
            if not isinstance(row, Mapping) or not isinstance(row.get(field), types):
                raise ValueError(f"{where}: key 'adversarial.per_eps[{i}].{field}' missing "
                                 f"or not {' or '.join(t.__name__ for t in types)}")
    return dict(card)


def _pct(value: Any, scale: float = 100.0) -> float | None:
    return None if value is None else round(scale * float(value), 4)


def _model_kind(benchmark: Mapping | None, attack: Mapping | None) -> str:
    source = ((benchmark or {}).get("model_info") or {}).get("source")
    if source in MODEL_KINDS:
        return source
    if source is not None:  # a PoseModel, an adapter or a function given through the API
        return "callable"
    if attack is not None and attack.get("attack") in QUERY_ATTACKS:
        return "onnx"
    return "callable"


def _box_names(bench: Mapping) -> list[str]:
    """The benchmark's box perturbations (its ``box`` block, else by name)."""
    from robustpose.corruptions.selection import BOX_PERTURBATIONS

    named = (bench.get("box") or {}).get("perturbations")
    return list(named) if named else [n for n in bench.get("corruptions") or []
                                      if n in BOX_PERTURBATIONS]


def _corruption_face(bench: Mapping) -> dict:
    """The pixel corruptions of the benchmark card (box cells go to the box face, as
    summary.py keeps them out of mPC / rPC), so mCE and Fig. 4 read the 15 alone."""
    boxes = set(_box_names(bench))
    names = [n for n in bench.get("corruptions") or [] if n not in boxes]

    def pixel(key: str) -> dict:
        return {k: v for k, v in (bench.get(key) or {}).items() if k not in boxes}

    return {"metric": bench.get("metric", "AP"), "clean": bench.get("clean"),
            "mPC": bench.get("mPC"), "rPC": bench.get("rPC"),
            "per_family": pixel("per_family"), "per_corruption": pixel("per_corruption"),
            "per_severity": dict(bench.get("per_severity") or {}),
            "per_cell": pixel("per_cell"),
            "worst": bench.get("worst"), "corruptions": names,
            "severities": [int(s) for s in bench.get("severities") or []],
            "complete": not (bench.get("cells") or {}).get("missing")
            and not bench.get("incomplete"),
            "note": bench.get("mPC_note")}


def _box_face(bench: Mapping) -> dict | None:
    """The box perturbations of the benchmark card (summary.json's ``box`` block: mean and
    relative in percent, magnitudes per severity as fractions of the box), or None."""
    names = _box_names(bench)
    if not names:
        return None
    block, cells = bench.get("box") or {}, bench.get("per_cell") or {}
    missing = {c.split("/")[0] for c in (bench.get("cells") or {}).get("missing") or []}
    return {"perturbations": names,
            "severities": [int(s) for s in bench.get("severities") or []],
            "mean": block.get("mean"), "relative": block.get("relative"),
            "per_perturbation": {n: (bench.get("per_corruption") or {}).get(n) for n in names},
            "per_cell": {n: dict(cells.get(n) or {}) for n in names},
            "magnitudes": dict(block.get("magnitudes") or {}),
            "complete": not missing & set(names) and not bench.get("incomplete")}


def _adversarial_face(attack: Mapping) -> dict:
    """The untargeted, direct (no surrogate) cells, one per eps (the most steps)."""
    name = str(attack.get("attack") or "?")
    scale = 100.0 if attack.get("metric", "AP") == "AP" else 1.0  # PCKh is stored in percent
    best: dict[float, Mapping] = {}
    for row in attack.get("cells") or []:
        if row.get("targeted") or row.get("surrogate") or row.get("eps") is None:
            continue
        eps = float(row["eps"])
        if eps not in best or int(row.get("steps") or 0) > int(best[eps].get("steps") or 0):
            best[eps] = row
    rows = [{"eps": eps, "steps": int(r.get("steps") or 1),
             "relative_metric": _pct(r.get("relative_metric")),
             "relative_pck": _pct(r.get("relative_pck")),
             "metric": _pct(r.get("metric_value"), scale), "pck": _pct(r.get("pck")),
             "queries_per_crop": r.get("queries_per_crop")}
            for eps, r in sorted(best.items())]
    steps = sorted({r["steps"] for r in rows})
    label = name.upper() + ("" if name == "fgsm" else "-" + "/".join(map(str, steps)))
    return {"attack": label, "attack_name": name,
            "access": "query" if name in QUERY_ATTACKS else "gradient",
            "targeted": False, "per_eps": rows,
            "loss": ((attack.get("settings") or {}).get("loss_used") or {}).get("model")}


def _stability_face(stab: Mapping) -> dict:
    from robustpose.corruptions.selection import GROUPS

    overall = stab.get("overall") or {}
    r = overall.get("R_heatmap") or {}
    names = list(stab.get("perturbations") or [])
    return {"perturbations": names, "severities": [int(s) for s in stab.get("severities") or []],
            "held_out": bool(names) and set(names) <= set(GROUPS["heldout5"]),
            "R_per_keypoint": r.get("mean"), "R_sum": r.get("sum"),
            "RUC_area": overall.get("RUC_area"), "RUC": overall.get("RUC"),
            "RUC_thresholds_heatmap_px": stab.get("ruc_thresholds_heatmap_px"),
            "D_n": overall.get("D_n"), "D_12": overall.get("D_12"),
            "D_n_clean": (stab.get("clean") or {}).get("D_n"),
            "complete": not stab.get("incomplete")}


def card_from_faces(benchmark_card: Mapping | None, attack_card: Mapping | None,
                    stability_card: Mapping | None, meta: Mapping | None = None) -> dict:
    """Assemble a schema-v1 card from the three runs' cards (each may be None).

    ``meta``: ``budget`` ('quick' | 'paper' | 'custom', default 'custom'), ``skipped``
    (what the budget left out, one line each), ``runs`` (face -> run folder; default the
    benchmark card's ``run_dir``), and overrides ``name``, ``model_kind``,
    ``weights_sha256``. Refuses faces of different models, weights or data sets."""
    meta = dict(meta or {})
    unknown = sorted(set(meta) - set(META_KEYS))
    if unknown:
        raise ValueError(f"card meta: unknown key {unknown[0]!r}; choose from {', '.join(META_KEYS)}")
    faces = dict(zip(FACES, (benchmark_card, attack_card, stability_card)))
    given = {k: v for k, v in faces.items() if v is not None}
    if not given:
        raise ValueError("card: no face given (benchmark, attack or stability card)")
    hashes = {k: v.get("weights_sha256") or (v.get("conventions") or v.get("settings") or {})
              .get("weights_sha256") for k, v in given.items()}
    for key, values in (("model", {k: v.get("model") for k, v in given.items()}),
                        ("dataset", {k: v.get("dataset") for k, v in given.items()}),
                        ("weights_sha256", {k: h for k, h in hashes.items() if h})):
        if len(set(values.values())) > 1:
            (a, va), (b, vb) = [(k, v) for k, v in values.items()][:2]
            raise ValueError(f"card: the {a} face has {key} {va!r} but the {b} face {vb!r}")
    first = next(iter(given.values()))
    bench, attack = benchmark_card, attack_card
    metric = (bench or attack or {}).get("metric") or "AP"
    clean = {"metric": metric, "value": None, "pck": None}
    if bench is not None:
        clean["value"] = bench.get("clean")
    if attack is not None and attack.get("clean"):
        scale = 100.0 if metric == "AP" else 1.0
        if clean["value"] is None:
            clean["value"] = _pct(attack["clean"].get("metric_value"), scale)
        clean["pck"] = _pct(attack["clean"].get("pck"))
    runs = {face: None for face in FACES}
    if bench is not None and bench.get("run_dir"):
        runs["benchmark"] = str(bench["run_dir"])
    runs.update({k: None if v is None else str(v) for k, v in (meta.get("runs") or {}).items()})
    people = (bench or {}).get("num_people") or (attack or {}).get("num_people")
    card = {
        "schema": SCHEMA, "version": VERSION,
        "model": {"name": str(meta.get("name") or first.get("model")),
                  "weights_sha256": meta.get("weights_sha256")
                  or next((h for h in hashes.values() if h), None),
                  "kind": meta.get("model_kind") or _model_kind(bench, attack)},
        "dataset": {"name": str(first.get("dataset")), "metric": metric, "num_people": people},
        "budget": {"name": meta.get("budget", "custom"),
                   "skipped": [str(s) for s in meta.get("skipped") or []]},
        "clean": clean,
        "corruption": None if bench is None else _corruption_face(bench),
        "adversarial": None if attack is None else _adversarial_face(attack),
        "stability": None if stability_card is None else _stability_face(stability_card),
        "box": None if bench is None else _box_face(bench),
        "runs": runs,
    }
    return validate_card(card)


def read_card(path: str | Path) -> dict:
    """A card from ``card.json`` or a folder holding one, validated."""
    path = Path(path)
    file = path / CARD_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no robustness card here")
    try:
        card = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{file}: not JSON ({exc.msg}, line {exc.lineno})") from None
    return validate_card(card, str(file))


def format_card(card: Mapping) -> str:
    """The card as a markdown page: identity, budget, one section per face."""
    m, d, b = card["model"], card["dataset"], card["budget"]
    metric = d["metric"]
    lines = [f"# Robustness card: {m['name']}", "",
             f"- model: `{m['name']}` ({m['kind']}; weights sha256 {m['weights_sha256'] or '-'})",
             f"- dataset: `{d['name']}` ({d.get('num_people') or '?'} people), metric {metric}",
             f"- budget: {b['name']}" + (f"; skipped: {'; '.join(b['skipped'])}" if b['skipped'] else ""),
             f"- schema {card['schema']} v{card['version']}; values in percent (relative "
             "figures: percent of clean)", "",
             "| face | headline |", "|---|---|",
             f"| clean | {metric}* {_f(card['clean']['value'])}, PCK@0.1 {_f(card['clean']['pck'])} |"]
    c, a, s = card.get("corruption"), card.get("adversarial"), card.get("stability")
    lines.append("| corruption | " + ("not measured" if c is None else
                 f"mPC {_f(c['mPC'])}, rPC {_f(c['rPC'])} ({len(c['corruptions'])} corruptions"
                 f" x severities {c['severities']})") + " |")
    lines.append("| adversarial | " + ("not measured" if a is None else
                 f"{a['attack']} ({a['access']}): " + ", ".join(
                     f"eps {r['eps']:g}: rel. {metric} {_f(r['relative_metric'])}, rel. PCK "
                     f"{_f(r['relative_pck'])}" for r in a["per_eps"])) + " |")
    lines.append("| stability | " + ("not measured" if s is None else
                 f"R/kp {_f(s['R_per_keypoint'], '.3f')} heatmap px^2, RUC area "
                 f"{_f(s['RUC_area'], '.3f')}, D_n {_f(s['D_n'])} "
                 f"({'held-out' if s['held_out'] else 'given'} perturbations: "
                 f"{', '.join(s['perturbations'])})") + " |")
    x = card.get("box")
    lines.append("| box | " + ("not measured" if x is None else
                 f"mean {_f(x['mean'])}, relative {_f(x['relative'])} % of clean "
                 f"({len(x['perturbations'])} box perturbations x severities "
                 f"{x['severities']}; not in mPC)") + " |")
    if c is not None:
        lines += ["", "## Corruption", "", f"clean {metric}* {_f(c['clean'])}, mPC "
                  f"{_f(c['mPC'])}, rPC {_f(c['rPC'])}" + (f" ({c['note']})" if c.get("note") else "")
                  + ("" if c["complete"] else "; INCOMPLETE run"), "",
                  "| corruption | mean over severities |", "|---|---:|",
                  *(f"| {k} | {_f(v)} |" for k, v in c["per_corruption"].items()),
                  *(f"| family {k} | {_f(v)} |" for k, v in c["per_family"].items())]
    if a is not None:
        lines += ["", f"## Adversarial: {a['attack']}", "",
                  f"| eps (0..255) | steps | {metric} | rel. {metric} | PCK@0.1 | rel. PCK | queries/crop |",
                  "|---:|---:|---:|---:|---:|---:|---:|",
                  *(f"| {r['eps']:g} | {r['steps']} | {_f(r['metric'])} | {_f(r['relative_metric'])} | "
                    f"{_f(r['pck'])} | {_f(r['relative_pck'])} | {r.get('queries_per_crop') or '-'} |"
                    for r in a["per_eps"])]
    if s is not None:
        lines += ["", "## Stability", "",
                  f"pooled over {', '.join(s['perturbations'])} at severities {s['severities']}: "
                  f"R per keypoint {_f(s['R_per_keypoint'], '.3f')} heatmap px^2 (sum "
                  f"{_f(s['R_sum'], '.0f')}), RUC area {_f(s['RUC_area'], '.3f')}, D_n "
                  f"{_f(s['D_n'])} (clean {_f(s['D_n_clean'])})"
                  + ("" if s["complete"] else "; INCOMPLETE run")]
    if x is not None:
        lines += ["", "## Box perturbations (the person box moves, the pixels stay)", "",
                  f"mean {_f(x['mean'])}, relative {_f(x['relative'])} % of clean "
                  f"{metric}*" + ("" if x["complete"] else "; INCOMPLETE run"), "",
                  f"| perturbation | magnitude per severity (fraction of the box) | "
                  f"{metric}, mean over severities |", "|---|---|---:|",
                  *(f"| {n} | {', '.join(f'{m:g}' for m in x.get('magnitudes', {}).get(n, []))}"
                    f" | {_f(v)} |" for n, v in x["per_perturbation"].items())]
    runs = [f"- {k}: `{v}`" for k, v in card["runs"].items() if v]
    if runs:
        lines += ["", "## Run folders", "", *runs]
    return "\n".join(lines) + "\n"


def write_card(card: Mapping, folder: str | Path, plots: bool = True) -> dict[str, Path]:
    """``card.json``, ``card.md`` and (``plots``) ``card.png`` in ``folder``; their paths."""
    card = validate_card(card)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / CARD_FILE, "markdown": folder / PAGE_FILE}
    atomic_write_text(paths["json"], json.dumps(card, indent=2) + "\n")
    atomic_write_text(paths["markdown"], format_card(card))
    if plots:
        paths["figure"] = plot_card(card, folder / FIGURE_FILE)
    return paths
