"""One run layer for every measurement: run kinds, their registry, and :func:`execute`.

A *run kind* (``benchmark``, ``stability``, ``attack``) is a small object with one protocol
(:class:`RunKind`): which cells a request asks for, how a batch of cells is evaluated into
records, how records become the kind's card and reports, and how its typed cell keys are
written to and read from a record. :func:`execute` does what every kind needs around that,
once: the device, the adapter (one call into the loader), the data source, the claim of
the run folder (lock, ``run.json`` with ``kind`` and ``schema_version``), the todo list,
the progress line, the close and the reports.

``robustpose report FOLDER`` reads ``run.json``'s recorded kind (:func:`kind_of`) and lets
that kind rebuild the reports; a folder written by a newer schema is refused in one line.

>>> kind = get_kind("attack")                                  # doctest: +SKIP
>>> card = execute(kind, ModelChoice(), DataChoice("synth"), out="runs/x", options={...})  # doctest: +SKIP
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import robustpose.config  # noqa: F401  (registers how models.load_adapter reads config=)
from robustpose.utils.registry import Registry

#: run.json's schema. 1: before this layer (no ``kind``/``schema_version``; an attack cell
#: known by ``corruption='<attack>-<U|T>@<eps>'`` / ``severity=steps`` only); 2: typed cell
#: keys in every record's ``cell`` (the version-1 strings are still written as the store's
#: identity, so a folder of either version resumes and reads).
SCHEMA_VERSION = 2

#: every run kind by name (``benchmark``, ``stability``, ``attack``); filled when
#: :mod:`robustpose.benchmarking` is imported (each engine module registers its kind)
KINDS: Registry = Registry("run kind")


class RunKind(Protocol):
    """What one kind of run provides to :func:`execute` and to ``robustpose report``."""

    name: str
    checks_keypoints: bool  #: refuse a model of another keypoint count before any cell

    def title(self, run: "RunContext") -> str:
        """The progress line's command words (``attack igsm``)."""

    def default_dir(self, run: "RunContext", slug: str) -> Path:
        """The run folder when ``out`` is None (``slug``: model[-hash]__dataset)."""

    def requested(self, run: "RunContext") -> dict:
        """run.json lists that grow with every rerun's request ({} for none)."""

    def report(self, run_dir: Any, plots: bool = True) -> int:
        """``robustpose report DIR``: rebuild and print; the exit status."""

    def check(self, options: dict) -> None:
        """Refuse bad options (one line) before any model or data is loaded."""

    def prepare(self, run: "RunContext") -> None:
        """With the adapter and the source: fill ``run.state`` / ``run.conventions``."""

    def cells(self, run: "RunContext") -> list:
        """The typed cell keys the request asks for (the clean cell first)."""

    def settings(self, run: "RunContext") -> dict:
        """``run.json`` (the keys a rerun must agree on among them)."""

    def evaluate(self, run: "RunContext", cells: Sequence) -> list[dict]:
        """Evaluate ``cells``, appending one record per finished cell to ``run.folder``."""

    def finish(self, run: "RunContext", cells: Sequence) -> dict:
        """After the folder is closed: the card (reports written when complete)."""

    def write_reports(self, folder: Any, plots: bool = True) -> dict:
        """Rebuild the card and reports of a folder from its records."""

    def key_to_json(self, cell: Any) -> dict:
        """A typed cell key -> the JSON ``cell`` field of its record."""

    def key_from_json(self, record: dict) -> Any:
        """A record (any schema version) -> its typed cell key."""


def register_kind(kind: Any) -> Any:
    """Register a run kind object under ``kind.name`` (refuses a duplicate)."""
    return KINDS.register(kind.name, kind)


def get_kind(name: str) -> Any:
    """The registered run kind ``name`` (one-line error naming the choices)."""
    return KINDS.get(name)


