"""Streaming the crops of many cells through one DataLoader.

All cells of a run share one dataset of ``(cell index, person index)`` items and one pool
of DataLoader workers, so loading and corrupting the next images overlaps inference on
the current batch, even across cell boundaries, and the workers start only once. A batch
never mixes cells. Memory holds a few batches in flight whatever the dataset size.

An image that cannot be read becomes a *skip marker*: the batch goes on
without it and the runner lists it in the cell's record.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from robustpose.benchmarking.cells import Cell
from robustpose.data import TopDownDataset


class OncePerImageDataset(TopDownDataset):
    """TopDownDataset that reads and transforms each image once for all its people.

    Loading + corrupting the full image is the costly step; the records of one image are
    adjacent, so keeping the last image per worker process does it once per image.
    """

    _cache_key: object = None
    _cache_value: object = None

    def _read(self, record: Any) -> np.ndarray:
        key = (str(record.image_path), record.image_id)
        if key != self._cache_key:
            self._cache_key, self._cache_value = None, None  # free the old copy first
            self._cache_value = super()._read(record)
            self._cache_key = key
        return self._cache_value

    def __getstate__(self) -> dict:  # workers start with an empty cache
        state = dict(self.__dict__)
        state.pop("_cache_key", None)
        state.pop("_cache_value", None)
        return state


@dataclass(frozen=True)
class CellImages:
    """Where a cell's full images come from: the one place the run's seed enters.

    On the fly (``corrupted_root`` None): :class:`~robustpose.data.CorruptedImages`, each
    image seeded from ``(seed, image id, corruption, severity)``. Otherwise the -C folders
    under ``corrupted_root`` in ``layout`` (:class:`~robustpose.data.CorruptedFolder`).
    """

    seed: int = 0
    corrupted_root: str | os.PathLike | None = None   # as the user gave it (run.json shows it)
    layout: str = "robustpose"

    @property
    def description(self) -> str:
        """What ``run.json`` records as the corruption source."""
        if self.corrupted_root is None:
            return "on the fly (full image, before cropping)"
        return f"-C folders ({self.layout} layout): {self.corrupted_root}"

    def transform(self, cell: Cell, image_root: Path | None = None) -> Any:
        """The ``image_transform`` of ``cell`` (None for the clean cell and for a box
        perturbation, whose pixels stay clean: :meth:`records` moves its crops instead)."""
        from robustpose.data import CorruptedFolder, CorruptedImages
        from robustpose.data.box_perturbations import is_box_perturbation

        if cell.is_clean or is_box_perturbation(cell.corruption):
            return None
        if self.corrupted_root is not None:
            return CorruptedFolder(self.corrupted_root, image_root or ".", cell.corruption,
                                   cell.severity, layout=self.layout)
        return CorruptedImages(cell.corruption, cell.severity, int(self.seed))

    def records(self, cell: Cell, records: Sequence[Any], input_size: Sequence[int]) -> list:
        """The person records of ``cell``: ``records`` as they are, or for a box perturbation
        (``box_shift`` ...) copies whose crops follow the perturbed boxes, seeded per person
        from this run's seed (:func:`robustpose.data.box_perturbations.perturb_records`)."""
        from robustpose.data.box_perturbations import is_box_perturbation, perturb_records

        if cell.is_clean or not is_box_perturbation(cell.corruption):
            return list(records)
        return perturb_records(records, cell.corruption, cell.severity, int(self.seed),
                               aspect_ratio=float(input_size[0]) / float(input_size[1]))


class CellStream(Dataset):
    """Items ``(cell_index, person_index)`` -> the TopDownDataset item of that cell, or a
    skip marker ``{'skipped': path, 'problem': text}`` for an unreadable image."""

    def __init__(self, cells: Sequence[Cell], records: Sequence[Any], spec: Any,
                 input_size: tuple[int, int], images: CellImages = CellImages(),
                 image_root: Path | None = None) -> None:
        self.cells = list(cells)
        self.num_records = len(records)
        heatmap_size = (max(1, input_size[0] // 4), max(1, input_size[1] // 4))
        self.datasets = []
        for cell in self.cells:
            transform = images.transform(cell, image_root)
            self.datasets.append(OncePerImageDataset(images.records(cell, records, input_size),
                                                     spec, input_size=tuple(input_size),
                                                heatmap_size=heatmap_size, train=False,
                                                image_transform=transform,
                                                encode_targets=False))

    def __len__(self) -> int:
        return len(self.cells) * self.num_records

    def __getitem__(self, item: tuple[int, int]) -> dict:
        cell_index, person = item
        from robustpose.data import ImageReadError

        try:
            sample = self.datasets[cell_index][person]
        except ImageReadError as exc:  # an unreadable image skips only itself; any other
            # failure (a corruption bug, a missing asset) stops the run loudly
            record = self.datasets[cell_index].records[person]
            path = str(getattr(exc, "path", None) or record.image_path)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            return {"cell": cell_index, "skipped": path, "problem": problem}
        sample.pop("target", None)  # evaluation needs only the crop and its meta
        sample.pop("target_weight", None)
        sample["cell"] = cell_index
        return sample


class CellBatches(Sampler):
    """Batches of ``(cell_index, person_index)`` in cell order; a batch never spans cells."""

    def __init__(self, num_cells: int, num_records: int, batch_size: int) -> None:
        self.num_cells, self.num_records = num_cells, num_records
        self.batch_size = max(1, int(batch_size))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for cell in range(self.num_cells):
            for start in range(0, self.num_records, self.batch_size):
                stop = min(start + self.batch_size, self.num_records)
                yield [(cell, person) for person in range(start, stop)]

    def __len__(self) -> int:
        return self.num_cells * (-(-self.num_records // self.batch_size))


def collate_meta(values: list) -> Any:
    """One meta key of a batch: tensors stacked, numbers / arrays as one array, else a list."""
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(values)
    if isinstance(first, (np.ndarray, np.generic, int, float, bool)):
        return np.stack([np.asarray(v) for v in values])
    return list(values)


def collate_cell_batch(items: list[dict]) -> dict:
    """-> ``{'cell', 'image' (N,3,H,W) or None, 'meta' (dict of arrays), 'count',
    'skipped' [(path, problem)]}``; N may be 0 when every image of the batch failed."""
    skipped = [(it["skipped"], it["problem"]) for it in items if "skipped" in it]
    good = [it for it in items if "skipped" not in it]
    batch: dict[str, Any] = {"cell": items[0]["cell"], "skipped": skipped,
                             "count": len(items), "image": None, "meta": {}}
    if good:
        batch["image"] = torch.stack([torch.as_tensor(it["image"]) for it in good])
        keys = good[0]["meta"].keys()
        batch["meta"] = {k: collate_meta([it["meta"][k] for it in good]) for k in keys}
    return batch


def cell_loader(cells: Sequence[Cell], source: Any, input_size: Sequence[int],
                images: "CellImages", batch_size: int, workers: int) -> DataLoader:
    """The DataLoader every cell-by-cell command iterates (benchmark, stability): the
    cells' crops of ``source`` in order, ``batch_size`` people per batch, ``workers``
    processes that die with the main one."""
    from robustpose.utils.processes import loader_worker_options

    stream = CellStream(cells, source.records, source.spec, input_size, images,
                        image_root=source.image_root)
    return DataLoader(stream, batch_sampler=CellBatches(len(cells), len(source.records),
                                                        batch_size),
                      num_workers=max(0, int(workers)), collate_fn=collate_cell_batch,
                      prefetch_factor=2 if workers > 0 else None,
                      **loader_worker_options(workers))
