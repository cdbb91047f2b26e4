"""The model spec: how to feed an ONNX / TFLite pose model and read its outputs.

A YAML/JSON mapping of :class:`OnnxSpec`'s fields (docs/models.md lists every key with the
model it exists for), or a preset by name (:mod:`robustpose.models.onnx_presets`). Unknown
keys are refused with the nearest valid name (a misspelt ``heatmap_activation`` would
otherwise fall back to its default and change every number without a word); the parsed
content has a hash (:meth:`OnnxSpec.content_sha256`) that run folders record as part of
the model's identity. :func:`robustpose.models.onnx_check.check_against_model` checks a
spec against the model's declared inputs and outputs at load.
"""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import MISSING, asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

#: what adapters decode (the codecs' output kinds); CallableAdapter's choices
OUTPUT_KINDS = ("heatmaps", "coords")
#: what a whole-image model's output holds (kind whole-image): MoveNet MultiPose's rows of
#: people (N, P, 3K + 5), or ultralytics YOLO-pose's raw candidates (N, 5 + K*v, anchors)
#: that the adapter decodes and NMS'es (:mod:`robustpose.models.whole_image`)
WHOLE_IMAGE_OUTPUT_KINDS = ("multipose", "yolo-pose")
#: what a spec may read: the above, or SimCC's two 1-D classification vectors (RTMPose)
SPEC_OUTPUT_KINDS = OUTPUT_KINDS + ("simcc",) + WHOLE_IMAGE_OUTPUT_KINDS
#: model kinds: a person crop in, one person out; or the whole image in, people out
MODEL_KINDS = ("top-down", "whole-image")
#: spec input dtype -> the element type the runtime declares ('auto': take the model's)
INPUT_DTYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)", "int32": "tensor(int32)"}
COORDINATE_ORDERS = ("xy", "yx")
#: crop_px: pixels of the input crop; crop_normalized: 0..1 over the crop (MoveNet);
#: input_normalized: 0..1 over the padded model input (for a top-down crop the input *is*
#: the crop, so it reads as crop_normalized; whole-image models letterbox, where it differs)
COORDINATE_UNITS = ("crop_px", "crop_normalized", "input_normalized")
#: the roles an output can play (key ``outputs``); ``people``: a whole-image model's output
OUTPUT_ROLES = ("coords", "heatmaps", "simcc_x", "simcc_y", "people")


@dataclass
class OnnxSpec:
    """How to feed a pose model and read its output (docs/models.md)."""

    input_size: tuple[int, int]                 # (width, height) of the crop, px
    output_kind: str                            # 'heatmaps' | 'coords' | 'simcc'
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
    # --- issue 26 (defaults = the behaviour before; left out of the content hash when
    # default, so specs and run folders written before keep their identity)
    kind: str = "top-down"                      # 'top-down' | 'whole-image' (section 2)
    input_dtype: str = "float32"                # 'float32' | 'uint8' | 'int32' | 'auto'
    coordinate_order: str = "xy"                # coords: 'xy' | 'yx' (MoveNet)
    coordinate_units: str = "crop_px"           # coords: see COORDINATE_UNITS
    outputs: dict[str, str] | None = None       # role -> output name (OUTPUT_ROLES)
    simcc_split_ratio: float = 2.0              # simcc: bins per input pixel (RTMPose: 2)
    heatmap_layout: str = "NCHW"                # heatmaps: 'NCHW' | 'NHWC' (TFLite, heavy)
    # --- whole-image models (kind: whole-image; models/whole_image.py): the image is scaled
    # to fit input_size (aspect kept) and padded, centred, with pad_value
    size_divisor: int | None = None             # pad only up to multiples of this (MultiPose: 32)
    pad_value: float = 0.0                      # padding, 0..255 pixel units (YOLO: 114)
    score_threshold: float = 0.0                # people with a lower person score are dropped
    nms_iou: float | None = None                # yolo-pose: box IoU above which NMS drops
    max_people: int | None = None               # yolo-pose: people kept after NMS (300)

    def content_sha256(self) -> str:
        """SHA-256 of the spec's parsed content, defaults filled in (key order, comments
        and spelling of equal values do not count): the part of a run's identity that the
        model file's hash leaves out. Keys added by issue 26 count only when not default,
        so a spec written before hashes as it did."""
        content = asdict(self)
        for key, default in _LATER_DEFAULTS.items():
            if content.get(key) == default:
                content.pop(key)
        text = json.dumps(content, sort_keys=True, default=list)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def output_for(self, role: str) -> str | None:
        """The model output that plays ``role`` (None: the adapter picks by position)."""
        if self.outputs and role in self.outputs:
            return self.outputs[role]
        main = {"heatmaps": "heatmaps", "coords": "coords", "multipose": "people",
                "yolo-pose": "people"}.get(self.output_kind)
        return self.output_name if role == main else None

    def roles(self) -> tuple[str, ...]:
        """The output roles this spec reads, in the order the adapter returns them."""
        if self.output_kind in WHOLE_IMAGE_OUTPUT_KINDS:
            return ("people",)
        return ("simcc_x", "simcc_y") if self.output_kind == "simcc" else (self.output_kind,)


#: the keys issue 26 added (from ``kind`` on) and their defaults, read off the dataclass
_FIELDS = list(OnnxSpec.__dataclass_fields__.values())
_LATER_DEFAULTS = {f.name: f.default for f in _FIELDS[[f.name for f in _FIELDS].index("kind"):]}


