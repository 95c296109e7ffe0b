"""Per-slide outputs of whole-slide segmentation: pyramidal OME-TIFF, QuPath GeoJSON, areas.

A *slide label map* is a 2-D array at a processing resolution, ``uint8`` or ``uint16`` (any
non-negative integer type up to 65535 is accepted), possibly a :class:`numpy.memmap` larger than
memory should hold. Value ``0`` means no tissue (or not segmented); value ``v >= 1`` means
concept ``v - 1``. ``downsample`` is the number of level-0 slide pixels per label-map pixel (the
same in x and y) and ``mpp`` the microns per pixel of slide level 0. Besides arrays, the
exporters take any :class:`SlideLabels` object (``shape``, ``dtype`` and NumPy slicing), such as
a canvas that maps its file only for each read.

Every function here reads the label map a strip of rows at a time, so memory stays bounded
for memory-mapped input. Colours follow the overlays: value ``v`` gets ``palette(...)[v - 1]``,
the colour :func:`unseg.io.colorize` gives concept ``v - 1`` in a concept label map.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

import numpy as np

from unseg._optional import optional_import
from unseg.errors import MissingDependencyError, ParameterError
from unseg.io.atomic import atomic_write
from unseg.io.colour import palette

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

__all__ = [
    "AREA_COLUMNS",
    "SlideLabels",
    "label_areas",
    "label_geojson",
    "write_area_csv",
    "write_geojson",
    "write_ome_tiff",
]

AREA_COLUMNS = ("label", "name", "pixels", "area_um2", "percent_of_tissue")

_STRIP_ROWS = 4096  # rows of the label map polygonised at once
_COUNT_PIXELS = 1 << 22  # pixels counted at once (np.bincount makes an intp copy of them)
_TIFF_BUFFER = 32 << 20  # bytes of tiles tifffile holds for its compression threads
_BIGTIFF_BYTES = 1 << 31  # uncompressed size above which the OME-TIFF is a BigTIFF
_OME_SUFFIXES = (".tif", ".tiff")
_FEATURE_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "unseg")  # namespace of the features' UUIDs


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


# -- checks shared by the writers ------------------------------------------------------------


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


def _positive(name: str, value: float) -> float:
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


# -- pyramidal OME-TIFF -----------------------------------------------------------------------


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


def write_ome_tiff(
    path: str | Path,
    labels: SlideLabels,
    *,
    mpp: float,
    downsample: float = 1.0,
    tile: int = 512,
    compression: str = "zlib",
) -> Path:
    """Write a slide label map atomically as a tiled, pyramidal OME-TIFF.

    Level 0 holds ``labels`` as they are; each reduced level halves the one above with nearest
    sampling (every second pixel, so label values are never mixed), i.e. level ``i`` equals
    ``labels[::2**i, ::2**i]``, until the longest side is at most ``tile``. The reduced levels
    are SubIFDs of level 0 (the OME-TIFF pyramid layout); the OME-XML gives
    ``PhysicalSizeX``/``PhysicalSizeY`` ``= mpp * downsample`` micrometres and the TIFF
    resolution tags give each level's pixel size. ``labels`` is read once, one band of ``tile``
    rows at a time, so a :class:`numpy.memmap` is never loaded whole: while a level is written,
    its 2x reduction goes to a temporary raw file beside ``path`` (all of them together about a
    third of level 0's size, uncompressed), which the next level is then read from.

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

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ParameterError
        If ``path`` is not a TIFF name, ``labels`` is not a 2-D map of values in 0..65535,
        ``mpp``/``downsample`` are not positive, ``tile`` is not a positive multiple of 16, or
        ``compression`` is unknown.
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
    pixel_um = _positive("mpp", mpp) * _positive("downsample", downsample)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 16 or tile % 16:
        raise ParameterError(f"tile must be a positive multiple of 16, got {tile}")
    if compression not in ("zlib", "zstd"):
        raise ParameterError(f"compression must be 'zlib' or 'zstd', got {compression!r}")
    import imagecodecs

    if not getattr(imagecodecs, compression.upper()).available:
        raise MissingDependencyError(
            f"imagecodecs has no {compression} codec here; use compression='zlib' or install "
            "an imagecodecs build with it (pip install imagecodecs)"
        )
    dtype = _storage_dtype(labels)
    height, width = labels.shape
    shapes = _level_shapes((height, width), tile)
    raw_bytes = sum(h * w for h, w in shapes) * dtype.itemsize
    metadata = {
        "axes": "YX",
        "PhysicalSizeX": pixel_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": pixel_um,
        "PhysicalSizeYUnit": "µm",
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


# -- QuPath GeoJSON ---------------------------------------------------------------------------


def _strip_polygons(labels: SlideLabels, strip_rows: int) -> dict[int, list[Any]]:
    """The polygons of each label value, in label-map pixel-edge coordinates ``(x, y)``.

    Each strip of ``strip_rows`` rows is polygonised on its own (4-connected components, exact
    pixel edges); components that reach a cut between strips are joined with the ones across
    the cut (:func:`_join_at_cut`), so the result covers exactly the pixels of each value.
    """
    features = optional_import("rasterio.features", "wsi")
    transform = optional_import("rasterio.transform", "wsi")
    shapely = optional_import("shapely", "wsi")
    dtype = _storage_dtype(labels)
    height = labels.shape[0]
    done: dict[int, list[Any]] = {}
    pending: dict[int, list[Any]] = {}  # parts that reach the cut above the next strip

    for start, stop in _row_ranges(height, strip_rows):
        below: dict[int, list[Any]] = {}  # parts that reach the cut below this strip

        def place(value: int, part: Any, stop: int = stop, below: dict = below) -> None:
            if stop < height and part.bounds[3] == stop:
                below.setdefault(value, []).append(part)
            else:
                done.setdefault(value, []).append(part)

        strip = np.ascontiguousarray(labels[start:stop], dtype=dtype)
        at_cut: dict[int, list[Any]] = {}
        shapes = features.shapes(
            strip,
            mask=strip != 0,
            connectivity=4,
            transform=transform.Affine.translation(0, start),
        )
        for geometry, value in shapes:
            rings = [np.asarray(ring, dtype=np.float64) for ring in geometry["coordinates"]]
            part = shapely.Polygon(rings[0], rings[1:])
            if start > 0 and part.bounds[1] == start:
                at_cut.setdefault(int(value), []).append(part)
            else:
                place(int(value), part)
        del strip
        for value in pending.keys() | at_cut.keys():
            group = pending.get(value, []) + at_cut.get(value, [])
            if value in pending and value in at_cut:
                group = _join_at_cut(group, float(start))
            for part in group:
                place(value, part)
        pending = below
    return done


def _node_ring(ring: np.ndarray, cut: float, xs: np.ndarray) -> np.ndarray:
    """Insert the points ``(x, cut)``, ``x`` in ``xs`` (sorted), into the ring's edges on the cut.

    ``ring`` is ``(n, 2)``; edges along ``y = cut`` get every ``x`` of ``xs`` strictly between
    their ends, in the edge's direction, so that edges shared across the cut match exactly.
    """
    y = ring[:, 1]
    pieces, last = [], 0
    for i in np.flatnonzero((y[:-1] == cut) & (y[1:] == cut)).tolist():
        x0, x1 = ring[i, 0], ring[i + 1, 0]
        low, high = min(x0, x1), max(x0, x1)
        inside = xs[np.searchsorted(xs, low, "right") : np.searchsorted(xs, high, "left")]
        if inside.size:
            pieces += [
                ring[last : i + 1],
                np.column_stack([inside[:: 1 if x0 < x1 else -1], np.full(inside.size, cut)]),
            ]
            last = i + 1
    return np.concatenate([*pieces, ring[last:]]) if pieces else ring


def _join_at_cut(parts: list[Any], cut: float) -> list[Any]:
    """Join the polygons of one value that share edges along the line ``y = cut``.

    The polygons lie on either side of the cut and do not overlap. Their edges on the cut are
    split at each other's vertices there, which makes them an exactly noded polygonal coverage,
    so GEOS' coverage union (linear time, exact) joins them; a general union is the fallback.
    Vertices left in the middle of straight edges where the cut was are removed.

    Returns
    -------
    list
        The joined polygons (pieces that touch only at a corner stay separate).
    """
    shapely = optional_import("shapely", "wsi")
    rings = [
        [shapely.get_coordinates(ring) for ring in (part.exterior, *part.interiors)]
        for part in parts
    ]
    xs = np.unique(np.concatenate([r[r[:, 1] == cut, 0] for part in rings for r in part]))
    noded = []
    for part in rings:
        shell, *holes = (_node_ring(ring, cut, xs) for ring in part)
        noded.append(shapely.Polygon(shell, holes))
    try:
        joined = shapely.coverage_union_all(noded)
    except shapely.errors.GEOSException:  # not expected: the inputs are noded above
        joined = shapely.union_all(parts)
    result = []
    for part in getattr(joined, "geoms", [joined]):
        shell, *holes = (
            _drop_collinear(shapely.get_coordinates(ring))
            for ring in (part.exterior, *part.interiors)
        )
        result.append(shapely.Polygon(shell, holes))
    return result


def _drop_collinear(ring: np.ndarray) -> np.ndarray:
    """Remove the vertices in the middle of straight edges from a closed axis-parallel ring."""
    points = ring[:-1]
    before, after = np.roll(points, 1, axis=0), np.roll(points, -1, axis=0)
    same = (before == points) & (points == after)
    kept = points[~(same[:, 0] | same[:, 1])]
    return np.concatenate([kept, kept[:1]])


def _as_geometry(parts: list[Any], downsample: float, offset: np.ndarray) -> BaseGeometry:
    """One Polygon or MultiPolygon of ``parts``, scaled and shifted to level-0 pixels."""
    shapely = optional_import("shapely", "wsi")
    geometry = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    return shapely.transform(geometry, lambda xy: xy * downsample + offset)


def _geojson_geometry(geometry: BaseGeometry) -> dict[str, Any]:
    """GeoJSON mapping of a Polygon or MultiPolygon, with lists (faster than ``mapping``)."""
    shapely = optional_import("shapely", "wsi")
    _, coords, (ring_ends, polygon_ends, *_) = shapely.to_ragged_array([geometry])
    points = coords.tolist()
    rings = [points[a:b] for a, b in zip(ring_ends[:-1], ring_ends[1:], strict=True)]
    polygons = [rings[a:b] for a, b in zip(polygon_ends[:-1], polygon_ends[1:], strict=True)]
    if geometry.geom_type == "Polygon":
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


def _features(
    labels: SlideLabels,
    downsample: float,
    offset: tuple[float, float],
    names: Sequence[str] | None,
    colours: np.ndarray | None,
    strip_rows: int,
) -> Iterator[tuple[dict[str, Any], BaseGeometry]]:
    """Check the arguments and polygonise; the iterator gives each feature and its geometry.

    The features come without ``"geometry"``; the geometries are in level-0 coordinates.
    """
    labels = _checked_slide_labels(labels)
    scale = _positive("downsample", downsample)
    shift = np.asarray(offset, dtype=np.float64)
    if shift.shape != (2,) or not np.isfinite(shift).all():
        raise ParameterError(f"offset must be two finite numbers (x, y), got {offset}")
    if isinstance(strip_rows, bool) or not isinstance(strip_rows, int) or strip_rows < 1:
        raise ParameterError(f"strip_rows must be a positive integer, got {strip_rows}")
    parts = _strip_polygons(labels, strip_rows)
    concepts = [value - 1 for value in sorted(parts)]
    class_names = _concept_names(names, concepts)
    class_colours = _concept_colours(colours, concepts)

    def features() -> Iterator[tuple[dict[str, Any], BaseGeometry]]:
        for concept in concepts:
            classification = {"name": class_names[concept], "color": class_colours[concept]}
            feature = {
                "type": "Feature",
                # the same on every run, so a resumed or repeated run writes the same file
                "id": str(uuid.uuid5(_FEATURE_IDS, f"label-{concept}")),
                "properties": {
                    "objectType": "annotation",
                    "classification": classification,
                    "label": concept,
                },
            }
            yield feature, _as_geometry(parts.pop(concept + 1), scale, shift)

    return features()


def label_geojson(
    labels: SlideLabels,
    *,
    downsample: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
    names: Sequence[str] | None = None,
    colours: np.ndarray | None = None,
    strip_rows: int = _STRIP_ROWS,
) -> dict[str, Any]:
    """Outline each concept of a slide label map as a QuPath annotation (GeoJSON).

    One Feature per label value present (value 0, no tissue, has none). Its geometry covers
    exactly the pixels of that value: a Polygon, or a MultiPolygon of all its connected
    components, with holes as interior rings. Components are 4-connected (pixels touching only
    at a corner are separate polygons that share that corner), which keeps every geometry valid
    for shapely/GEOS and JTS. Coordinates are level-0 slide pixels ``(x, y)``: the label-map
    pixel edges times ``downsample`` plus ``offset``.

    Parameters
    ----------
    labels : ndarray or SlideLabels
        ``(H, W)`` slide label map, ``uint8`` or ``uint16``, read a strip at a time;
        value ``v >= 1`` is concept ``v - 1``.
    downsample : float
        Level-0 slide pixels per label-map pixel.
    offset : tuple of float
        ``(x, y)`` level-0 position of the label map's top-left corner.
    names : sequence of str, optional
        ``names[c]`` is the class name of concept ``c`` (value ``c + 1``); default
        ``"concept c"``.
    colours : ndarray, optional
        ``(K, 3)`` RGB, row ``c`` the colour of concept ``c``; default the overlay colours,
        ``palette(K)[c]`` (the colour :func:`~unseg.io.colorize` gives concept ``c``).
    strip_rows : int
        Rows of the label map polygonised at once; bounds the memory, not the result.

    Returns
    -------
    dict
        A FeatureCollection. Each feature has a top-level ``"id"`` (a random UUID, as QuPath
        writes), its ``"geometry"`` and ``"properties"``: ``"objectType": "annotation"``,
        ``"classification": {"name": name, "color": [r, g, b]}`` and ``"label"``, the concept id
        ``v - 1``. Features are ordered by label value.

    Raises
    ------
    ParameterError
        If ``labels`` is not a 2-D map of values in 0..65535, ``downsample`` or ``strip_rows``
        is not positive, or ``names``/``colours`` have fewer entries than the concepts present.
    MissingDependencyError
        If rasterio or shapely is missing (``pip install 'unseg[wsi]'``).

    Notes
    -----
    Each strip of ``strip_rows`` rows is polygonised with ``rasterio.features.shapes``; the
    components that reach a cut between strips are joined with ``shapely.unary_union``, so the
    result is the same geometry as for the whole map at once, while memory holds one strip of
    pixels and the polygons.
    """
    features = []
    for feature, geometry in _features(labels, downsample, offset, names, colours, strip_rows):
        feature["geometry"] = _geojson_geometry(geometry)
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def write_geojson(
    path: str | Path,
    labels: SlideLabels,
    *,
    downsample: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
    names: Sequence[str] | None = None,
    colours: np.ndarray | None = None,
    strip_rows: int = _STRIP_ROWS,
) -> Path:
    """Write :func:`label_geojson` atomically as compact JSON (QuPath: File > Import objects).

    The features are written one at a time (geometries by GEOS' GeoJSON writer, coordinates
    exact), so the file never exists whole in memory as Python objects.

    Parameters
    ----------
    path : str or Path
        Output file, ``.geojson`` by convention. Missing folders are created.
    labels, downsample, offset, names, colours, strip_rows
        As for :func:`label_geojson`.

    Returns
    -------
    Path
        ``path``.
    """
    shapely = optional_import("shapely", "wsi")
    features = _features(labels, downsample, offset, names, colours, strip_rows)
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write('{"type":"FeatureCollection","features":[')
        for i, (feature, geometry) in enumerate(features):
            text = json.dumps(feature, separators=(",", ":"), allow_nan=False)
            fh.write(("," if i else "") + text[:-1] + ',"geometry":')
            fh.write(shapely.to_geojson(geometry) + "}")
        fh.write("]}")
    return Path(path)


# -- areas ------------------------------------------------------------------------------------


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
    pixel_um = _positive("mpp", mpp) * _positive("downsample", downsample)
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
