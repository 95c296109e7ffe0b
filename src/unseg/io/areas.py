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
    _require_positive,
    _storage_dtype,
    _value_counts,
)

__all__ = ["AREA_COLUMNS", "MPP_SOURCES", "label_areas", "write_area_csv"]

AREA_COLUMNS = ("label", "name", "pixels", "area_um2", "percent_of_tissue", "mpp_source")
MPP_SOURCES = ("metadata", "given", "objective-power", "unknown")
"""Where the microns per pixel of an area table came from (the ``mpp_source`` column)."""


def label_areas(
    labels: SlideLabels,
    *,
    mpp: float,
    downsample: float = 1.0,
    names: Sequence[str] | None = None,
    mpp_source: str = "unknown",
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
    mpp_source : {"metadata", "given", "objective-power", "unknown"}
        Where ``mpp`` came from: the slide's metadata, given by the user (``--mpp``), or
        guessed from the objective power (``10 / power``); recorded in every row.

    Returns
    -------
    list of dict
        One row per concept present, by concept id, with the keys of :data:`AREA_COLUMNS`:
        ``label`` (concept id ``v - 1``), ``name``, ``pixels`` (label-map pixels),
        ``area_um2`` (``pixels * (mpp * downsample) ** 2``) and ``percent_of_tissue``
        (share of all non-zero pixels, in percent) and ``mpp_source``. Empty when no pixel is
        tissue.

    Raises
    ------
    ParameterError
        If ``labels`` is not a 2-D map of values in 0..65535, ``mpp``/``downsample`` are not
        positive, ``mpp_source`` is not one of :data:`MPP_SOURCES`, or ``names`` has fewer
        entries than the concepts present.
    """
    labels = _checked_slide_labels(labels)
    pixel_um = _require_positive("mpp", mpp) * _require_positive("downsample", downsample)
    if mpp_source not in MPP_SOURCES:
        raise ParameterError(
            f"mpp_source must be one of {', '.join(MPP_SOURCES)}, got {mpp_source!r}"
        )
    counts = _value_counts(labels, _storage_dtype(labels))
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
            "mpp_source": mpp_source,
        }
        for concept in concepts
    ]


def write_area_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write :func:`label_areas` rows atomically as CSV.

    The header is ``label,name,pixels,area_um2,percent_of_tissue,mpp_source``; ``area_um2`` is
    written with 3 decimals and ``percent_of_tissue`` with 4.

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
                str(row["mpp_source"]),
            ]
        )
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(AREA_COLUMNS)
        writer.writerows(lines)
    return Path(path)
