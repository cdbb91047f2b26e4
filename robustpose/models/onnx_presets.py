"""Spec presets by name: ``--onnx-spec movenet | blazepose | rtmpose`` (top-down crops) and
``movenet-multipose | yolo-pose`` (whole-image models, :mod:`robustpose.models.whole_image`).

A preset is the contract of one model family; what the model file declares (input name,
crop size, dtype, layout, the output that plays each role) is read from the file itself,
so MoveNet Lightning (192) and Thunder (256) both work with ``movenet``. Each builder
takes the declared inputs / outputs (NodeArg-like: ``name``, ``type``, ``shape``) and
returns the spec mapping, or raises :class:`NoFit` with the reason; the spec is then
checked like any file (:func:`robustpose.models.onnx_check.check_against_model`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .onnx_check import check_against_model, dtype_name
from .onnx_spec import INPUT_DTYPES, OnnxSpec, spec_from_mapping

__all__ = ["PRESETS", "NoFit", "preset_names", "is_preset", "preset_spec", "fitting_presets"]

#: COCO-17 from BlazePose's 39 landmarks (nose, eyes, ears, shoulders, elbows, wrists,
#: hips, knees, ankles; MediaPipe's landmark numbering)
BLAZEPOSE_TO_COCO = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]


class NoFit(ValueError):
    """The model is not of the preset's family (the message says which declaration)."""


def _image_input(inputs: Sequence[Any]) -> tuple[Any, str, dict]:
    """The first rank-4 input with 3 channels: (input, layout, size/dtype keys)."""
    for inp in inputs:
        shape = list(inp.shape or [])
        if len(shape) != 4:
            continue
        layout = "NCHW" if shape[1] == 3 else "NHWC" if shape[3] == 3 else None
        if layout is None:
            continue
        h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
        size = [w, h] if isinstance(w, int) and isinstance(h, int) else None
        dtype = dtype_name(inp.type)  # another type: 'auto', refused by the check naming it
        return inp, layout, {"input_name": inp.name, "layout": layout,
                             "input_dtype": dtype if dtype in INPUT_DTYPES else "auto", **(
                                 {"input_size": size} if size else {})}
    raise NoFit("no rank-4 image input with 3 channels")


def _movenet(inputs: Sequence[Any], outputs: Sequence[Any]) -> dict:
    """MoveNet SinglePose (Lightning 192, Thunder 256): int32 (or float) NHWC 0..255 in,
    (N, 1, 17, 3) = (y, x, score) normalised to the crop out."""
    _, _, keys = _image_input(inputs)
    out = next((o for o in outputs if list(o.shape or [])[-2:] == [17, 3]), None)
    if out is None:
        raise NoFit("no output ending in (17, 3) (MoveNet's 17 x (y, x, score))")
    return {**keys, "input_size": keys.get("input_size", [192, 192]), "value_range": [0, 255],
            "padding": 1.25, "output_kind": "coords", "output_name": out.name,
            "coordinate_order": "yx", "coordinate_units": "crop_normalized",
            "values_per_keypoint": 3, "score_index": 2}


def _blazepose(inputs: Sequence[Any], outputs: Sequence[Any]) -> dict:
    """MediaPipe BlazePose landmark models (lite, full, heavy; ONNX or TFLite): RGB 0..1,
    (N, 195) = 39 x (x, y, z, visibility logit, presence logit) in crop pixels."""
    _, _, keys = _image_input(inputs)
    out = next((o for o in outputs if list(o.shape or [])[1:] == [195]), None)
    if out is None:
        raise NoFit("no (N, 195) output (BlazePose's 39 x (x, y, z, visibility, presence))")
    return {**keys, "input_size": keys.get("input_size", [256, 256]), "value_range": [0, 1],
            "padding": 1.25, "output_kind": "coords", "output_name": out.name,
            "values_per_keypoint": 5, "score_index": 3, "score_activation": "sigmoid",
            "keypoint_index_map": BLAZEPOSE_TO_COCO}


def _rtmpose(inputs: Sequence[Any], outputs: Sequence[Any]) -> dict:
    """RTMPose / DWPose (mmpose SimCC head, mmdeploy export): NCHW float, ImageNet mean /
    std on 0..255 RGB, outputs simcc_x (N, K, W*r) and simcc_y (N, K, H*r)."""
    _, layout, keys = _image_input(inputs)
    three = [o for o in outputs if len(list(o.shape or [])) == 3]
    named = {o.name: o for o in three}
    pair = [named["simcc_x"], named["simcc_y"]] if {"simcc_x", "simcc_y"} <= set(named) \
        else three[:2]
    if len(pair) < 2:
        raise NoFit("no two rank-3 outputs (SimCC's simcc_x, simcc_y)")
    size = keys.get("input_size", [192, 256])
    bins = pair[0].shape[2]
    ratio = bins / size[0] if isinstance(bins, int) else 2.0
    return {**keys, "input_size": size, "value_range": [0, 255],
            "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
            "padding": 1.25, "output_kind": "simcc", "simcc_split_ratio": ratio,
            "outputs": {"simcc_x": pair[0].name, "simcc_y": pair[1].name}}


