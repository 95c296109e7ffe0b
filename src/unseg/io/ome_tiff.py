"""Slide label maps as tiled, pyramidal OME-TIFF files: :func:`write_ome_tiff`.

Slide label maps are described in :mod:`unseg.io.slide_labels`; tifffile and imagecodecs are
imported only when a file is written.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from unseg.errors import MissingDependencyError, ParameterError
from unseg.io.atomic import atomic_write
from unseg.io.slide_labels import (
    SlideLabels,
    _checked_slide_labels,
    _concept_colours,
    _concept_names,
    _require_positive,
    _storage_dtype,
    _value_counts,
)

__all__ = ["LEGEND_NAMESPACE", "SOURCE_NAMESPACE", "write_ome_tiff"]

LEGEND_NAMESPACE = "unseg/label-legend"
"""Namespace of the OME-XML MapAnnotation that maps label values to concepts."""
SOURCE_NAMESPACE = "unseg/source"
"""Namespace of the OME-XML MapAnnotation that names the source slide."""

_TIFF_BUFFER = 32 << 20  # bytes of tiles tifffile holds for its compression threads
_BIGTIFF_BYTES = 1 << 31  # uncompressed size above which the OME-TIFF is a BigTIFF
_OME_SUFFIXES = (".tif", ".tiff")


def _level_shapes(shape: tuple[int, int], tile: int) -> list[tuple[int, int]]:
    """Shapes of level 0 and of each halving until the longest side is at most ``tile``."""
    shapes = [shape]
    while max(shapes[-1]) > tile:
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


def _band_tiles(
    read_rows: Callable[[int, int], np.ndarray],
    shape: tuple[int, int],
    tile: int,
    halved: BinaryIO | None,
) -> Iterator[np.ndarray]:
    """The tiles of one pyramid level, row by row, read a band of ``tile`` rows at a time.

    ``read_rows(start, stop)`` gives rows ``start:stop`` of the level, ``(rows, width)``. When
    ``halved`` is a file, every band's nearest 2x reduction (``band[::2, ::2]``; ``tile`` is
    even, so the bands join up) is appended to it as raw row-major values: the next level.
    """
    height, width = shape
    for y in range(0, height, tile):
        band = read_rows(y, min(y + tile, height))
        if halved is not None:
            halved.write(np.ascontiguousarray(band[::2, ::2]).tobytes())
        for x in range(0, width, tile):
            yield band[:, x : x + tile]


def _label_rows(labels: SlideLabels, dtype: np.dtype) -> Callable[[int, int], np.ndarray]:
    """``read_rows`` for a slide label map: its rows as ``dtype``."""

    def read_rows(start: int, stop: int) -> np.ndarray:
        return np.ascontiguousarray(labels[start:stop], dtype=dtype)

    return read_rows


def _raw_rows(path: Path, width: int, dtype: np.dtype) -> Callable[[int, int], np.ndarray]:
    """``read_rows`` for a raw row-major file of ``width`` columns (plain reads, no mapping)."""

    def read_rows(start: int, stop: int) -> np.ndarray:
        values = np.fromfile(
            path, dtype=dtype, count=(stop - start) * width, offset=start * width * dtype.itemsize
        )
        return values.reshape(stop - start, width)

    return read_rows


def _legend(
    counts: np.ndarray, names: Sequence[str] | None, colours: np.ndarray | None
) -> dict[str, str]:
    """The label legend: value (as text) -> JSON of its concept, name and colour.

    Value 0 is always there (no tissue); each value ``v >= 1`` with pixels (``counts[v] > 0``)
    gets ``{"concept": v - 1, "name": ..., "color": [r, g, b]}``.
    """
    concepts = [int(c) for c in np.flatnonzero(counts[1:])]
    class_names = _concept_names(names, concepts)
    class_colours = _concept_colours(colours, concepts)
    legend = {"0": json.dumps({"name": "no tissue"})}
    for c in concepts:
        entry = {"concept": c, "name": class_names[c], "color": class_colours[c]}
        legend[str(c + 1)] = json.dumps(entry, ensure_ascii=False)
    return legend


def write_ome_tiff(
    path: str | Path,
    labels: SlideLabels,
    *,
    mpp: float,
    downsample: float = 1.0,
    tile: int = 512,
    compression: str = "zlib",
    names: Sequence[str] | None = None,
    colours: np.ndarray | None = None,
    channel_name: str = "concept labels",
    source: str | Path | None = None,
) -> Path:
    """Write a slide label map atomically as a tiled, pyramidal OME-TIFF.

    Level 0 holds ``labels`` as they are; each reduced level halves the one above with nearest
    sampling (every second pixel, so label values are never mixed), i.e. level ``i`` equals
    ``labels[::2**i, ::2**i]``, until the longest side is at most ``tile``. The reduced levels
    are SubIFDs of level 0 (the OME-TIFF pyramid layout); the OME-XML gives
    ``PhysicalSizeX``/``PhysicalSizeY`` ``= mpp * downsample`` micrometres and the TIFF
    resolution tags give each level's pixel size. ``labels`` is read twice, a strip at a time,
    so a :class:`numpy.memmap` is never loaded whole: once to find the values present (for the
    legend), then one band of ``tile`` rows at a time to write the tiles. While a level is
    written, its 2x reduction goes to a temporary raw file beside ``path`` (all of them
    together about a third of level 0's size, uncompressed), which the next level is then read
    from.

    The OME-XML also describes the labels: the one channel's ``Name`` is ``channel_name``, and
    the image refers to a ``MapAnnotation`` (in ``StructuredAnnotations``) with namespace
    :data:`LEGEND_NAMESPACE` whose keys are the label values, ``"0"`` and each value ``v``
    present, and whose values are JSON: ``{"name": "no tissue"}`` for ``"0"``, else
    ``{"concept": v - 1, "name": name, "color": [r, g, b]}`` with the names and colours of the
    GeoJSON export. With ``source``, a second ``MapAnnotation`` (namespace
    :data:`SOURCE_NAMESPACE`) holds ``{"slide": str(source)}``. Both are OME schema 2016-06
    elements written by tifffile; readers that do not know them (OpenSlide, tiffslide) ignore
    them.

    Parameters
    ----------
    path : str or Path
        Output file ending in ``.tif`` or ``.tiff`` (``.ome.tif`` by convention). Missing
        folders are created.
    labels : ndarray or SlideLabels
        ``(H, W)`` slide label map, ``uint8`` or ``uint16`` (other integer types are scanned
        and stored in the smaller of the two that holds their values).
    mpp : float
        Microns per pixel of slide level 0.
    downsample : float
        Level-0 slide pixels per label-map pixel.
    tile : int
        Tile side in pixels, a multiple of 16.
    compression : {"zlib", "zstd"}
        Lossless compression of the tiles. zlib (Adobe deflate) is read everywhere (libtiff,
        OpenSlide, Bio-Formats/QuPath); zstd is faster and smaller but not every reader has it.
    names : sequence of str, optional
        ``names[c]`` is the name of concept ``c`` (value ``c + 1``) in the legend; default
        ``"concept c"``.
    colours : ndarray, optional
        ``(K, 3)`` RGB, row ``c`` the legend colour of concept ``c``; default the overlay
        colours, ``palette(K)[c]``.
    channel_name : str
        Name of the image's one channel in the OME-XML.
    source : str or Path, optional
        The source slide, written as given (a path, or just its name to keep folders out of a
        shared file). Default: not recorded.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ParameterError
        If ``path`` is not a TIFF name, ``labels`` is not a 2-D map of values in 0..65535,
        ``mpp``/``downsample`` are not positive, ``tile`` is not a positive multiple of 16,
        ``compression`` is unknown, ``channel_name`` is not a string, or ``names``/``colours``
        have fewer entries than the concepts present.
    MissingDependencyError
        If the codec for ``compression`` is not installed.

    Notes
    -----
    OpenSlide (its generic TIFF reader) opens the file but sees level 0 only, since it does not
    follow SubIFDs, and reads it as RGBA: 8-bit values come back as gray levels equal to the
    values, 16-bit values scaled to 8 bits (``v // 256``, so small ids read as 0); its
    ``openslide.mpp-x``/``-y`` come from the resolution tags. tiffslide and tifffile see every
    level with the stored values, and QuPath reads OME-TIFF pyramids through Bio-Formats.
    """
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in _OME_SUFFIXES:
        raise ParameterError(f"cannot write {path}: OME-TIFF files end in .ome.tif or .tif")
    labels = _checked_slide_labels(labels)
    pixel_um = _require_positive("mpp", mpp) * _require_positive("downsample", downsample)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 16 or tile % 16:
        raise ParameterError(f"tile must be a positive multiple of 16, got {tile}")
    if compression not in ("zlib", "zstd"):
        raise ParameterError(f"compression must be 'zlib' or 'zstd', got {compression!r}")
    if not isinstance(channel_name, str):
        raise ParameterError(f"channel_name must be a string, got {channel_name!r}")
    import imagecodecs

    if not getattr(imagecodecs, compression.upper()).available:
        raise MissingDependencyError(
            f"imagecodecs has no {compression} codec here; use compression='zlib' or install "
            "an imagecodecs build with it (pip install imagecodecs)"
        )
    dtype = _storage_dtype(labels)
    legend = _legend(_value_counts(labels, dtype), names, colours)
    height, width = labels.shape
    shapes = _level_shapes((height, width), tile)
    raw_bytes = sum(h * w for h, w in shapes) * dtype.itemsize
    annotations: list[dict[str, Any]] = [
        {
            "Namespace": LEGEND_NAMESPACE,
            "Description": "label value -> concept: 0 = no tissue, v = concept v - 1 (JSON)",
            "Value": legend,
        }
    ]
    if source is not None:
        annotations.append({"Namespace": SOURCE_NAMESPACE, "Value": {"slide": str(source)}})
    metadata = {
        "axes": "YX",
        "PhysicalSizeX": pixel_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": pixel_um,
        "PhysicalSizeYUnit": "µm",
        "Channel": {"Name": channel_name},
        "MapAnnotation": annotations,
    }
    options: dict[str, Any] = {
        "dtype": dtype,
        "tile": (tile, tile),
        "photometric": "minisblack",
        "compression": compression,
        "resolutionunit": "CENTIMETER",
        "buffersize": _TIFF_BUFFER,
    }
    with (
        atomic_write(path) as tmp,
        tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=tmp.parent) as work,
        tifffile.TiffWriter(tmp, bigtiff=raw_bytes > _BIGTIFF_BYTES, ome=True) as tif,
    ):
        # level 0 is read from `labels`; each level, while written, leaves the next one in a
        # raw file, so every level is read once and no read spans more than one band of tiles
        read_rows = _label_rows(labels, dtype)
        for level, shape in enumerate(shapes):
            per_cm = 1e4 / (pixel_um * 2**level)
            extra = (
                {"subifds": len(shapes) - 1, "metadata": metadata}
                if level == 0
                else {"subfiletype": 1, "metadata": None}
            )
            below = Path(work) / f"level-{level + 1}.raw"
            with open(below, "wb") if level + 1 < len(shapes) else nullcontext() as halved:
                tiles = _band_tiles(read_rows, shape, tile, halved)
                tif.write(tiles, shape=shape, resolution=(per_cm, per_cm), **options, **extra)
            if level > 0:
                (Path(work) / f"level-{level}.raw").unlink()
            read_rows = _raw_rows(below, (shape[1] + 1) // 2, dtype)
    return path
