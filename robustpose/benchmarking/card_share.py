"""What the card's faces share: one data source and the clean forward pass.

The card runs three faces through :func:`~robustpose.benchmarking.run_layer.execute`. Each
face's kind computes its own clean reference (the benchmark's clean cell, the attack's
clean cell, the stability reference), from the same people's crops. :class:`CleanPassCache`
lets a later face reuse an earlier face's forward pass of those crops:

- ``adapter.outputs(crops)`` (the stability face; and the ``predict`` of every adapter
  without a torch model of its own: ONNX, TFLite, callables, which decode their
  ``outputs``) is answered per crop from memory when every crop of the batch was seen;
- ``adapter.predict(crops, metas, spec, flip_test)`` likewise, keyed also by the crop's
  center / scale (the back-projection) and ``flip_test``.

Keys are the crop's bytes (a BLAKE2b digest, looked up only when a cheap strided sample
of the crop matches a stored one), so a corrupted or attacked crop never matches a clean
one and a reused answer is the answer to the very same input. Answers are reused across
batch compositions: a crop's output must not depend on the other crops of its batch
(true of inference-mode networks; tests/test_card_run.py checks a face alone gives the
card's numbers). Only the first ``capacity`` crops per method are kept (the card gives the
number of people: the faces' first cell is the clean one), so attacked or corrupted
crops do not fill memory.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

#: one element in this many is the cheap pre-key of a crop
_STRIDE = 1009


def _crop_bytes(crops: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, H, W) -> N contiguous float32 arrays (the crops' exact values)."""
    flat = crops.detach().to("cpu").reshape(crops.shape[0], -1)
    return [row.numpy() for row in flat]


def _rows(value: Any) -> list:
    """A batch output -> its per-crop rows (copies: the batch may be reused by the caller)."""
    if isinstance(value, torch.Tensor):
        return [row.clone() for row in value]
    return [np.array(row, copy=True) for row in np.asarray(value)]


def _stack(rows: list) -> Any:
    return torch.stack(rows) if isinstance(rows[0], torch.Tensor) else np.stack(rows)


class CleanPassCache:
    """Memory of an adapter's answers for crops already seen (see the module docstring).

    ``capacity``: crops kept per method (``outputs``, ``predict``). Use as a context
    manager: :meth:`install` shadows the adapter's ``outputs`` / ``predict`` with caching
    ones on the instance (its class, type checks and other attributes untouched),
    :meth:`remove` restores them. ``hits`` / ``misses`` count crops."""

    def __init__(self, adapter: Any, capacity: int) -> None:
        self.adapter, self.capacity = adapter, int(capacity)
        self.hits = {"outputs": 0, "predict": 0}
        self.misses = {"outputs": 0, "predict": 0}
        self._pre: dict[str, set] = {"outputs": set(), "predict": set()}
        self._store: dict[str, dict] = {"outputs": {}, "predict": {}}
        self._shadowed: list[str] = []

    # --- keys -----------------------------------------------------------------------
    @staticmethod
    def _pre_key(row: np.ndarray, extra: bytes) -> bytes:
        return row[::_STRIDE].tobytes() + extra

    @staticmethod
    def _full_key(row: np.ndarray, extra: bytes) -> bytes:
        return hashlib.blake2b(row.tobytes() + extra, digest_size=20).digest()

    def _lookup(self, method: str, rows: list[np.ndarray], extras: list[bytes]) -> list | None:
        """The stored answers of every crop, or None when one is missing."""
        pre, store = self._pre[method], self._store[method]
        if not all(self._pre_key(r, e) in pre for r, e in zip(rows, extras)):
            return None
        found = [store.get(self._full_key(r, e)) for r, e in zip(rows, extras)]
        return None if any(f is None for f in found) else found

    def _keep(self, method: str, rows: list[np.ndarray], extras: list[bytes],
              answers: list) -> None:
        store = self._store[method]
        for row, extra, answer in zip(rows, extras, answers):
            if len(store) >= self.capacity:
                return
            self._pre[method].add(self._pre_key(row, extra))
            store[self._full_key(row, extra)] = answer

    # --- the shadowing methods --------------------------------------------------------
    def _outputs(self, inner: Any) -> Any:
        def outputs(crops: torch.Tensor) -> tuple[str, Any, Any]:
            rows, extras = _crop_bytes(crops), [b""] * crops.shape[0]
            found = self._lookup("outputs", rows, extras)
            if found is not None:
                self.hits["outputs"] += len(rows)
                return found[0][0], _stack([f[1] for f in found]), found[0][2]
            self.misses["outputs"] += len(rows)
            kind, out, codec = inner(crops)
            self._keep("outputs", rows, extras, [(kind, r, codec) for r in _rows(out)])
            return kind, out, codec
        return outputs

    def _predict(self, inner: Any) -> Any:
        def predict(crops: torch.Tensor, metas: dict, spec: Any, flip_test: bool) -> np.ndarray:
            rows = _crop_bytes(crops)
            where = np.concatenate([np.asarray(metas[k], np.float64).reshape(len(rows), -1)
                                    for k in ("center", "scale")], axis=1)
            tag = f"{bool(flip_test)}|{getattr(spec, 'name', id(spec))}".encode()
            extras = [w.tobytes() + tag for w in where]
            found = self._lookup("predict", rows, extras)
            if found is not None:
                self.hits["predict"] += len(rows)
                return _stack(found)
            self.misses["predict"] += len(rows)
            keypoints = inner(crops, metas, spec, flip_test)
            self._keep("predict", rows, extras, _rows(keypoints))
            return keypoints
        return predict

    def install(self) -> "CleanPassCache":
        for method, wrap in (("outputs", self._outputs), ("predict", self._predict)):
            inner = getattr(self.adapter, method, None)
            if inner is not None and method not in vars(self.adapter):
                setattr(self.adapter, method, wrap(inner))
                self._shadowed.append(method)
        return self

    def remove(self) -> None:
        for method in self._shadowed:
            delattr(self.adapter, method)
        self._shadowed = []

    def __enter__(self) -> "CleanPassCache":
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def summary(self) -> dict:
        """Crops answered from memory / computed, per method (the card's run.json)."""
        return {m: {"reused": self.hits[m], "computed": self.misses[m]} for m in self.hits}
