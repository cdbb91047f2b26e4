"""Several models' cards and their comparison (``robustpose card A B ...``).

A model is named on the command line as one word (:func:`parse_model`): ``bundled``;
a registry name with its weights ``NAME[=CHECKPOINT]``; a training config
``CONFIG.yaml[=CHECKPOINT]`` (default its ``best.pt``); an ONNX / TFLite file
``MODEL.onnx[=SPEC]`` (SPEC a preset name or a spec file; default ``--onnx-spec``); or an
existing card folder (``card.json``) or one-face run folder, read as it is.

:func:`compare_models` writes, under ``OUT/compare/``: the table (``compare.md`` /
``.csv`` / ``.png``, one row per model, mCE and relative mCE against the first model),
and the AdvMix paper's figures from the benchmark faces: Fig. 4 (``fig4_gain_<B>.png``:
each model minus the first), Fig. 5 (``fig5_ap_rpc.png``) and Fig. 6
(``fig6_skeletons.png``: ground truth, the first model and the second on one corrupted
image) when both were run here (their adapters are loaded).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from robustpose.benchmarking.run_layer import ModelChoice

MODEL_SUFFIXES = (".onnx", ".tflite")
CONFIG_SUFFIXES = (".yaml", ".yml")


def parse_model(word: str, onnx_spec: Any = None) -> ModelChoice | Path:
    """One command-line model -> a :class:`ModelChoice`, or the ``Path`` of an existing
    card / run folder; one-line ``ValueError`` for what it cannot be."""
    text = str(word).strip()
    if not text:
        raise ValueError("card: an empty model name")
    head, _, tail = text.partition("=")
    if Path(text).is_dir():
        path = Path(text)
        if not any((path / f).is_file() for f in ("card.json", "summary.json", "attack.json",
                                                  "stability.json")):
            raise ValueError(f"{path}: a folder without card.json, summary.json, attack.json "
                             "or stability.json (not a card nor a finished run folder)")
        return path
    if head == "bundled" and not tail:
        return ModelChoice(name=None)
    if head.lower().endswith(MODEL_SUFFIXES):
        if not Path(head).is_file():
            raise FileNotFoundError(f"{head}: no such model file")
        spec = tail or onnx_spec
        if not spec:
            raise ValueError(f"{head}: an ONNX / TFLite model needs its spec: {head}=SPEC or "
                             "--onnx-spec (a preset: movenet, blazepose, rtmpose, or a file)")
        return ModelChoice(onnx=head, onnx_spec=spec)
    if head.lower().endswith(CONFIG_SUFFIXES):
        if not Path(head).is_file():
            raise FileNotFoundError(f"{head}: no such config file")
        return ModelChoice(config=head, checkpoint=tail or None)
    from robustpose.models import list_models

    if head not in list_models():
        raise ValueError(f"card: model {head!r} is not bundled, a registry name, a config "
                         "(.yaml), a model file (.onnx/.tflite) nor a card / run folder")
    return ModelChoice(model=head, checkpoint=tail or None)


def benchmark_records(card: dict) -> list[dict]:
    """The benchmark face's cell records (its run folder's stores), [] without one."""
    folder = (card.get("runs") or {}).get("benchmark")
    if not folder or not Path(folder).is_dir():
        return []
    records = []
    for store in sorted(Path(folder).glob("results*.jsonl")):
        records += [json.loads(line) for line in store.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
    return records


def mce_columns(cards: Sequence[dict]) -> list[dict[str, float | None]]:
    """Per card: ``mCE`` and ``rel. mCE`` (percent) against the first card's corruption
    cells (:func:`robustpose.evaluation.robustness.compare_to_baseline`), over the
    corruptions and severities the card measured; None where a card lacks the face or the
    baseline lacks one of its cells."""
    from robustpose.evaluation.robustness import compare_to_baseline

    base = benchmark_records(cards[0]) if cards else []
    out = []
    for card in cards:
        face, records = card.get("corruption"), benchmark_records(card)
        row: dict[str, float | None] = {"mCE": None, "rel. mCE": None}
        if face and records and base:
            metric = card["dataset"]["metric"]
            try:
                got = compare_to_baseline(records, base, metric=metric,
                                          corruptions=face["corruptions"],
                                          severities=face["severities"],
                                          max_score=1.0 if metric == "AP" else 100.0)
                row = {"mCE": 100.0 * got["mCE"], "rel. mCE": 100.0 * got["relative_mCE"]}
            except (ValueError, ZeroDivisionError):
                pass  # a cell the baseline lacks: no figure rather than a wrong one
        out.append(row)
    return out


def compare_models(cards: Sequence[dict], out: str | Path, *, adapters: dict | None = None,
                   data: Any = None, sort_by: str | None = None, plots: bool = True) -> dict:
    """The comparison of ``cards`` (the first is the mCE / Fig. 4 baseline) in ``out``;
    returns {'table': CardTable, 'files': {name: path}}. ``adapters`` {model name:
    adapter} and ``data`` (a DataChoice) give Fig. 6."""
    from robustpose.reports.advmix_figures import plot_ap_rpc, plot_gain
    from robustpose.reports.card_compare import add_columns, compare_cards, write_comparison

    out = Path(out)
    table = add_columns(compare_cards(list(cards)), mce_columns(cards))
    if sort_by:
        table = table.sort(sort_by)
    files = dict(write_comparison(table, out, plots=plots))
    with_bench = [c for c in cards if c.get("corruption")]
    if plots and len(with_bench) >= 2:
        files["fig5"] = plot_ap_rpc(with_bench, out / "fig5_ap_rpc.png",
                                    labels=[c["model"]["name"] for c in with_bench])
        for i, other in enumerate(with_bench[1:], 2):
            stem = _safe(other["model"]["name"]) or str(i)
            files[f"fig4_{stem}"] = plot_gain(with_bench[0], other, out / f"fig4_gain_{stem}.png")
        files.update(_fig6(with_bench, adapters or {}, data, out))
    return {"table": table, "files": files}


def _safe(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _fig6(cards: Sequence[dict], adapters: dict, data: Any, out: Path) -> dict:
    """Fig. 6 on the first model's worst corruption at its highest severity measured, when
    the first two models were loaded in this run and the set is a COCO-format file."""
    from robustpose.reports.advmix_figures import skeleton_comparison

    a, b = cards[0], cards[1]
    if a["model"]["name"] not in adapters or b["model"]["name"] not in adapters:
        return {}
    settings = json.loads((Path(a["runs"]["benchmark"]) / "run.json").read_text(encoding="utf-8"))
    worst = (a["corruption"].get("worst") or {}).get("corruption")
    severity = max(a["corruption"]["severities"] or [0])
    root = _image_root(data, settings)
    if not worst or root is None:
        return {}
    labels = {f"A: {a['model']['name']}": adapters[a["model"]["name"]],
              f"B: {b['model']['name']}": adapters[b["model"]["name"]]}
    return {"fig6": skeleton_comparison(labels, settings["annotation_file"], root,
                                        out / "fig6_skeletons.png", worst, severity,
                                        seed=int(settings["conventions"].get("seed", 0)))}


def _image_root(data: Any, settings: dict) -> Path | None:
    """The images of the benchmark's annotation file (the source the run resolved)."""
    from robustpose.benchmarking.sources import resolve_source

    if data is None:
        return None
    source = resolve_source(data.dataset, data.data_root, data.annotations, None,
                            max_images=data.max_images, spec=data.spec,
                            subset_dir=Path(settings["annotation_file"]).parent)
    return Path(source.image_root)
