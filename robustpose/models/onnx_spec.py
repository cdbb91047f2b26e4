"""The ONNX spec file: how to feed an ONNX pose model and read its output.

A YAML/JSON mapping of :class:`OnnxSpec`'s fields (docs/benchmark.md). Unknown keys are
refused with the nearest valid name (a misspelt ``heatmap_activation`` would otherwise
fall back to its default and change every number without a word); the parsed content
has a hash (:meth:`OnnxSpec.content_sha256`) that run folders record as part of the
model's identity. :func:`check_against_model` checks a spec against the model's declared
inputs and outputs when the model is loaded: every spec rule lives in this module.
"""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

OUTPUT_KINDS = ("heatmaps", "coords")


@dataclass
class OnnxSpec:
    """How to feed an ONNX pose model and read its output (see docs/benchmark.md)."""

    input_size: tuple[int, int]                 # (width, height) of the crop
    output_kind: str                            # 'heatmaps' | 'coords' (crop pixels)
    output_name: str | None = None              # None = the first output
    input_name: str | None = None               # None = the first input
    color_order: str = "RGB"                    # 'RGB' | 'BGR'
    layout: str = "NCHW"                        # 'NCHW' | 'NHWC'
    value_range: tuple[float, float] = (0.0, 1.0)   # pixel range before mean/std
    mean: tuple[float, float, float] | None = None  # in value_range units, input channel order
    std: tuple[float, float, float] | None = None
    padding: float = 1.25                       # box enlargement of the crop
    flip_shift: bool = True                     # heatmaps: HRNet's 1-px shift in the flip test
    refine: str = "quarter"                     # heatmaps: 'quarter' | 'dark' | 'none'
    dark_kernel: int = 11                       # heatmaps: DARK's blur kernel (odd)
    values_per_keypoint: int = 2                # coords: flat output stride (x, y, ...)
    score_index: int | None = None              # coords: which value is the score
    score_activation: str = "none"              # 'none' | 'sigmoid'
    # heatmaps: 'sigmoid' for maps that are logits (BlazePose). HRNet's decode treats a map
    # whose maximum is <= 0 as empty and puts that joint at the crop corner.
    heatmap_activation: str = "none"            # 'none' | 'sigmoid'
    keypoint_index_map: list[int] | None = None  # dataset keypoint k = model keypoint map[k]
    flip_test: bool = False
    name: str = "onnx"

    def content_sha256(self) -> str:
        """SHA-256 of the spec's parsed content, defaults filled in (key order, comments
        and spelling of equal values do not count): the part of a run's identity that the
        ONNX file's hash leaves out."""
        text = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_onnx_spec(path: str | Path) -> OnnxSpec:
    """Read a YAML/JSON ONNX spec file; a bad file gives a one-line error naming it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX spec file not found")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot parse ONNX spec ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: ONNX spec must be a mapping of keys to values")
    known = set(OnnxSpec.__dataclass_fields__)
    for key in data:  # a typo must not fall back to a default silently
        if key not in known:
            near = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else \
                f"; valid keys: {', '.join(sorted(known))}"
            raise ValueError(f"{path}: unknown ONNX spec key {key!r}{hint}")
    missing = [k for k in ("input_size", "output_kind") if k not in data]
    if missing:
        raise ValueError(f"{path}: ONNX spec lacks required key(s) {', '.join(missing)}")
    try:
        spec = OnnxSpec(**data)
        spec.input_size = (int(spec.input_size[0]), int(spec.input_size[1]))
        spec.value_range = (float(spec.value_range[0]), float(spec.value_range[1]))
    except (TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"{path}: bad ONNX spec value ({exc})") from None
    checks = [(spec.output_kind in OUTPUT_KINDS, f"output_kind must be one of {OUTPUT_KINDS}"),
              (spec.color_order.upper() in ("RGB", "BGR"), "color_order must be RGB or BGR"),
              (spec.layout.upper() in ("NCHW", "NHWC"), "layout must be NCHW or NHWC"),
              (spec.score_activation in ("none", "sigmoid"),
               "score_activation must be none or sigmoid"),
              (spec.heatmap_activation in ("none", "sigmoid"),
               "heatmap_activation must be none or sigmoid"),
              ((spec.mean is None) == (spec.std is None), "give both mean and std, or neither"),
              (spec.padding > 0, "padding must be positive"),
              (spec.refine in ("quarter", "dark", "none"), "refine must be quarter, dark or none"),
              (int(spec.dark_kernel) > 0 and int(spec.dark_kernel) % 2 == 1,
               "dark_kernel must be odd and positive")]
    for ok, message in checks + _index_checks(spec):
        if not ok:
            raise ValueError(f"{path}: {message}")
    if "name" not in data:
        spec.name = path.stem
    spec.source = str(path)  # not a field: neither a spec key nor part of the content hash
    return spec


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _index_checks(spec: OnnxSpec) -> list[tuple[bool, str]]:
    """The integer keys, each named (a bad one would surface as a numpy message later)."""
    mapping = spec.keypoint_index_map
    return [
        (all(_is_int(v, 1) for v in spec.input_size),
         f"input_size must be two positive integers (width, height), got {list(spec.input_size)}"),
        (_is_int(spec.values_per_keypoint, 2),
         f"values_per_keypoint must be an integer >= 2 (x, y, ...), got "
         f"{spec.values_per_keypoint!r}"),
        (spec.score_index is None or _is_int(spec.score_index, 0),
         f"score_index must be a non-negative integer or absent, got {spec.score_index!r}"),
        (mapping is None or (isinstance(mapping, list) and len(mapping) > 0
                             and all(_is_int(v, 0) for v in mapping)),
         f"keypoint_index_map must be a list of non-negative integers, got {mapping!r:.60}"),
    ]


#: the input element types the adapter feeds (float32 crops); widening this (int32 /
#: uint8 inputs such as MoveNet's) is a spec key to add here, beside its check
FEEDABLE_INPUT_TYPES = ("tensor(float)",)


def check_against_model(spec: OnnxSpec, inputs: Sequence[Any], outputs: Sequence[Any],
                        model: str) -> tuple[Any, Any, int | None]:
    """Check ``spec`` against the model's declared inputs and outputs (onnxruntime
    ``NodeArg``s: ``name``, ``type``, ``shape`` with ints for fixed dimensions).

    One place for every spec-versus-model rule, so that what a later spec key allows
    (another input dtype, an output layout) is checked where it is read. Raises a
    one-line ValueError naming the model, the spec file and the key; returns (input,
    output, number of keypoints after ``keypoint_index_map``, None when not fixed)."""
    src = getattr(spec, "source", None) or "the ONNX spec"
    by_in, by_out = {i.name: i for i in inputs}, {o.name: o for o in outputs}
    name_in = spec.input_name or next(iter(by_in))
    name_out = spec.output_name or next(iter(by_out))

    def refuse(key: str, message: str) -> ValueError:
        return ValueError(f"{model}: {message} (key {key!r} of {src})")

    if name_in not in by_in:
        raise refuse("input_name", f"no input {name_in!r}; the model's inputs are {list(by_in)}")
    if name_out not in by_out:
        raise refuse("output_name", f"no output {name_out!r}; the model's outputs are "
                                    f"{list(by_out)}")
    inp, out = by_in[name_in], by_out[name_out]
    shape = list(inp.shape or [])
    if inp.type not in FEEDABLE_INPUT_TYPES:
        raise refuse("input_name", f"input {name_in!r} takes {inp.type}; the spec feeds "
                                   "float32 crops (other input types are not supported yet)")
    if len(shape) != 4:
        raise refuse("layout", f"input {name_in!r} has shape {shape}; the spec feeds "
                               f"{spec.layout.upper()} images (rank 4)")
    nchw = spec.layout.upper() == "NCHW"
    channels, height, width = (shape[1], shape[2], shape[3]) if nchw else \
        (shape[3], shape[1], shape[2])
    if isinstance(channels, int) and channels != 3:
        raise refuse("layout", f"layout {spec.layout} but input {name_in!r} has shape "
                               f"{shape} ({channels} channels where the spec puts 3)")
    want_w, want_h = spec.input_size
    if (isinstance(width, int) and width != want_w) or (isinstance(height, int)
                                                        and height != want_h):
        raise refuse("input_size", f"input_size [{want_w}, {want_h}] (width, height) but "
                                   f"input {name_in!r} is fixed at {shape} ({spec.layout})")
    dims = list(out.shape or [])
    count: Any = None  # keypoints the output holds (None: not fixed)
    if spec.output_kind == "heatmaps":
        if len(dims) != 4:
            raise refuse("output_kind", f"output_kind heatmaps but output {name_out!r} has "
                                        f"shape {dims} (heatmaps are N x K x h x w; coords?)")
        count = dims[1]
    else:
        if len(dims) not in (2, 3):
            raise refuse("output_kind", f"output_kind coords but output {name_out!r} has "
                                        f"shape {dims} (coords are (N, K*C) or (N, K, C))")
        values = spec.values_per_keypoint if len(dims) == 2 else dims[2]
        if len(dims) == 2 and isinstance(dims[1], int):
            if dims[1] % values:
                raise refuse("values_per_keypoint", f"values_per_keypoint {values} does not "
                                                    f"divide output {name_out!r}'s {dims[1]} values")
            count = dims[1] // values
        elif len(dims) == 3:
            count = dims[1]
        if isinstance(values, int) and values < 2:
            raise refuse("output_kind", f"output {name_out!r} has shape {dims}: fewer than "
                                        "2 values (x, y) per keypoint")
        if spec.score_index is not None and isinstance(values, int) and \
                spec.score_index >= values:
            raise refuse("score_index", f"score_index {spec.score_index} but output "
                                        f"{name_out!r} has {values} values per keypoint")
    mapping = spec.keypoint_index_map
    if mapping is not None and isinstance(count, int) and max(mapping) >= count:
        raise refuse("keypoint_index_map", f"keypoint_index_map names keypoint "
                                           f"{max(mapping)} but output {name_out!r} has "
                                           f"{count} keypoints (shape {dims})")
    kept = len(mapping) if mapping is not None else count
    return inp, out, kept if isinstance(kept, int) else None
