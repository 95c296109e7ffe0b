"""Slide label maps, the input of the per-slide exports, and the checks the exporters share.

A *slide label map* is a 2-D array at a processing resolution, ``uint8`` or ``uint16`` (any
non-negative integer type up to 65535 is accepted), possibly a :class:`numpy.memmap` larger than
memory should hold. Value ``0`` means no tissue (or not segmented); value ``v >= 1`` means
concept ``v - 1``. ``downsample`` is the number of level-0 slide pixels per label-map pixel (the
same in x and y) and ``mpp`` the microns per pixel of slide level 0. Besides arrays, the
exporters take any :class:`SlideLabels` object (``shape``, ``dtype`` and NumPy slicing), such as
a canvas that maps its file only for each read.

Every exporter (:mod:`unseg.io.ome_tiff`, :mod:`unseg.io.geojson`, :mod:`unseg.io.areas`) reads
the label map a strip of rows at a time, so memory stays bounded for memory-mapped input.
Colours follow the overlays: value ``v`` gets ``palette(...)[v - 1]``, the colour
:func:`unseg.io.colourize` gives concept ``v - 1`` in a concept label map.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from unseg.errors import ParameterError
from unseg.io.colour import palette

__all__ = ["SlideLabels"]

_COUNT_PIXELS = 1 << 22  # pixels counted at once (np.bincount makes an intp copy of them)


@runtime_checkable
class SlideLabels(Protocol):
    """A 2-D label map read by slicing, without loading it whole.

    :class:`numpy.ndarray` and :class:`numpy.memmap` qualify, and so does any object with
    ``shape``, ``dtype`` and ``__getitem__`` that answers basic slices (with steps) with
    arrays. The exporters read it only a strip or a tile at a time.
    """

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype: ...

    def __getitem__(self, key: Any) -> Any: ...


def _checked_slide_labels(labels: SlideLabels | np.ndarray) -> SlideLabels:
    """Check shape and type without reading the pixels (a memmap stays a memmap view)."""
    if not isinstance(labels, SlideLabels):
        labels = np.asarray(labels)
    shape, dtype = tuple(labels.shape), np.dtype(labels.dtype)
    if len(shape) != 2 or 0 in shape:
        raise ParameterError(f"expected a non-empty (H, W) slide label map, got shape {shape}")
    if dtype.kind not in "iu":
        raise ParameterError(
            f"expected integer label values (uint8 or uint16), got {dtype}; "
            "convert with labels.astype(np.uint16)"
        )
    return labels


def _row_ranges(n_rows: int, step: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _count_rows(labels: SlideLabels) -> int:
    """Rows per strip so that one strip holds about ``_COUNT_PIXELS`` pixels."""
    return max(1, _COUNT_PIXELS // labels.shape[1])


def _storage_dtype(labels: SlideLabels) -> np.dtype:
    """``uint8`` or ``uint16``: the input's own type, or the smallest that holds its values.

    Types other than ``uint8``/``uint16`` are scanned strip by strip for their range.
    """
    if labels.dtype in (np.uint8, np.uint16):
        return np.dtype(labels.dtype)
    low, high = 0, 0
    for start, stop in _row_ranges(labels.shape[0], _count_rows(labels)):
        strip = np.asarray(labels[start:stop])
        low, high = min(low, int(strip.min())), max(high, int(strip.max()))
    if low < 0:
        raise ParameterError(f"slide label values must be >= 0, got {low}")
    if high > 65535:
        raise ParameterError(
            f"slide label values go up to {high}; the exporters hold values up to 65535"
        )
    return np.dtype(np.uint8 if high < 256 else np.uint16)


def _value_counts(labels: SlideLabels, dtype: np.dtype) -> np.ndarray:
    """Pixels of each label value, ``counts[v]``, counted strip by strip (``dtype``'s range)."""
    counts = np.zeros(int(np.iinfo(dtype).max) + 1, dtype=np.int64)
    for start, stop in _row_ranges(labels.shape[0], _count_rows(labels)):
        strip = np.asarray(labels[start:stop]).astype(dtype, copy=False)
        counts += np.bincount(strip.ravel(), minlength=counts.size)
    return counts


def _require_positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be a positive number, got {value}")
    return value


def _concept_names(names: Sequence[str] | None, concepts: Sequence[int]) -> dict[int, str]:
    """Name of each concept in ``concepts``: ``names[c]`` or ``"concept c"``."""
    if names is None:
        return {c: f"concept {c}" for c in concepts}
    if isinstance(names, str):
        raise ParameterError("names must be a sequence of concept names, not one string")
    if concepts and max(concepts) >= len(names):
        raise ParameterError(
            f"{len(names)} names given, but the label map holds concept {max(concepts)} "
            f"(value {max(concepts) + 1}); give one name per concept, names[c] for value c + 1"
        )
    return {c: str(names[c]) for c in concepts}


def _concept_colours(colours: np.ndarray | None, concepts: Sequence[int]) -> dict[int, list[int]]:
    """RGB of each concept in ``concepts``: ``colours[c]`` or the overlay colour ``palette[c]``."""
    if not concepts:
        return {}
    if colours is None:
        table = palette(max(concepts) + 1)
    else:
        table = np.asarray(colours)
        if table.ndim != 2 or table.shape[1] != 3:
            raise ParameterError(f"colours must be (K, 3) RGB rows, got shape {table.shape}")
        if table.shape[0] <= max(concepts):
            raise ParameterError(
                f"{table.shape[0]} colours given, but the label map holds concept "
                f"{max(concepts)}; give one row per concept, colours[c] for value c + 1"
            )
        if table.size and (table.min() < 0 or table.max() > 255):
            raise ParameterError("colours must be RGB values in 0..255")
    return {c: [int(x) for x in table[c]] for c in concepts}
