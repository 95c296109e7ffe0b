"""A label canvas on disk: slide-sized label maps written and read a window at a time."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from unseg.errors import InputError


def canvas_dtype(n_labels: int | None) -> np.dtype:
    """The smallest dtype for labels stored as ``label + 1`` (0 = none): uint8 when
    ``n_labels + 1`` ids fit, else uint16 (also for an unknown count)."""
    return np.dtype(np.uint8 if n_labels is not None and n_labels < 255 else np.uint16)


class DiskLabels:
    """A label canvas in a raw file, read and written a window at a time.

    Indexing maps the file only for that access, so reading a whole slide strip by strip (as
    the exporters do) never keeps more than a strip in memory.
    """

    def __init__(self, path: Path, shape: tuple[int, int], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)

    @classmethod
    def create(cls, path: Path, shape: tuple[int, int], dtype: np.dtype) -> DiskLabels:
        """A new canvas of zeros, its disk space reserved up front.

        Raises
        ------
        InputError
            When the disk cannot hold it: an error before any work, not a crash when a later
            write through the memory map finds no space.
        """
        size = shape[0] * shape[1] * np.dtype(dtype).itemsize
        try:
            with open(path, "wb") as f:
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(f.fileno(), 0, size)
                else:  # no way to reserve: a sparse file
                    f.truncate(size)
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise InputError(path, f"cannot reserve {size / 2**20:.0f} MiB for the label canvas "
                             f"({exc.strerror})", "free disk space or write to another --out "
                             "folder") from exc
        return cls(path, shape, dtype)

    def _map(self, mode: Literal["r", "r+"]) -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode=mode, shape=self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        canvas = self._map("r")
        try:
            return np.array(canvas[key])
        finally:
            del canvas

    def write(self, windows: Iterable[tuple[tuple[int, int], np.ndarray]]) -> None:
        """Write each ``((x, y), labels)`` window at its top-left corner and flush to disk."""
        canvas = self._map("r+")
        try:
            for (x, y), labels in windows:
                canvas[y : y + labels.shape[0], x : x + labels.shape[1]] = labels
            canvas.flush()
        finally:
            del canvas
        with open(self.path, "rb+") as f:
            os.fsync(f.fileno())