def load_onnx_spec(path: str | Path) -> OnnxSpec:
    """Read a YAML/JSON spec file; a bad file gives a one-line error naming it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX spec file not found")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot parse ONNX spec ({str(exc).splitlines()[0]})") from None
    spec = spec_from_mapping(data, str(path))
    if not isinstance(data, dict) or "name" not in data:
        spec.name = path.stem
    return spec


def spec_from_mapping(data: Any, source: str) -> OnnxSpec:
    """A spec from a parsed mapping (a file's, or a preset's); ``source`` names it in every
    error (and is kept as ``spec.source``, not a field: not part of the content hash)."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: ONNX spec must be a mapping of keys to values")
    known = set(OnnxSpec.__dataclass_fields__)
    for key in data:  # a typo must not fall back to a default silently
        if key not in known:
            near = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else \
                f"; valid keys: {', '.join(sorted(known))}"
            raise ValueError(f"{source}: unknown ONNX spec key {key!r}{hint}")
    missing = [k for k in ("input_size", "output_kind") if k not in data]
    if missing:
        raise ValueError(f"{source}: ONNX spec lacks required key(s) {', '.join(missing)}")
    try:
        spec = OnnxSpec(**data)
        spec.input_size = (int(spec.input_size[0]), int(spec.input_size[1]))
        spec.value_range = (float(spec.value_range[0]), float(spec.value_range[1]))
        spec.simcc_split_ratio = float(spec.simcc_split_ratio)
        spec.pad_value, spec.score_threshold = float(spec.pad_value), float(spec.score_threshold)
    except (TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"{source}: bad ONNX spec value ({exc})") from None
    for ok, message in _value_checks(spec) + _index_checks(spec):
        if not ok:
            raise ValueError(f"{source}: {message}")
    spec.source = source  # not a field: neither a spec key nor part of the content hash
    return spec


def _choice(spec: OnnxSpec, key: str, choices: Any) -> tuple[bool, str]:
    value = getattr(spec, key)
    return value in tuple(choices), f"{key} must be one of {tuple(choices)}, got {value!r}"


def _value_checks(spec: OnnxSpec) -> list[tuple[bool, str]]:
    """The choice keys, each naming its choices."""
    low, high = spec.value_range
    outputs = spec.outputs
    return [
        _choice(spec, "output_kind", SPEC_OUTPUT_KINDS),
        (spec.color_order.upper() in ("RGB", "BGR"), "color_order must be RGB or BGR"),
        (spec.layout.upper() in ("NCHW", "NHWC"), "layout must be NCHW or NHWC"),
        (spec.heatmap_layout.upper() in ("NCHW", "NHWC"), "heatmap_layout must be NCHW or NHWC"),
        (spec.score_activation in ("none", "sigmoid"), "score_activation must be none or sigmoid"),
        (spec.heatmap_activation in ("none", "sigmoid"),
         "heatmap_activation must be none or sigmoid"),
        ((spec.mean is None) == (spec.std is None), "give both mean and std, or neither"),
        (spec.padding > 0, "padding must be positive"),
        (spec.refine in ("quarter", "dark", "none"), "refine must be quarter, dark or none"),
        (int(spec.dark_kernel) > 0 and int(spec.dark_kernel) % 2 == 1,
         "dark_kernel must be odd and positive"),
        _choice(spec, "kind", MODEL_KINDS),
        _choice(spec, "input_dtype", tuple(INPUT_DTYPES) + ("auto",)),
        _choice(spec, "coordinate_order", COORDINATE_ORDERS),
        _choice(spec, "coordinate_units", COORDINATE_UNITS),
        (spec.simcc_split_ratio > 0, f"simcc_split_ratio must be positive, got "
                                     f"{spec.simcc_split_ratio}"),
        (high > low, f"value_range must be [low, high] with high > low, got [{low}, {high}]"),
        (spec.input_dtype != "uint8" or (0 <= low and high <= 255),
         f"input_dtype uint8 holds 0..255, but value_range is [{low}, {high}]"),
        (outputs is None or (isinstance(outputs, dict) and all(
            r in OUTPUT_ROLES and isinstance(n, str) for r, n in outputs.items())),
         f"outputs must map roles {OUTPUT_ROLES} to output names, got {outputs!r:.80}"),
        (0.0 <= spec.pad_value <= 255.0, f"pad_value is in 0..255 pixel units, got "
                                         f"{spec.pad_value}"),
        (0.0 <= spec.score_threshold <= 1.0, f"score_threshold must be in [0, 1], got "
                                             f"{spec.score_threshold}"),
        (spec.nms_iou is None or (isinstance(spec.nms_iou, (int, float))
                                  and 0.0 < float(spec.nms_iou) <= 1.0),
         f"nms_iou must be in (0, 1] or absent, got {spec.nms_iou!r}"),
    ]


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
        (spec.size_divisor is None or _is_int(spec.size_divisor, 1),
         f"size_divisor must be a positive integer or absent, got {spec.size_divisor!r}"),
        (spec.max_people is None or _is_int(spec.max_people, 1),
         f"max_people must be a positive integer or absent, got {spec.max_people!r}"),
    ]


def describe(value: Mapping | OnnxSpec) -> dict:
    """The spec's keys that differ from their defaults (what a preset filled in): for
    ``robustpose inspect`` and the docs."""
    data = asdict(value) if isinstance(value, OnnxSpec) else dict(value)
    defaults = {k: f.default for k, f in OnnxSpec.__dataclass_fields__.items()
                if f.default is not MISSING}
    return {k: v for k, v in data.items() if k not in defaults or defaults[k] != v}

