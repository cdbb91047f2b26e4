"""SynthPose: a procedural, deterministic COCO-format keypoint dataset that needs no download.

Each image holds 1-4 articulated figures (the 17 COCO keypoints with their meaning:
face points, shoulders, elbows, ...) over a cluttered background. Image ``i`` of split
``s`` with seed ``S`` is drawn from a generator seeded by ``derive_seed(S, 'synthpose',
s, i)`` alone, so any image can be made on its own, in any process or order, and is the
same bytes every time.

>>> ds = SynthPose(num_images=4, seed=0, split="val")
>>> image, annotations = ds[0]            # uint8 RGB H x W x 3, list of COCO dicts
>>> image.shape
(192, 256, 3)

- :class:`SynthPose` is the indexable dataset (train: any size from a seed; val: the
  fixed split of :func:`validation_split`).
- :meth:`SynthPose.write` writes ``images/`` + ``annotations.json`` (what ``robustpose
  synth`` does); :func:`materialize` does it once into a cache folder keyed by the
  dataset's parameters, and :func:`build_records` returns the person records of that
  folder, so the trainer and the benchmark read SynthPose through the ordinary COCO path.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from robustpose.data.synth_body import COCO_KEYPOINTS, COCO_SKELETON
from robustpose.data.synth_scene import PersonLabel, render_scene
from robustpose.utils.io import atomic_write_bytes, atomic_write_text
from robustpose.utils.seeding import rng_from

__all__ = ["SynthPose", "validation_split", "coco_categories", "materialize", "build_records",
           "DEFAULT_IMAGE_SIZE", "VAL_SEED", "VAL_NUM_IMAGES", "SYNTH_VERSION"]

#: (width, height) of generated images.
MAX_SIDE = 8192  # pixels per side: beyond it one image alone is hundreds of MiB
DEFAULT_IMAGE_SIZE = (256, 192)
#: The fixed validation split: seed and size (``make demo`` evaluates it 76 times).
VAL_SEED = 0
VAL_NUM_IMAGES = 64
#: Bumped whenever rendering changes, so cached copies of older renderings are not reused.
SYNTH_VERSION = 1
SPLITS = ("train", "val")


def coco_categories() -> list[dict]:
    """The COCO ``categories`` entry: person with the 17 keypoint names and the skeleton."""
    return [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": list(COCO_KEYPOINTS), "skeleton": [list(p) for p in COCO_SKELETON]}]


class SynthPose:
    """``num_images`` SynthPose images of one split; ``ds[i] -> (image, annotations)``.

    ``image`` is uint8 RGB (height x width x 3); ``annotations`` are COCO keypoint
    annotations (dicts with ``id``, ``image_id``, ``category_id``, ``bbox`` xywh px,
    ``area`` = visible silhouette pixels, ``keypoints`` flat [x, y, v] * 17, ``num_keypoints``,
    ``iscrowd`` 0, plus ``pose_class`` and ``yaw`` for analysis).
    """

    def __init__(self, num_images: int, seed: int = 0, split: str = "train",
                 image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> None:
        if split not in SPLITS:
            raise ValueError(f"SynthPose split must be one of {SPLITS}, got {split!r}")
        if int(num_images) < 1:
            raise ValueError(f"SynthPose needs at least one image, got num_images={num_images}")
        width, height = (int(v) for v in image_size)
        if width < 32 or height < 32:
            raise ValueError(f"SynthPose image_size {image_size} is too small (min 32 x 32)")
        if width > MAX_SIDE or height > MAX_SIDE:  # 100000 x 100000 would allocate 112 GiB
            raise ValueError(f"SynthPose image_size {image_size} is too large (max "
                             f"{MAX_SIDE} x {MAX_SIDE})")
        self.num_images, self.seed, self.split = int(num_images), int(seed), split
        self.image_size = (width, height)

    def __len__(self) -> int:
        return self.num_images

    def __repr__(self) -> str:
        w, h = self.image_size
        return f"SynthPose(num_images={self.num_images}, seed={self.seed}, split={self.split!r}, image_size=({w}, {h}))"

    def image_id(self, index: int) -> int:
        return int(index) + 1

    def image_info(self, index: int) -> dict:
        w, h = self.image_size
        return {"id": self.image_id(index), "file_name": f"{index:06d}.png", "width": w, "height": h}

    def render(self, index: int) -> tuple[np.ndarray, list[PersonLabel]]:
        """Image ``index`` and its :class:`PersonLabel` list (deterministic)."""
        if not 0 <= int(index) < self.num_images:
            raise IndexError(f"SynthPose index {index} out of range 0..{self.num_images - 1}")
        w, h = self.image_size
        return render_scene(rng_from(self.seed, "synthpose", self.split, int(index)), w, h)

    def __getitem__(self, index: int) -> tuple[np.ndarray, list[dict]]:
        image, labels = self.render(index)
        return image, self._annotations(index, labels)

    def _annotations(self, index: int, labels: list[PersonLabel]) -> list[dict]:
        image_id = self.image_id(index)
        out = []
        for k, lab in enumerate(labels):
            kp = np.round(lab.keypoints.astype(np.float64), 2)
            out.append({"id": image_id * 10 + k, "image_id": image_id, "category_id": 1,
                        "bbox": [float(v) for v in lab.bbox], "area": float(lab.area),
                        "keypoints": [float(v) if j % 3 < 2 else int(v) for j, v in enumerate(kp.reshape(-1))],
                        "num_keypoints": lab.num_keypoints, "iscrowd": 0,
                        "pose_class": lab.pose, "yaw": round(lab.yaw_deg, 1)})
        return out

    def coco_header(self) -> dict:
        w, h = self.image_size
        return {"info": {"description": "SynthPose (robustpose procedural keypoint dataset)",
                         "version": SYNTH_VERSION, "seed": self.seed, "split": self.split,
                         "num_images": self.num_images, "image_size": [w, h]},
                "licenses": [], "categories": coco_categories()}

    def write(self, out_dir: str | os.PathLike, progress: bool = True,
              overwrite: bool = False) -> Path:
        """Write ``out_dir/images/NNNNNN.png`` and ``out_dir/annotations.json``; returns the json path.

        Images are written atomically one by one; the annotation file is written last, so
        its presence marks a complete folder. A folder that already holds a split (an
        annotation file or images) is refused unless ``overwrite``, which first removes
        its images: a smaller split over a larger one must not leave stale images beside
        an annotation file that lists fewer.
        """
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"{out}: exists and is not a directory")
        images_dir = out / "images"
        old = [p for p in images_dir.iterdir() if p.is_file()] if images_dir.is_dir() else []
        if (old or (out / "annotations.json").exists()) and not overwrite:
            raise ValueError(f"{out}: already holds a SynthPose split ({len(old)} images); "
                             "use another folder or --overwrite")
        for path in old:
            path.unlink()
        images_dir.mkdir(parents=True, exist_ok=True)
        coco = self.coco_header()
        coco["images"], coco["annotations"] = [], []
        for index in tqdm(range(self.num_images), desc=f"SynthPose {self.split}", unit="img",
                          disable=not progress, leave=False):
            image, annotations = self[index]
            ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if not ok:  # pragma: no cover - cv2 always encodes uint8 RGB
                raise ValueError(f"{images_dir}: could not encode image {index}")
            info = self.image_info(index)
            atomic_write_bytes(images_dir / info["file_name"], png.tobytes())
            coco["images"].append(info)
            coco["annotations"].extend(annotations)
        ann_path = out / "annotations.json"
        atomic_write_text(ann_path, json.dumps(coco, separators=(",", ":")))
        return ann_path


def validation_split(num_images: int = VAL_NUM_IMAGES,
                     image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> SynthPose:
    """The fixed SynthPose validation split (seed :data:`VAL_SEED`)."""
    return SynthPose(num_images=num_images, seed=VAL_SEED, split="val", image_size=image_size)


def default_cache_dir() -> Path:
    """``$ROBUSTPOSE_CACHE/synthpose`` (default ``~/.cache/robustpose/synthpose``)."""
    root = os.environ.get("ROBUSTPOSE_CACHE") or Path.home() / ".cache" / "robustpose"
    return Path(root) / "synthpose"


def materialize(dataset: SynthPose, cache_dir: str | os.PathLike | None = None,
                progress: bool = True) -> Path:
    """Write ``dataset`` once into a folder named after its parameters; return that folder.

    The folder (``images/`` + ``annotations.json``) is built in a temporary sibling and
    renamed into place, so concurrent callers and interrupted runs never see a partial
    copy; a complete copy is reused.
    """
    w, h = dataset.image_size
    parent = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = f"{dataset.split}-seed{dataset.seed}-n{dataset.num_images}-{w}x{h}-v{SYNTH_VERSION}"
    target = parent / name
    if (target / "annotations.json").is_file():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    try:
        dataset.write(tmp, progress=progress)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "annotations.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _dataset_from_block(block: dict) -> SynthPose:
    split = str(block.get("split", "train"))
    default_n = VAL_NUM_IMAGES if split == "val" else 4000
    default_seed = VAL_SEED if split == "val" else 1
    size = block.get("image_size") or DEFAULT_IMAGE_SIZE
    return SynthPose(num_images=int(block.get("num_images") or default_n),
                     seed=int(block.get("seed", default_seed)), split=split,
                     image_size=(int(size[0]), int(size[1])))


def build_records(block: dict | None = None, *, aspect_ratio: float, padding: float = 1.25,
                  cache_dir: str | os.PathLike | None = None, progress: bool = True,
                  **options: Any):
    """Person records of a SynthPose split, for :class:`~robustpose.data.TopDownDataset`.

    ``block`` (a config's ``data.train`` / ``data.val`` entry) and ``options`` may give
    ``split`` ('train' or 'val'), ``num_images`` (train 4000, val :data:`VAL_NUM_IMAGES`),
    ``seed`` (train 1, val :data:`VAL_SEED`), ``image_size`` [w, h] and ``root``/``cache_dir``
    (where the split is materialised; default :func:`default_cache_dir`). The split is
    written once (deterministic) and read back with the COCO loader. On return
    ``block['annotations']`` and ``block['images']`` name the files, so the caller can
    score the split with COCO OKS AP. ``aspect_ratio`` (the model's input width / height)
    and ``padding`` make the crops, as for :func:`~robustpose.data.load_coco_records`.
    Returns ``(records, spec)``.
    """
    from robustpose.data.coco import load_coco_records

    block = block if block is not None else {}
    block.update(options)
    dataset = _dataset_from_block(block)
    where = cache_dir or block.get("cache_dir") or block.get("root")
    folder = materialize(dataset, where, progress=progress)
    block["annotations"] = folder / "annotations.json"
    block["images"] = folder / "images"
    records, spec = load_coco_records(block["annotations"], block["images"],
                                      aspect_ratio=aspect_ratio, padding=padding)
    return records, spec
