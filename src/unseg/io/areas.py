"""Area of each concept of a slide label map: :func:`label_areas` and :func:`write_area_csv`.

Slide label maps are described in :mod:`unseg.io.slide_labels`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unseg.errors import ParameterError
from unseg.io.atomic import atomic_write
from unseg.io.slide_labels import (
    SlideLabels,
    _checked_slide_labels,
    _concept_names,
    _count_rows,
    _require_positive,
    _row_ranges,
    _storage_dtype,
)

__all__ = ["AREA_COLUMNS", "label_areas", "write_area_csv"]

AREA_COLUMNS = ("label", "name", "pixels", "area_um2", "percent_of_tissue")


def label_areas(
    labels: SlideLabels,
    *,
    mpp: float,
    downsample: float = 1.0,
    names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Area of each concept of a slide label map, counted strip by strip.

    Parameters
    ----------
    labels : ndarray or SlideLabels
        ``(H, W)`` slide label map, ``uint8`` or ``uint16``, read a strip at a time;
        value ``v >= 1`` is concept ``v - 1``.
    mpp : float
        Microns per pixel of slide level 0.
    downsample : float
        Level-0 slide pixels per label-map pixel.
    names : sequence of str, optional
        ``names[c]`` is the name of concept ``c``; default ``"concept c"``.

    Returns
    -------
    list of dict
        One row per concept present, by concept id, with the keys of :data:`AREA_COLUMNS`:
        ``label`` (concept id ``v - 1``), ``name``, ``pixels`` (label-map pixels),
        ``area_um2`` (``pixels * (mpp * downsample) ** 2``) and ``percent_of_tissue``
        (share of all non-zero pixels, in percent). Empty when no pixel is tissue.

    Raises
    ------
    ParameterError
        If ``labels`` is not a 2-D map of values in 0..65535, ``mpp``/``downsample`` are not
        positive, or ``names`` has fewer entries than the concepts present.
    """
    labels = _checked_slide_labels(labels)
    pixel_um = _require_positive("mpp", mpp) * _require_positive("downsample", downsample)
    dtype = _storage_dtype(labels)
    counts = np.zeros(int(np.iinfo(dtype).max) + 1, dtype=np.int64)
    for start, stop in _row_ranges(labels.shape[0], _count_rows(labels)):
        strip = np.asarray(labels[start:stop]).astype(dtype, copy=False)
        counts += np.bincount(strip.ravel(), minlength=counts.size)
    counts[0] = 0
    tissue = int(counts.sum())
    concepts = [int(v) - 1 for v in np.flatnonzero(counts)]
    class_names = _concept_names(names, concepts)
    return [
        {
            "label": concept,
            "name": class_names[concept],
            "pixels": int(counts[concept + 1]),
            "area_um2": float(counts[concept + 1]) * pixel_um**2,
            "percent_of_tissue": 100.0 * float(counts[concept + 1]) / tissue,
        }
        for concept in concepts
    ]


def write_area_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write :func:`label_areas` rows atomically as CSV.

    The header is ``label,name,pixels,area_um2,percent_of_tissue``; ``area_um2`` is written
    with 3 decimals and ``percent_of_tissue`` with 4.

    Parameters
    ----------
    path : str or Path
        Output file, ``.csv`` by convention. Missing folders are created.
    rows : sequence of mapping
        Rows with (at least) the keys of :data:`AREA_COLUMNS`.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ParameterError
        If a row lacks one of the columns.
    """
    lines = []
    for i, row in enumerate(rows):
        missing = [key for key in AREA_COLUMNS if key not in row]
        if missing:
            raise ParameterError(f"area row {i} lacks {', '.join(missing)}; use label_areas")
        lines.append(
            [
                int(row["label"]),
                str(row["name"]),
                int(row["pixels"]),
                f"{float(row['area_um2']):.3f}",
                f"{float(row['percent_of_tissue']):.4f}",
            ]
        )
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(AREA_COLUMNS)
        writer.writerows(lines)
    return Path(path)
