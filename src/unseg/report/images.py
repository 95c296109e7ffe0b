"""The pictures of a report: thumbnails, overlays painted at thumbnail size, and the example
tiles where each label is most present."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Longest side of a gallery thumbnail, in pixels (images are never enlarged).
THUMB_SIDE = 256
#: Side of an example tile, in pixels of the label map (smaller images give smaller tiles).
EXAMPLE_SIDE = 128
#: Example tiles shown per label.
EXAMPLES_PER_LABEL = 6
#: Opacity of the label colours over the image, as in the overlays of a run.
ALPHA = 0.5


def thumbnail_size(shape: tuple[int, ...], side: int = THUMB_SIDE) -> tuple[int, int]:
    """``(height, width)`` of an image of ``shape`` shrunk so its longest side is at most
    ``side``, with its aspect ratio (never enlarged)."""
    height, width = shape[:2]
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGB ``uint8`` image resized to ``size`` ``(height, width)`` by area averaging (gray
    and 16-bit images are converted first)."""
    from PIL import Image

    if image.dtype == np.uint16:
        image = np.round(image / 257.0).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[:2] == size:
        return image
    resized = Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.BOX)
    return np.asarray(resized)


def shrink_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A label map resized to ``size`` ``(height, width)``, nearest pixel centre."""
    rows = ((np.arange(size[0]) + 0.5) * labels.shape[0] / size[0]).astype(int)
    cols = ((np.arange(size[1]) + 0.5) * labels.shape[1] / size[1]).astype(int)
    return labels[np.ix_(rows, cols)]


def paint(image: np.ndarray, labels: np.ndarray, colours: np.ndarray,
          ignore: int | None = None) -> np.ndarray:
    """The labels' ``colours`` blended over an RGB image as in a run's overlays; pixels whose
    label is ``ignore`` keep the image."""
    from unseg.io import overlay

    painted = overlay(image, labels, alpha=ALPHA, colours=colours)
    if ignore is not None:
        painted = np.where((labels == ignore)[..., None], image, painted)
    return painted


def save_jpeg(path: Path, image: np.ndarray) -> str:
    """Write an RGB image as JPEG, atomically; returns the file name."""
    _save(path, image, "JPEG", quality=85)
    return path.name


def save_png(path: Path, image: np.ndarray) -> str:
    """Write an RGB or RGBA image as PNG, atomically; returns the file name."""
    _save(path, image, "PNG", compress_level=1)
    return path.name


def _save(path: Path, image: np.ndarray, kind: str, **options: Any) -> None:
    from PIL import Image

    from unseg.io import atomic_write

    with atomic_write(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format=kind, **options)


def best_windows(labels: np.ndarray, side: int, ids: np.ndarray
                 ) -> dict[int, tuple[float, int, int]]:
    """For each id in ``ids``, the ``side`` x ``side`` window of ``labels`` it covers most:
    ``id -> (fraction of the window, top, left)``."""
    found = {}
    for label in ids:
        inside = np.pad((labels == label).astype(np.int32), ((1, 0), (1, 0)))
        total = inside.cumsum(0).cumsum(1)
        sums = (total[side:, side:] - total[:-side, side:] - total[side:, :-side]
                + total[:-side, :-side])
        top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
        found[int(label)] = (float(sums[top, left]) / side**2, int(top), int(left))
    return found


@dataclass(order=True)
class _Entry:
    score: float
    order: int
    caption: str = field(compare=False)
    payload: Any = field(compare=False)


class Examples:
    """The ``per_label`` best offers of each label, by score (ties: the first offered).

    A payload is whatever the caller needs to make the tile later: the crop itself, or where
    to read it.
    """

    def __init__(self, per_label: int = EXAMPLES_PER_LABEL) -> None:
        self.per_label = per_label
        self._best: dict[int, list[_Entry]] = {}
        self._offered = 0

    def offer(self, label: int, score: float, caption: str, payload: Any) -> None:
        heap = self._best.setdefault(label, [])
        self._offered += 1
        entry = _Entry(score, -self._offered, caption, payload)
        if len(heap) < self.per_label:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            heapq.heapreplace(heap, entry)

    def best(self) -> dict[int, list[tuple[float, str, Any]]]:
        """``label -> [(score, caption, payload), ...]``, best first, labels in order."""
        return {label: [(e.score, e.caption, e.payload) for e in sorted(heap, reverse=True)]
                for label, heap in sorted(self._best.items())}
