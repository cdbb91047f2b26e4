"""The ONNX spec file: how to feed an ONNX pose model and read its output.

A YAML/JSON mapping of :class:`OnnxSpec`'s fields (docs/benchmark.md). Unknown keys are
refused with the nearest valid name (a misspelt ``heatmap_activation`` would otherwise
fall back to its default and change every number without a word); the parsed content
has a hash (:meth:`OnnxSpec.content_sha256`) that run folders record as part of the
model's identity.
"""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

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
    for ok, message in checks:
        if not ok:
            raise ValueError(f"{path}: {message}")
    if "name" not in data:
        spec.name = path.stem
    return spec
