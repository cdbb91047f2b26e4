"""Whole-image (bottom-up / one-stage) models: an image in, people out.

The second model kind beside the top-down crop adapters. An adapter of this kind has
``kind = 'whole-image'`` and :meth:`WholeImageAdapter.predict_image`: one uint8 RGB image
(H, W, 3) -> :class:`People` (keypoints (P, K, 3) x, y, score in image px; person scores
(P,); boxes (P, 4) x1, y1, x2, y2 in image px, or None). The benchmark runs it on the
clean and corrupted whole image with no ground-truth boxes
(:mod:`robustpose.benchmarking.whole_image`).

- :class:`WholeImageSpecAdapter`: an ONNX / TFLite file with a spec of ``kind:
  whole-image`` (presets ``movenet-multipose``, ``yolo-pose``). The image is letterboxed
  into the model's input (:func:`letterbox`), fed through the spec's dtype / range /
  layout (the top-down :class:`~robustpose.models.spec_adapter.SpecAdapter` does that
  part), decoded (:func:`decode_multipose`, :func:`decode_yolo_pose`) and mapped back.
- :class:`WholeImageCallable`: a Python callable ``image -> people`` (the API).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["People", "QueryView", "Letterbox", "letterbox", "decode_multipose", "decode_yolo_pose",
           "nms_boxes", "WholeImageAdapter", "WholeImageSpecAdapter", "WholeImageCallable",
           "is_whole_image"]


def is_whole_image(adapter: Any) -> bool:
    """Whether ``adapter`` is of the whole-image kind (image in, people out)."""
    return getattr(adapter, "kind", None) == "whole-image"


@dataclass
class People:
    """The people a whole-image model found in one image.

    ``keypoints`` (P, K, 3): x, y in image px, keypoint score; ``scores`` (P,): person
    score; ``boxes`` (P, 4) x1, y1, x2, y2 in image px, or None (the model gives none)."""

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, np.float64)
        if self.keypoints.ndim != 3:  # no people: (0, K, 3) with K unknown
            self.keypoints = self.keypoints.reshape(0, 0, 3)
        self.scores = np.asarray(self.scores, np.float64).reshape(-1)
        if self.boxes is not None:
            self.boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class QueryView:
    """One image as a query attack sees a whole-image model (:meth:`WholeImageAdapter.query_view`).

    ``input`` (3, h, w) float [0, 1] RGB: the image as the model is fed it (after the
    adapter's letterbox; a callable's: the image itself); ``mask`` (1, h, w) float, 1 on
    the image's pixels and 0 on padding (None: every pixel is the image's); ``people``:
    a batch (B, 3, h, w) [0, 1] of such inputs -> B :class:`People` in image px, each
    input quantised to the model's input dtype exactly as :meth:`predict_image` feeds it
    (``people(input[None])[0]`` is ``predict_image(image)``)."""

    input: Any
    mask: Any
    people: Callable[[Any], list]


@dataclass(frozen=True)
class Letterbox:
    """How an image sits in the model input: ``input = image * scale + (pad_x, pad_y)``
    per axis (``scale`` = (sx, sy): the resized side over the image side); ``input_size``
    (w, h) of the padded input, px."""

    scale: tuple[float, float]
    pad_x: int
    pad_y: int
    input_size: tuple[int, int]

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Input px (..., 2) x, y -> image px."""
        xy = np.asarray(xy, np.float64)
        return (xy - np.asarray([self.pad_x, self.pad_y], np.float64)) / \
            np.asarray(self.scale, np.float64)


