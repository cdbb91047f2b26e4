"""The argument groups every ``robustpose`` command shares, defined once (issue 25).

One spelling per concept (docs/cli.md):

- model choice: ``--model``/``--checkpoint``, ``--config``, ``--onnx``/``--onnx-spec``, ``--input-size``
- data: ``--dataset`` (choices from the dataset registry), ``--data-root``, ``--annotations``,
  ``--detections``, ``--corrupted-root``/``--corrupted-layout``, ``--max-images``, ``--spec``
- output: ``--out`` (a run folder, or the file a command writes)
- progress: ``--no-progress``
- device: ``--device`` (default :data:`DEFAULT_DEVICE`)
- run: ``--seed``, ``--batch-size``, ``--workers``, ``--shard``

Old spellings (``--quiet``, ``--output-dir``, ``--output``) still parse into the same
destination and print one deprecation line on stderr. Choices are read from the registries
(datasets, attack kinds, attack losses), never typed here.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from typing import Any, Callable, Iterable

#: the one device default of every command: CUDA when torch sees a GPU, else the CPU
DEFAULT_DEVICE = "auto"
DEVICE_HELP = "cpu, cuda, cuda:N or auto (default: auto = cuda when torch sees a GPU, else cpu)"


class CommandError(Exception):
    """An error to show the user as one line (no traceback)."""


# --- choices from the registries -------------------------------------------------------

def dataset_choices() -> tuple[str, ...]:
    """Names ``--dataset`` takes: the dataset registry of :mod:`robustpose.data`."""
    from robustpose.data import list_datasets

    return tuple(list_datasets())


def corrupted_layouts() -> tuple[str, ...]:
    """Layouts of pre-generated -C folders (:data:`robustpose.data.corrupted.LAYOUTS`)."""
    from robustpose.data.corrupted import LAYOUTS

    return tuple(LAYOUTS)


def attack_choices() -> tuple[str, ...]:
    """The kinds ``robustpose attack`` runs (the attack run's own list)."""
    from robustpose.benchmarking.attack_run import ATTACK_KINDS

    return tuple(ATTACK_KINDS)


def attack_loss_choices() -> tuple[str, ...]:
    """``auto`` and every loss an attack can ascend on some output kind."""
    from robustpose.attacks import KIND_LOSSES

    names = dict.fromkeys(name for kind in KIND_LOSSES.values() for name in kind)
    return ("auto", *names)


# --- deprecated spellings --------------------------------------------------------------

class DeprecatedAlias(argparse.Action):
    """An old option spelling: stores into the canonical option's destination and prints
    one line ``robustpose CMD: note: OLD is deprecated; use NEW`` on stderr (once per parse).
    Hidden from ``--help`` (docs/cli.md lists the old spellings)."""

    def __init__(self, option_strings: list[str], dest: str, *, canonical: str,
                 flag: bool = False, **kwargs: Any) -> None:
        self.canonical = canonical
        kwargs.pop("default", None)
        super().__init__(option_strings, dest, nargs=0 if flag else None,
                         const=True if flag else None, default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        told = parser.__dict__.setdefault("_deprecation_told", set())
        if option_string not in told:  # intermixed parsing may call twice
            told.add(option_string)
            print(f"{parser.prog}: note: {option_string} is deprecated; use {self.canonical}",
                  file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_deprecated(group: Any, old: str, canonical: str, dest: str, flag: bool = False) -> None:
    """Accept ``old`` as a deprecated spelling of ``canonical`` (same ``dest``)."""
    group.add_argument(old, dest=dest, action=DeprecatedAlias, canonical=canonical, flag=flag)


# --- the groups ------------------------------------------------------------------------

def add_model_arguments(parser: argparse.ArgumentParser, onnx_note: str = "needs the onnx extra",
                        onnx_spec_help: str = "YAML/JSON spec of the ONNX model's input and output"
                        ) -> argparse._ArgumentGroup:
    """The model choice of every command that runs a model (``benchmark``, ``stability``,
    ``attack``): ``--model``/``--checkpoint``, ``--config``, ``--onnx``/``--onnx-spec``,
    ``--input-size``; the group is returned for command-specific additions."""
    model = parser.add_argument_group("model (default: the bundled SynthPose model)")
    model.add_argument("--model", help="registry model name (robustpose.models.list_models())")
    model.add_argument("--checkpoint", help="weights for --model / --config (official or robustpose)")
    model.add_argument("--config", help="training YAML config (architecture, inference setting)")
    model.add_argument("--onnx", help=f"ONNX model file ({onnx_note})")
    model.add_argument("--onnx-spec", help=onnx_spec_help)
    model.add_argument("--input-size", help="crop WIDTHxHEIGHT for --model (default 192x256)")
    return model


def check_model_arguments(args: argparse.Namespace) -> None:
    """One-line :class:`CommandError` for ``--model`` with ``--config``, or a lone
    ``--onnx`` / ``--onnx-spec``."""
    if getattr(args, "model", None) is not None and getattr(args, "config", None) is not None:
        raise CommandError("give --model or --config, not both")
    if (getattr(args, "onnx", None) is None) != (getattr(args, "onnx_spec", None) is None):
        raise CommandError("--onnx and --onnx-spec go together")


#: the data options of :func:`add_data_arguments` (each also the run functions' keyword)
DATA_KEYWORDS = ("dataset", "data_root", "annotations", "detections", "corrupted_root",
                 "corrupted_layout", "max_images", "spec")


def add_data_arguments(parser: argparse.ArgumentParser, title: str = "data"
                       ) -> argparse._ArgumentGroup:
    """The data choice of ``benchmark``, ``stability`` and ``attack``, one set of flags:
    a command whose run function lacks one refuses it when given (:func:`data_options`)."""
    data = parser.add_argument_group(title)
    data.add_argument("--dataset", default="synth", choices=dataset_choices())
    data.add_argument("--data-root", help="dataset root folder")
    data.add_argument("--annotations", help="annotation file (overrides the dataset's default)")
    data.add_argument("--detections", help="person boxes, COCO results json (default: GT boxes)")
    data.add_argument("--corrupted-root", help="read pre-generated -C folders "
                      "(ROOT/<corruption>/<severity>/...) instead of corrupting on the fly")
    data.add_argument("--corrupted-layout", default="robustpose", choices=corrupted_layouts(),
                      help="-C folder layout: robustpose (ROOT/name/1..5/rel path) or advmix "
                      "(ROOT/name/0..4/file name)")
    data.add_argument("--max-images", type=int, help="only the first N images (smoke runs)")
    data.add_argument("--spec", help="keypoint preset of a COCO-format set (e.g. rhd, "
                      "onehand10k; default: picked from the json's keypoint names, docs/data.md)")
    return data


def data_options(args: argparse.Namespace, run_function: Callable[..., Any],
                 command: str) -> dict[str, Any]:
    """The data keywords for ``run_function``: every one it accepts; a flag the user gave
    that it does not accept is a one-line :class:`CommandError` (never silently dropped)."""
    accepted = inspect.signature(run_function).parameters
    options: dict[str, Any] = {}
    for dest in DATA_KEYWORDS:
        value = getattr(args, dest, None)
        if dest in accepted:
            options[dest] = value
        elif value is not None and not (dest == "corrupted_layout" and value == "robustpose"):
            flag = "--" + dest.replace("_", "-")
            raise CommandError(f"{flag} is not supported by `robustpose {command}` yet")
    return options


def add_out_argument(group: Any, help: str, required: bool = False,
                     old: Iterable[str] = ()) -> None:
    """``--out``: where the command writes; ``old`` spellings stay as deprecated aliases."""
    group.add_argument("--out", required=required, help=help)
    for spelling in old:
        add_deprecated(group, spelling, "--out", "out")


def add_progress_argument(group: Any, help: str = "no progress bars (drawn only when stderr "
                          "is a terminal)", old: Iterable[str] = ("--quiet",)) -> None:
    """``--no-progress`` (``args.no_progress``); ``--quiet`` is its deprecated spelling."""
    group.add_argument("--no-progress", action="store_true", help=help)
    for spelling in old:
        add_deprecated(group, spelling, "--no-progress", "no_progress", flag=True)


def add_device_argument(group: Any) -> None:
    """``--device`` with the one default, :data:`DEFAULT_DEVICE`."""
    group.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)


def resolve_device(device: str | None) -> str:
    """``auto`` (or None) -> ``cuda`` when torch sees a GPU, else ``cpu``; others unchanged
    (the run refuses cuda without a GPU in one line)."""
    if device not in (None, "auto"):
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def add_run_arguments(group: Any, batch_size: int, workers: bool = True,
                      shard: bool = False) -> None:
    """``--batch-size``, ``--workers`` (DataLoader processes), ``--device``, ``--seed`` and
    (where the run splits) ``--shard``."""
    group.add_argument("--batch-size", type=int, default=batch_size)
    if workers:
        group.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    add_device_argument(group)
    group.add_argument("--seed", type=int, default=0)
    if shard:
        group.add_argument("--shard", help="i/n: evaluate every n-th cell from the i-th "
                           "(0-based); torchrun's RANK/WORLD_SIZE are used when set")


def check_run_arguments(args: argparse.Namespace) -> None:
    """One-line :class:`CommandError` for a batch size below 1 or negative workers."""
    if args.batch_size < 1 or getattr(args, "workers", 0) < 0:
        raise CommandError("--batch-size must be >= 1 and --workers >= 0")
