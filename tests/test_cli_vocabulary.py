"""One command-line vocabulary (issue 25): shared argument groups, one spelling per concept
(``--out``, ``--no-progress``, one ``--device`` default), old spellings accepted with one
deprecation line on stderr, choices read from the registries."""
from __future__ import annotations

import argparse
import importlib

import pytest

from robustpose.cli import COMMANDS, main
from robustpose.commands import _args

MODEL_COMMANDS = ("benchmark", "stability", "attack")


def parser_of(command: str) -> argparse.ArgumentParser:
    module = importlib.import_module(f"robustpose.commands.{COMMANDS[command][0]}")
    parser = argparse.ArgumentParser(prog=f"robustpose {command}")
    module.add_arguments(parser)
    return parser


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    return parser_of(command).parse_intermixed_args(argv)


def head(command: str) -> list[str]:
    """The positional arguments a command needs before its options."""
    return {"attack": ["igsm"], "train": ["c.yaml"], "test": ["c.yaml", "--checkpoint", "w.pt"],
            "synth": ["o"]}.get(command, [])


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_the_data_flags_are_one_set(command):
    """The data flags had drifted (attack lacked --corrupted-root, only benchmark had
    --detections): every model command now parses the same data group."""
    args = parse(command, head(command) + [
        "--dataset", "coco-format", "--data-root", "r", "--annotations", "a.json",
        "--detections", "d.json", "--corrupted-root", "c", "--corrupted-layout", "advmix",
        "--max-images", "3", "--spec", "rhd"])
    assert (args.dataset, args.data_root, args.annotations, args.detections,
            args.corrupted_root, args.corrupted_layout, args.max_images, args.spec) == (
        "coco-format", "r", "a.json", "d.json", "c", "advmix", 3, "rhd")


@pytest.mark.parametrize("command", MODEL_COMMANDS + ("train", "test", "advmix-preview"))
def test_one_device_default(command):
    argv = head(command) + (["--config", "c.yaml", "--out", "p.png"]
                            if command == "advmix-preview" else [])
    assert parse(command, argv).device == _args.DEFAULT_DEVICE == "auto"


def test_auto_device_resolves_to_what_torch_sees():
    import torch

    assert _args.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert _args.resolve_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize("command, old, new, dest, value", [
    ("benchmark", ["--quiet"], ["--no-progress"], "no_progress", True),
    ("stability", ["--quiet"], ["--no-progress"], "no_progress", True),
    ("attack", ["--quiet"], ["--no-progress"], "no_progress", True),
    ("synth", ["--quiet"], ["--no-progress"], "no_progress", True),
    ("train", ["--output-dir", "runs/x"], ["--out", "runs/x"], "out", "runs/x"),
    ("test", ["--output", "m.json"], ["--out", "m.json"], "out", "m.json"),
])
def test_old_spelling_parses_as_the_new_one_with_one_notice(command, old, new, dest, value,
                                                            capsys):
    canonical = parse(command, head(command) + new)
    assert capsys.readouterr().err == ""  # the canonical spelling is silent
    deprecated = parse(command, head(command) + old)
    assert getattr(canonical, dest) == getattr(deprecated, dest) == value
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"robustpose {command}: note: {old[0]} is deprecated; use {new[0]}"]


def test_an_old_spelling_among_overrides_keeps_them(capsys):
    """train parses intermixed (overrides after options): the alias neither eats an
    override nor prints its notice twice."""
    args = parse("train", ["c.yaml", "a=1", "--output-dir", "x", "b=2"])
    assert args.overrides == ["a=1", "b=2"] and args.out == "x"
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_old_spellings_stay_out_of_help():
    text = parser_of("benchmark").format_help()
    assert "--no-progress" in text and "--quiet" not in text


def test_choices_come_from_the_registries():
    from robustpose.attacks import KIND_LOSSES
    from robustpose.benchmarking.attack_run import ATTACK_KINDS
    from robustpose.data import list_datasets
    from robustpose.data.corrupted import LAYOUTS

    actions = {a.dest: a for a in parser_of("attack")._actions}
    assert tuple(actions["dataset"].choices) == tuple(list_datasets())
    assert tuple(actions["corrupted_layout"].choices) == tuple(LAYOUTS)
    assert tuple(actions["attack"].choices) == tuple(ATTACK_KINDS)
    assert set(actions["loss"].choices) == {"auto"} | {n for k in KIND_LOSSES.values() for n in k}


def test_a_data_flag_the_run_does_not_take_is_refused_in_one_line(capsys):
    """stability has no person-box option: --detections is one line, before any work."""
    from robustpose.benchmarking.stability_run import run_stability

    args = parse("stability", ["--detections", "d.json"])
    with pytest.raises(_args.CommandError, match="^--detections is not supported by "
                       "`robustpose stability` yet$"):
        _args.data_options(args, run_stability, "stability")
    assert main(["stability", "--detections", "d.json", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["robustpose stability: error: --detections is not supported by "
                   "`robustpose stability` yet"]


def test_data_options_pass_what_the_run_takes():
    def run(model=None, *, dataset="synth", data_root=None, annotations=None,
            max_images=None, spec=None, corrupted_root=None, corrupted_layout="robustpose"):
        return None

    args = parse("benchmark", ["--corrupted-root", "c", "--max-images", "2"])
    options = _args.data_options(args, run, "x")
    assert options == {"dataset": "synth", "data_root": None, "annotations": None,
                       "corrupted_root": "c", "corrupted_layout": "robustpose",
                       "max_images": 2, "spec": None}