def letterbox(image: np.ndarray, fit: tuple[int, int], size_divisor: int | None = None,
              pad_value: float = 0.0) -> tuple[np.ndarray, Letterbox]:
    """Scale ``image`` (H, W, 3) uint8 to fit ``fit`` = (w, h) px with its aspect ratio
    kept (bilinear, cv2.INTER_LINEAR), then pad, centred, with ``pad_value``: up to ``fit``
    itself, or (``size_divisor``) only up to the next multiples of it (a model with a free
    input size: MoveNet MultiPose, sides multiples of 32). The centring rounds as
    ultralytics' ``LetterBox``: left = round(dw / 2 - 0.1).

    Returns the padded input (h', w', 3) uint8 and the :class:`Letterbox` mapping back."""
    import cv2

    height, width = image.shape[:2]
    scale = min(fit[0] / width, fit[1] / height)
    new_w, new_h = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    if size_divisor:
        in_w = int(math.ceil(new_w / size_divisor) * size_divisor)
        in_h = int(math.ceil(new_h / size_divisor) * size_divisor)
    else:
        in_w, in_h = int(fit[0]), int(fit[1])
    resized = image if (new_w, new_h) == (width, height) else \
        cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    left = int(round((in_w - new_w) / 2 - 0.1))
    top = int(round((in_h - new_h) / 2 - 0.1))
    out = np.full((in_h, in_w, 3), int(round(pad_value)), np.uint8)
    out[top:top + new_h, left:left + new_w] = resized
    # the scale applied per axis (the rounding of new_w / new_h moves it by < 0.5 px over
    # the side): the exact map back, where ultralytics divides by the common `scale`
    return out, Letterbox((new_w / width, new_h / height), left, top, (in_w, in_h))


def input_px(values: np.ndarray, order: str, normalized: bool,
             input_size: tuple[int, int]) -> np.ndarray:
    """(..., 2) pairs in the spec's order / units -> x, y in input px."""
    xy = np.asarray(values, np.float64)
    if order == "yx":
        xy = xy[..., ::-1]
    return xy * np.asarray(input_size, np.float64) if normalized else xy


def decode_multipose(rows: np.ndarray, input_size: tuple[int, int], order: str = "yx",
                     normalized: bool = True) -> People:
    """MoveNet MultiPose rows (P, 3K + 5) -> :class:`People` in *input* px.

    A row: K x (y, x, score), then the box (ymin, xmin, ymax, xmax) and the person score
    (MoveNet's order ``yx``, units normalised to the padded input ``input_size`` (w, h))."""
    rows = np.asarray(rows, np.float64).reshape(-1, np.shape(rows)[-1])
    k = (rows.shape[1] - 5) // 3
    triples = rows[:, :3 * k].reshape(-1, k, 3)
    xy = input_px(triples[..., :2], order, normalized, input_size)
    corners = input_px(rows[:, 3 * k:3 * k + 4].reshape(-1, 2, 2), order, normalized, input_size)
    return People(np.concatenate([xy, triples[..., 2:3]], axis=-1), rows[:, -1],
                  corners.reshape(-1, 4))


