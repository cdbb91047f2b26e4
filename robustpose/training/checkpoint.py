"""Training checkpoints: atomic writes, ``weights_only=True`` loads, exact resume.

A checkpoint is a dict of tensors and plain Python types only (so it loads with
``torch.load(..., weights_only=True)``)::

    format        'robustpose-train'
    version       1
    model         the model's weights (unwrapped: no 'module.' prefix), and
    meta          {'format': 'robustpose', 'name', 'num_joints', 'extra', 'epoch', ...}:
                  robustpose.models' own layout, so ``load_checkpoint`` reads the weights
    config        the experiment config (plain dict)
    epoch         number of finished epochs (resume starts at this epoch index)
    best_metric, best_epoch
    optimizers, schedulers, scalers  {name: state_dict}; 'model' is the main optimizer
    extra_modules {name: state_dict} of the method's trained modules (its frozen modules,
                  e.g. a teacher, are not saved: the method rebuilds them from their
                  source); method: its state
    rng           {'numpy': bit-generator state, 'torch_cpu': uint8 tensor,
                   'torch_cuda': uint8 tensor or None}
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustpose.utils.io import atomic_write_bytes

FORMAT = "robustpose-train"
VERSION = 1


def numpy_rng_state(rng: np.random.Generator) -> dict:
    """The bit-generator state of ``rng`` (plain dict of str / int)."""
    return rng.bit_generator.state


def restore_numpy_rng(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus format tags) to ``path`` atomically (temp file + rename)."""
    payload = {"format": FORMAT, "version": VERSION, **payload}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a robustpose training checkpoint with ``weights_only=True``.

    Raises FileNotFoundError / ValueError with one line naming the file when it is
    missing, holds pickled code, or is not a robustpose training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, EOFError ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: cannot be loaded with weights_only=True "
                         f"(refusing pickled code or a damaged file): {first}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a robustpose training checkpoint "
                         f"(no format={FORMAT!r}); use it as model weights instead")
    if data.get("version", 0) > VERSION:
        raise ValueError(f"{path}: checkpoint version {data['version']} is newer than "
                         f"this robustpose ({VERSION})")
    return data