def kind_of(settings: dict, where: Any = "run.json") -> str:
    """The kind a folder's ``run.json`` was written by: its ``kind`` (schema 2), else the
    ``command`` a version-1 stability / attack run recorded, else ``benchmark``. A schema
    newer than this code's is refused, naming both versions."""
    version = int(settings.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise ValueError(f"{where}: written with run schema_version {version}; this robustpose "
                         f"reads versions 1-{SCHEMA_VERSION} (upgrade robustpose)")
    return str(settings.get("kind") or settings.get("command") or "benchmark")


@dataclass
class ModelChoice:
    """The model of a run, as every command takes it (see :func:`load_adapter`)."""

    model: Any = None
    checkpoint: Any = None
    config: Any = None
    onnx: Any = None
    onnx_spec: Any = None
    input_size: Any = None
    num_joints: int | None = None
    extra: Any = None
    adapter_options: dict = field(default_factory=dict)
    model_identity: str | None = None
    name: str | None = None


@dataclass
class DataChoice:
    """The data of a run: the set (:func:`resolve_source`) and how its cells' images are
    made (:class:`~robustpose.benchmarking.stream.CellImages`: seed, -C folders)."""

    dataset: str = "synth"
    data_root: Any = None
    annotations: Any = None
    detections: Any = None
    max_images: int | None = None
    spec: str | None = None
    metric_options: dict | None = None
    corrupted_root: Any = None
    corrupted_layout: str = "robustpose"
    seed: int = 0


@dataclass
class RunContext:
    """Everything a kind's hooks read: built by :func:`execute`, one per run."""

    kind: Any
    model: ModelChoice
    data: DataChoice
    options: dict
    device: str
    shard: tuple[int, int] | None
    progress: bool
    plots: bool
    num_joints: int
    adapter: Any = None
    model_info: dict = field(default_factory=dict)
    source: Any = None
    folder: Any = None
    fingerprint: str | None = None
    images: Any = None
    state: dict = field(default_factory=dict)


def device_for(device: str) -> str:
    """Refuse CUDA without a GPU (before any model is loaded); torchrun: one GPU per rank."""
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda given but torch sees no CUDA device")
    if str(device) == "cuda" and os.environ.get("LOCAL_RANK"):
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


def load_adapter(choice: ModelChoice, device: str, num_joints: int) -> tuple[Any, dict]:
    """The one place a run turns a model choice into an adapter (and its model_info):
    :func:`robustpose.models.load_adapter`."""
    from robustpose.models.loading import load_adapter as models_load_adapter

    return models_load_adapter(choice.model, checkpoint=choice.checkpoint, config=choice.config,
                               onnx=choice.onnx, onnx_spec=choice.onnx_spec, device=device,
                               input_size=choice.input_size, num_joints=num_joints,
                               extra=choice.extra, model_identity=choice.model_identity,
                               **choice.adapter_options)


def default_run_dir(model_name: str, dataset: str, weights_sha256: str | None = None) -> Path:
    """``runs/benchmark/<model>[-<weights hash, 8 hex>]__<dataset>``: other weights under the
    same model name (a retrained or upgraded bundled model) get their own folder."""
    model = f"{model_name}-{weights_sha256[:8]}" if weights_sha256 else model_name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}__{dataset}").strip("_")
    return Path("runs") / "benchmark" / slug


def weights_fingerprint(model_info: dict) -> str | None:
    """SHA-256 (first 16 hex digits) of the model's weights file, when it came from one:
    the hash the model's identity already took at load, else the file's."""
    from robustpose.benchmarking.identity import file_sha256

    known = (model_info.get("identity") or {}).get("weights")
    if known:
        return known
    path = model_info.get("checkpoint") or model_info.get("onnx")
    if not path or not Path(path).is_file():
        return None
    return file_sha256(path)


