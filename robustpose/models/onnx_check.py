"""A model spec checked against the model's declared inputs and outputs, at load.

One place for every spec-versus-model rule (name, rank, dtype, fixed sizes, output roles),
so a mismatch is one line naming the model, the key, the model's value and the spec's —
before any crop is fed, never a runtime traceback. Runtimes describe their tensors in
onnxruntime's ``NodeArg`` shape (``name``, ``type`` such as ``'tensor(float)'``, ``shape``
with ints for fixed dimensions); the TFLite adapter converts to it (:class:`TensorInfo`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .onnx_spec import INPUT_DTYPES, WHOLE_IMAGE_OUTPUT_KINDS, OnnxSpec

__all__ = ["TensorInfo", "ModelPlan", "check_against_model", "FEEDABLE_INPUT_TYPES",
           "dtype_name"]

#: the input element types the adapters can feed
FEEDABLE_INPUT_TYPES = tuple(INPUT_DTYPES.values())


@dataclass(frozen=True)
class TensorInfo:
    """A declared model tensor, runtime-independent: ``type`` as onnxruntime writes it
    (``'tensor(float)'``), ``shape`` with ints for fixed and strings/None for free axes."""

    name: str
    type: str
    shape: tuple


@dataclass
class ModelPlan:
    """What the check found: the input to feed, the output of each role the spec reads,
    the spec's ``input_dtype`` resolved ('float32' | 'uint8' | 'int32') and the number of
    keypoints after ``keypoint_index_map`` (None when the model does not fix it)."""

    input: Any
    outputs: dict
    input_dtype: str
    num_keypoints: int | None


def dtype_name(type_text: str) -> str:
    """'tensor(int32)' -> 'int32' (the spec's spelling; others pass through)."""
    for name, text in INPUT_DTYPES.items():
        if text == type_text:
            return name
    return type_text


def _pick_outputs(spec: OnnxSpec, by_out: dict, refuse) -> dict:
    """role -> declared output: named by ``outputs`` / ``output_name``, else by convention
    (SimCC: outputs called simcc_x / simcc_y, else the first two; others: the first)."""
    names = list(by_out)
    chosen = {}
    for position, role in enumerate(spec.roles()):
        name = spec.output_for(role)
        key = "outputs" if spec.outputs and role in spec.outputs else "output_name"
        if name is None:
            if spec.output_kind == "simcc":
                name = role if role in by_out else (names[position] if position < len(names)
                                                    else None)
                key = "outputs"
            else:
                name = names[0]
        if name not in by_out:
            raise refuse(key, f"no output {name!r} for role {role!r}; the model's outputs "
                              f"are {names}")
        chosen[role] = by_out[name]
    return chosen


def _check_input(spec: OnnxSpec, inp: Any, refuse) -> str:
    """Dtype, rank, channels and fixed size of the input; returns the dtype to feed."""
    shape, name = list(inp.shape or []), inp.name
    model_dtype = dtype_name(inp.type)
    if inp.type not in FEEDABLE_INPUT_TYPES:
        raise refuse("input_dtype", f"input {name!r} takes {inp.type}; the adapters feed "
                                    f"{', '.join(INPUT_DTYPES)}")
    if spec.input_dtype not in ("auto", model_dtype):
        raise refuse("input_dtype", f"input {name!r} takes {inp.type} (input_dtype "
                                    f"{model_dtype}) but the spec says input_dtype "
                                    f"{spec.input_dtype}")
    low, high = spec.value_range
    if model_dtype == "uint8" and (low < 0 or high > 255):
        raise refuse("value_range", f"input {name!r} takes uint8 (0..255) but value_range "
                                    f"is [{low}, {high}]")
    if len(shape) != 4:
        raise refuse("layout", f"input {name!r} has shape {shape}; the spec feeds "
                               f"{spec.layout.upper()} images (rank 4)")
    nchw = spec.layout.upper() == "NCHW"
    channels, height, width = (shape[1], shape[2], shape[3]) if nchw else \
        (shape[3], shape[1], shape[2])
    if isinstance(channels, int) and channels != 3:
        raise refuse("layout", f"layout {spec.layout} but input {name!r} has shape "
                               f"{shape} ({channels} channels where the spec puts 3)")
    want_w, want_h = spec.input_size
    fixed = isinstance(width, int) and isinstance(height, int)
    if spec.kind == "whole-image" and spec.size_divisor is not None and fixed:
        raise refuse("size_divisor", f"size_divisor {spec.size_divisor} pads each image to its "
                                     f"own size, but input {name!r} is fixed at {shape} (leave "
                                     "size_divisor out: the image is padded to input_size)")
    if (isinstance(width, int) and width != want_w) or (isinstance(height, int)
                                                        and height != want_h):
        raise refuse("input_size", f"input_size [{want_w}, {want_h}] (width, height) but "
                                   f"input {name!r} is fixed at {shape} ({spec.layout})")
    return model_dtype


def _coords_count(spec: OnnxSpec, out: Any, refuse) -> Any:
    dims, name = list(out.shape or []), out.name
    if len(dims) == 2:
        values = spec.values_per_keypoint
        count = None
        if isinstance(dims[1], int):
            if dims[1] % values:
                raise refuse("values_per_keypoint", f"values_per_keypoint {values} does not "
                                                    f"divide output {name!r}'s {dims[1]} values")
            count = dims[1] // values
    elif len(dims) == 3 or (len(dims) == 4 and dims[1] == 1):  # (N, K, C) | MoveNet's (N, 1, K, C)
        count, values = dims[-2], dims[-1]
    else:
        raise refuse("output_kind", f"output_kind coords but output {name!r} has shape {dims} "
                                    "(coords are (N, K*C), (N, K, C) or (N, 1, K, C))")
    if isinstance(values, int) and values < 2:
        raise refuse("output_kind", f"output {name!r} has shape {dims}: fewer than "
                                    "2 values (x, y) per keypoint")
    if spec.score_index is not None and isinstance(values, int) and spec.score_index >= values:
        raise refuse("score_index", f"score_index {spec.score_index} but output {name!r} has "
                                    f"{values} values per keypoint")
    return count


def _simcc_count(spec: OnnxSpec, outs: dict, refuse) -> Any:
    counts = []
    for role, side, size in (("simcc_x", "width", spec.input_size[0]),
                             ("simcc_y", "height", spec.input_size[1])):
        dims, name = list(outs[role].shape or []), outs[role].name
        if len(dims) != 3:
            raise refuse("output_kind", f"output_kind simcc but output {name!r} ({role}) has "
                                        f"shape {dims} (SimCC vectors are N x K x bins)")
        bins = round(size * spec.simcc_split_ratio)
        if isinstance(dims[2], int) and dims[2] != bins:
            raise refuse("simcc_split_ratio", f"output {name!r} ({role}) has {dims[2]} bins; "
                                              f"simcc_split_ratio {spec.simcc_split_ratio} x "
                                              f"input {side} {size} gives {bins}")
        counts.append(dims[1])
    if all(isinstance(c, int) for c in counts) and counts[0] != counts[1]:
        raise refuse("outputs", f"simcc_x has {counts[0]} keypoints and simcc_y {counts[1]}")
    return counts[0]


def _people_count(spec: OnnxSpec, out: Any, refuse) -> Any:
    """Keypoints per person of a whole-image output: MultiPose rows (N, P, 3K + 5);
    YOLO-pose candidates (N, 5 + K * values_per_keypoint, anchors)."""
    dims, name = list(out.shape or []), out.name
    if len(dims) != 3:
        raise refuse("output_kind", f"output_kind {spec.output_kind} but output {name!r} has "
                                    f"shape {dims} (rank 3 expected)")
    if spec.output_kind == "multipose":
        values, extra, layout = dims[2], 5, "(N, people, 3K + 5)"
        vpk = 3
    else:
        values, extra, layout = dims[1], 5, "(N, 5 + K*values_per_keypoint, anchors)"
        vpk = spec.values_per_keypoint
        if isinstance(dims[1], int) and isinstance(dims[2], int) and dims[1] > dims[2]:
            raise refuse("output_kind", f"output {name!r} has shape {dims}: yolo-pose reads "
                                        f"{layout}; this one looks transposed")
    if not isinstance(values, int):
        return None
    if values <= extra or (values - extra) % vpk:
        raise refuse("output_kind" if spec.output_kind == "multipose" else "values_per_keypoint",
                     f"output {name!r} has shape {dims}: {values} values are not {layout} "
                     f"with {vpk} values per keypoint")
    return (values - extra) // vpk


def check_against_model(spec: OnnxSpec, inputs: Sequence[Any], outputs: Sequence[Any],
                        model: str) -> ModelPlan:
    """Check ``spec`` against the model's declared ``inputs`` / ``outputs`` (NodeArg-like:
    ``name``, ``type``, ``shape``). Raises a one-line ValueError naming the model, the
    key, the model's value and the spec's (and the spec's source); returns the
    :class:`ModelPlan`."""
    src = getattr(spec, "source", None) or "the ONNX spec"
    by_in, by_out = {i.name: i for i in inputs}, {o.name: o for o in outputs}

    def refuse(key: str, message: str) -> ValueError:
        return ValueError(f"{model}: {message} (key {key!r} of {src})")

    whole = spec.kind == "whole-image"
    if whole and spec.output_kind not in WHOLE_IMAGE_OUTPUT_KINDS:
        raise refuse("kind", f"kind 'whole-image' reads output_kind "
                             f"{' or '.join(WHOLE_IMAGE_OUTPUT_KINDS)}, but output_kind is "
                             f"{spec.output_kind!r}")
    if not whole and spec.output_kind in WHOLE_IMAGE_OUTPUT_KINDS:
        raise refuse("output_kind", f"output_kind {spec.output_kind!r} is a whole-image "
                                    "model's output: add kind: whole-image")
    name_in = spec.input_name or next(iter(by_in))
    if name_in not in by_in:
        raise refuse("input_name", f"no input {name_in!r}; the model's inputs are {list(by_in)}")
    inp = by_in[name_in]
    input_dtype = _check_input(spec, inp, refuse)
    outs = _pick_outputs(spec, by_out, refuse)
    if spec.output_kind == "heatmaps":
        dims, name = list(outs["heatmaps"].shape or []), outs["heatmaps"].name
        if len(dims) != 4:
            raise refuse("output_kind", f"output_kind heatmaps but output {name!r} has "
                                        f"shape {dims} (heatmaps are N x K x h x w; coords?)")
        count = dims[1] if spec.heatmap_layout.upper() == "NCHW" else dims[3]
    elif spec.output_kind == "coords":
        count = _coords_count(spec, outs["coords"], refuse)
    elif whole:
        count = _people_count(spec, outs["people"], refuse)
    else:
        count = _simcc_count(spec, outs, refuse)
    mapping = spec.keypoint_index_map
    if mapping is not None and isinstance(count, int) and max(mapping) >= count:
        role = spec.roles()[0]
        raise refuse("keypoint_index_map", f"keypoint_index_map names keypoint "
                                           f"{max(mapping)} but output {outs[role].name!r} has "
                                           f"{count} keypoints (shape "
                                           f"{list(outs[role].shape or [])})")
    kept = len(mapping) if mapping is not None else count
    return ModelPlan(inp, outs, input_dtype, kept if isinstance(kept, int) else None)