def nms_boxes(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS, as ``torchvision.ops.nms``: indices by descending score, dropping a box
    whose IoU with a kept one is > ``iou``. ``boxes`` (N, 4) x1, y1, x2, y2."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        i, rest = int(order[0]), order[1:]
        keep.append(i)
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        union = area[i] + area[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)


def decode_yolo_pose(raw: np.ndarray, values_per_keypoint: int = 3,
                     score_threshold: float = 0.001, iou: float = 0.7,
                     max_people: int = 300, max_candidates: int = 30000) -> People:
    """ultralytics YOLO-pose raw output (5 + K*v, anchors) (or with a leading batch of 1)
    -> :class:`People` in input px, as ultralytics' ``non_max_suppression`` for one class:
    candidates with confidence > ``score_threshold``, the ``max_candidates`` best, boxes
    (cx, cy, w, h) -> corners, greedy NMS at ``iou``, the ``max_people`` best kept.

    A column: cx, cy, w, h (input px), person confidence, K x (x, y[, visibility]) with
    x, y in input px and the visibility already a probability (the export applies the
    sigmoid); ``values_per_keypoint`` 2 gives every keypoint the person's confidence."""
    raw = np.asarray(raw, np.float64)
    if raw.ndim == 3:
        raw = raw[0]
    cand = raw.T  # (anchors, 5 + K*v)
    cand = cand[cand[:, 4] > score_threshold]
    cand = cand[np.argsort(-cand[:, 4], kind="stable")[:max_candidates]]
    centre, size = cand[:, 0:2], cand[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keep = nms_boxes(boxes, cand[:, 4], iou)[:max_people]
    cand, boxes = cand[keep], boxes[keep]
    v = int(values_per_keypoint)
    kps = cand[:, 5:].reshape(len(cand), -1, v)
    score = kps[..., 2:3] if v >= 3 else np.repeat(cand[:, None, 4:5], kps.shape[1], axis=1)
    return People(np.concatenate([kps[..., :2], score], axis=-1), cand[:, 4], boxes)


class WholeImageAdapter:
    """Base of the whole-image adapters: ``predict_image(image) -> People``.

    Attributes the runs read: ``kind`` ('whole-image'), ``name``, ``input_size`` (w, h:
    what the image is fitted into; a callable's own choice: None), ``padding`` (1.0: no
    crop), ``default_flip_test`` (False), ``num_keypoints`` (None when unknown)."""

    kind = "whole-image"
    padding = 1.0
    default_flip_test = False
    inference = None
    num_keypoints: int | None = None
    input_size: tuple[int, int] = (256, 256)
    name = "whole-image"

    def predict_image(self, image: np.ndarray) -> People:
        raise NotImplementedError

    def query_view(self, image: np.ndarray) -> QueryView:
        """The image (H, W, 3) uint8 as a query attack perturbs it (:class:`QueryView`).
        Here (a callable sizes its own input): the image itself in [0, 1]; each query is
        rounded back to uint8 (what an image file can hold) and goes through
        :meth:`predict_image`."""
        import torch

        def people(batch: Any) -> list:
            pixels = torch.round(batch.detach().clamp(0, 1) * 255).to(torch.uint8)
            return [self.predict_image(np.ascontiguousarray(x.permute(1, 2, 0).cpu().numpy()))
                    for x in pixels]

        base = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        return QueryView(base, None, people)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Crops are a top-down notion: refused in one line (the stability and attack runs
        feed crops)."""
        raise ValueError(f"{self.name}: a whole-image model (image in, people out) takes no "
                         "person crops; it runs in `robustpose benchmark` (and the card's "
                         "clean and corruption faces)")

    def conventions(self) -> dict:
        """How images are fed and people read (``run.json``)."""
        return {"model_kind": "whole-image"}


class WholeImageSpecAdapter(WholeImageAdapter):
    """A model file with a ``kind: whole-image`` spec, run through the top-down
    :class:`~robustpose.models.spec_adapter.SpecAdapter` ``runner`` that loaded and checked
    it (its ``forward`` feeds a float [0, 1] NCHW batch per the spec's dtype, range,
    mean / std, colour order and layout)."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.spec = runner.spec
        self.name = runner.name
        self.model_label = runner.model_label
        self.input_size = tuple(self.spec.input_size)
        self.num_keypoints = runner.num_keypoints

    def conventions(self) -> dict:
        s = self.spec
        return {"model_kind": "whole-image", "input_size": list(self.input_size),
                "resize": "aspect kept, bilinear; padded centred", "size_divisor": s.size_divisor,
                "pad_value": s.pad_value, "output_kind": s.output_kind,
                "score_threshold": s.score_threshold, "nms_iou": s.nms_iou,
                "max_people": s.max_people}

    def predict_image(self, image: np.ndarray) -> People:
        """One uint8 RGB image (H, W, 3) -> its people in image px."""
        view = self.query_view(image)
        return view.people(view.input[None])[0]

    def query_view(self, image: np.ndarray) -> QueryView:
        """The letterboxed input (what the model sees: a query attack perturbs it as the
        crop attacks perturb the crop), the mask of the image's pixels in it (the padding
        is the adapter's, never perturbed), and the people of a batch of such inputs in
        image px (the runner feeds each one in the spec's dtype: int32 rounds)."""
        import torch

        s = self.spec
        fed, box = letterbox(image, self.input_size, s.size_divisor, s.pad_value)
        base = torch.from_numpy(fed).permute(2, 0, 1).float() / 255.0
        mask = torch.zeros((1,) + tuple(base.shape[1:]))
        height, width = image.shape[:2]
        new_w = int(round(width * box.scale[0]))
        new_h = int(round(height * box.scale[1]))
        mask[:, box.pad_y:box.pad_y + new_h, box.pad_x:box.pad_x + new_w] = 1.0

        def people(batch: Any) -> list:
            raw = np.asarray(self.runner.forward(batch))
            return [self._decode(r, box) for r in raw]

        return QueryView(base, mask, people)

    def _decode(self, raw: np.ndarray, box: Letterbox) -> People:
        """One input's raw output -> its people in image px (thresholds, index map)."""
        s = self.spec
        if s.output_kind == "multipose":
            people = decode_multipose(raw, box.input_size, s.coordinate_order,
                                      s.coordinate_units != "crop_px")
        else:
            people = decode_yolo_pose(raw, s.values_per_keypoint, s.score_threshold,
                                      1.0 if s.nms_iou is None else float(s.nms_iou),
                                      s.max_people or 300)
        keep = people.scores >= s.score_threshold if s.output_kind == "multipose" else \
            np.ones(len(people), bool)
        kps = people.keypoints[keep]
        if s.keypoint_index_map is not None:
            kps = kps[:, s.keypoint_index_map]
        kps = np.concatenate([box.to_image(kps[..., :2]), kps[..., 2:3]], axis=-1)
        boxes = box.to_image(people.boxes[keep].reshape(-1, 2, 2)).reshape(-1, 4)
        return People(kps, people.scores[keep], boxes)


class WholeImageCallable(WholeImageAdapter):
    """A Python callable as a whole-image model: ``fn(image uint8 (H, W, 3) RGB)`` returns
    ``People``, a dict with ``keypoints`` (P, K, 2|3) and ``scores`` (P,) (and optionally
    ``boxes`` (P, 4) x1, y1, x2, y2), or a tuple (keypoints, scores[, boxes]), all in image
    px. Keypoints without a score get the person's. ``identity``: a version string (a
    callable has no file to hash; a run folder refuses a rerun without one)."""

    def __init__(self, fn: Callable[[np.ndarray], Any], name: str = "callable",
                 num_keypoints: int | None = None, identity: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"WholeImageCallable needs a callable, got {type(fn).__name__}")
        self.fn, self.name, self.num_keypoints = fn, name, num_keypoints
        self.identity = identity
        self.input_size = (256, 256)  # unused: the callable sizes its own input

    def conventions(self) -> dict:
        return {"model_kind": "whole-image", "resize": "the callable's own"}

    def predict_image(self, image: np.ndarray) -> People:
        out = self.fn(image)
        if isinstance(out, People):
            return out
        if isinstance(out, dict):
            kps, scores, boxes = out.get("keypoints"), out.get("scores"), out.get("boxes")
        elif isinstance(out, (tuple, list)) and len(out) in (2, 3):
            kps, scores, boxes = (tuple(out) + (None,))[:3]
        else:
            raise ValueError(f"{self.name}: a whole-image callable returns People, a dict "
                             "with keypoints and scores, or (keypoints, scores[, boxes]); "
                             f"got {type(out).__name__}")
        kps = np.asarray(kps, np.float64)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if kps.ndim != 3 or kps.shape[-1] not in (2, 3) or len(kps) != len(scores):
            raise ValueError(f"{self.name}: keypoints must be (P, K, 2|3) and scores (P,), "
                             f"got {tuple(kps.shape)} and {tuple(scores.shape)}")
        if kps.shape[-1] == 2:
            kps = np.concatenate([kps, np.repeat(scores[:, None, None], kps.shape[1], 1)], -1)
        return People(kps, scores, boxes)
