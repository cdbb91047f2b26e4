"""Epoch logs: a CSV file (rewritten atomically, columns grow as metrics appear) and
TensorBoard scalars when the ``tensorboard`` package is installed (skipped otherwise)."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from robustpose.utils.io import atomic_write_text


class EpochLog:
    """One row per epoch in ``<output_dir>/log.csv``; resumed runs keep earlier rows."""

    def __init__(self, output_dir: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(output_dir) / "log.csv"
        self.enabled = enabled
        self.rows: list[dict[str, Any]] = []
        self.writer = None
        if not enabled:
            return
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as fh:
                self.rows = list(csv.DictReader(fh))
        try:  # TensorBoard only when installed; silently skipped otherwise
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))
        except Exception:
            self.writer = None

    def log(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        epoch = row.get("epoch")
        self.rows = [r for r in self.rows if str(r.get("epoch")) != str(epoch)] + [row]
        columns: list[str] = []
        for r in self.rows:
            columns += [c for c in r if c not in columns]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, text.getvalue())
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, int(epoch))
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