def execute(kind: Any, model: ModelChoice, data: DataChoice, out: Any = None,
            shard: tuple[int, int] | None = None, *, options: dict | None = None,
            device: str = "cpu", progress: bool = True, plots: bool = True) -> dict:
    """Run (or resume) one run of ``kind`` (a :class:`RunKind` or its registered name);
    returns its card, with ``run_dir``.

    ``out`` None: ``runs/<kind>/<model>[-<hash>]__<dataset>`` (the kind may name it
    otherwise through ``default_dir``). ``shard=(i, n)``: this process's share of cells."""
    from robustpose.models.loading import check_keypoint_count
    from robustpose.benchmarking.run_folder import RunFolder
    from robustpose.benchmarking.sources import resolve_source
    from robustpose.benchmarking.stream import CellImages
    from robustpose.data.registry import keypoint_count

    kind = get_kind(kind) if isinstance(kind, str) else kind
    options = dict(options or {})
    kind.check(options)
    device = device_for(device)
    num_joints = model.num_joints
    if num_joints is None:  # registry models are built for the dataset's keypoints
        num_joints = keypoint_count(data.dataset, data.annotations, data_root=data.data_root,
                                    spec=data.spec)
    run = RunContext(kind, model, data, options, device, shard, progress, plots, num_joints)
    run.adapter, run.model_info = options.pop("loaded", None) or load_adapter(model, device, num_joints)  # a composite run (the card) loads once
    if model.name:
        run.adapter.name = model.name
    base = Path(out) if out is not None else Path("runs") / kind.name
    run.source = options.pop("source", None) or resolve_source(  # the card resolves once
        data.dataset, data.data_root, data.annotations, data.detections,
        input_size=run.adapter.input_size, padding=run.adapter.padding,
        max_images=data.max_images, subset_dir=base / "subsets",
        metric_options=data.metric_options, spec=data.spec)
    if getattr(kind, "checks_keypoints", True):
        check_keypoint_count(run.model_info, run.source.spec)
    run.fingerprint = weights_fingerprint(run.model_info)
    run.images = CellImages(int(data.seed), data.corrupted_root, data.corrupted_layout)
    slug = default_run_dir(run.adapter.name, run.source.name, run.fingerprint).name
    run.folder = RunFolder(base if out is not None else kind.default_dir(run, slug))
    kind.prepare(run)
    cells = kind.cells(run)
    settings = {**kind.settings(run), "kind": kind.name, "schema_version": SCHEMA_VERSION}
    run.folder.claim(settings, shard)
    try:  # the claim locked this shard's store: released once its cells are written
        requested = kind.requested(run)
        if requested:  # the card's expectations grow with every run's request
            run.folder.add_requested(**requested)
        todo = run.folder.todo(cells, shard)
        if progress:
            where = f" shard {shard[0]}/{shard[1]}" if shard else ""
            print(f"robustpose {kind.title(run)}: {run.adapter.name} on {run.source.name} "
                  f"({len(run.source.records)} people){where}: {len(todo)} cell(s) to run, "
                  f"{len(run.folder.done_keys())} done already -> {run.folder.path}", file=sys.stderr)
        kind.evaluate(run, todo)
    finally:
        run.folder.close()
    card = kind.finish(run, cells)
    card["run_dir"] = str(run.folder.path)
    return card


def report_folders(run_dirs: Sequence[str | os.PathLike], out: Any,
                   plots: bool = True) -> int:
    """``robustpose report``: each folder's recorded kind rebuilds its reports; several
    folders are compared by their (common) kind when it can compare."""
    import json

    kinds = []
    for d in run_dirs:
        path = Path(d) / "run.json"
        if not path.is_file():
            raise FileNotFoundError(f"{d}: not a run folder (no run.json)")
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ValueError(f"{path}: unreadable run settings") from None
        kinds.append(kind_of(settings, path))
    kind = get_kind(kinds[0])
    if len(run_dirs) > 1:
        compares = kinds[0] if kinds[0] in ("stability", "card") else "stability"
        other = next((d for d, k in zip(run_dirs, kinds) if k != compares), None)
        if other is not None:  # stability folders and card folders compare, among their kind
            raise ValueError(f"{other}: not a `robustpose {compares}` run folder; several "
                             "folders are compared only among stability runs or among cards")
        return kind.compare(run_dirs, out, plots=plots)
    return kind.report(run_dirs[0], plots=plots)