def _whole_image_input(inputs: Sequence[Any], default: int) -> dict:
    """The image input of a whole-image model: a free size fits the image into
    ``default`` px squared and pads to multiples of 32 (the strides these models need)."""
    _, _, keys = _image_input(inputs)
    if "input_size" in keys:
        return keys
    return {**keys, "input_size": [default, default], "size_divisor": 32}


def _movenet_multipose(inputs: Sequence[Any], outputs: Sequence[Any]) -> dict:
    """MoveNet MultiPose: int32 NHWC 0..255 RGB of any size with sides multiples of 32 (256
    on the longer side recommended); (1, 6, 56) = 6 people x (17 x (y, x, score), box
    ymin, xmin, ymax, xmax, person score), normalised to the padded input."""
    keys = _whole_image_input(inputs, 256)
    out = next((o for o in outputs if len(list(o.shape or [])) == 3
                and list(o.shape)[2] == 3 * 17 + 5), None)
    if out is None:
        raise NoFit("no (N, people, 56) output (MultiPose's 17 x (y, x, score), box, score)")
    return {**keys, "kind": "whole-image", "value_range": [0, 255], "pad_value": 0,
            "output_kind": "multipose", "output_name": out.name, "coordinate_order": "yx",
            "coordinate_units": "input_normalized", "score_threshold": 0.0}


def _yolo_pose(inputs: Sequence[Any], outputs: Sequence[Any]) -> dict:
    """ultralytics YOLO-pose (v8 / 11) ONNX export: NCHW float RGB 0..1, letterboxed with
    grey 114; raw ``output0`` (1, 56, anchors) = box cx, cy, w, h, person confidence, 17 x
    (x, y, visibility) in input px, decoded with ultralytics' validation NMS (confidence >
    0.001, IoU 0.7, at most 300 people)."""
    keys = _whole_image_input(inputs, 640)
    out = next((o for o in outputs if len(list(o.shape or [])) == 3
                and list(o.shape)[1] == 5 + 17 * 3), None)
    if out is None:
        raise NoFit("no (N, 56, anchors) output (YOLO-pose's box, confidence, 17 x (x, y, v))")
    return {**keys, "kind": "whole-image", "value_range": [0, 1], "pad_value": 114,
            "output_kind": "yolo-pose", "output_name": out.name, "values_per_keypoint": 3,
            "score_threshold": 0.001, "nms_iou": 0.7, "max_people": 300}


#: name -> builder(inputs, outputs) -> spec mapping
PRESETS: dict[str, Callable[[Sequence[Any], Sequence[Any]], dict]] = {
    "movenet": _movenet, "blazepose": _blazepose, "rtmpose": _rtmpose,
    "movenet-multipose": _movenet_multipose, "yolo-pose": _yolo_pose}


def preset_names() -> list[str]:
    return list(PRESETS)


def is_preset(value: Any) -> bool:
    """A string naming a preset (a spec argument that is not a file)."""
    return isinstance(value, str) and value.lower() in PRESETS


def preset_spec(name: str, inputs: Sequence[Any], outputs: Sequence[Any],
                model: str = "the model") -> OnnxSpec:
    """The preset ``name`` filled from the model's declarations; a model of another
    family is one line naming the preset and what is missing."""
    key = name.lower()
    if key not in PRESETS:
        raise ValueError(f"unknown spec preset {name!r}; choose from {', '.join(PRESETS)} "
                         "or give a YAML/JSON spec file")
    try:
        data = PRESETS[key](inputs, outputs)
    except NoFit as exc:
        raise ValueError(f"{model}: does not fit preset {key!r}: {exc}") from None
    spec = spec_from_mapping({**data, "name": key}, f"preset {key!r}")
    return spec


def fitting_presets(inputs: Sequence[Any], outputs: Sequence[Any],
                    model: str = "the model") -> list[tuple[str, OnnxSpec | str]]:
    """Every preset with the spec it makes for this model, or the reason it does not fit
    (``robustpose inspect``)."""
    found: list[tuple[str, OnnxSpec | str]] = []
    for name in PRESETS:
        try:
            spec = preset_spec(name, inputs, outputs, model)
            check_against_model(spec, inputs, outputs, model)
            found.append((name, spec))
        except ValueError as exc:
            found.append((name, str(exc)))
    return found
