"""``robustpose inspect MODEL.onnx|.tflite``: a model file's declared inputs and outputs,
and which spec preset fits it (with the spec it makes), or why none does."""
from __future__ import annotations

import argparse

from robustpose.commands._args import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an ONNX (.onnx) or TFLite (.tflite) model file")
    parser.add_argument("--spec", help="also check this spec (a YAML/JSON file or a preset "
                                       "name) against the model")


def _shape(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in (shape or [])) + "]"


def run(args: argparse.Namespace) -> int:
    from robustpose.models.onnx_adapter import declared_tensors, resolve_spec
    from robustpose.models.onnx_check import check_against_model
    from robustpose.models.onnx_presets import fitting_presets
    from robustpose.models.onnx_spec import describe

    try:
        inputs, outputs = declared_tensors(args.model)
    except ImportError as exc:  # an optional runtime missing: one line naming the extra
        raise CommandError(str(exc)) from None
    print(f"model {args.model}")
    for title, tensors in (("inputs", inputs), ("outputs", outputs)):
        print(f"{title}:")
        for t in tensors:
            print(f"  {t.name:<28} {t.type:<16} {_shape(t.shape)}")
    fits = fitting_presets(inputs, outputs, str(args.model))
    good = [(name, spec) for name, spec in fits if not isinstance(spec, str)]
    print("presets that fit: " + (", ".join(name for name, _ in good) or "none"))
    for name, spec in good:
        keys = describe(spec)
        keys.pop("name", None)
        print(f"  --onnx-spec {name}: " + ", ".join(f"{k}={v}" for k, v in keys.items()))
    for name, reason in fits:
        if isinstance(reason, str):
            print(f"  not {name}: {reason.split(': ', 1)[-1]}")
    if args.spec:
        spec = resolve_spec(args.spec, inputs, outputs, str(args.model))
        check_against_model(spec, inputs, outputs, str(args.model))  # ValueError: one line
        print(f"spec {args.spec}: fits")
    return 0
