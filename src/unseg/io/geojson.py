"""Slide label maps as QuPath annotations in GeoJSON: :func:`label_geojson`, :func:`write_geojson`.

One feature per concept, its geometry the exact outline of the concept's pixels. Feature ids are
UUIDs derived with :func:`uuid.uuid5` from a fixed namespace and the concept id, so repeated
runs write the same ids. Slide label maps are described in :mod:`unseg.io.slide_labels`;
rasterio and shapely are imported only when polygons are made.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unseg._optional import optional_import
from unseg.errors import ParameterError
from unseg.io.atomic import atomic_write
from unseg.io.slide_labels import (
    SlideLabels,
    _checked_slide_labels,
    _concept_colours,
    _concept_names,
    _require_positive,
    _row_ranges,
    _storage_dtype,
)

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

__all__ = ["label_geojson", "write_geojson"]

_STRIP_ROWS = 4096  # rows of the label map polygonised at once
_FEATURE_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "unseg")  # namespace of the features' UUIDs


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
    scale = _require_positive("downsample", downsample)
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
        ``palette(K)[c]`` (the colour :func:`~unseg.io.colourize` gives concept ``c``).
    strip_rows : int
        Rows of the label map polygonised at once; bounds the memory, not the result.

    Returns
    -------
    dict
        A FeatureCollection. Each feature has a top-level ``"id"`` (a UUID, as QuPath writes,
        but not random: ``uuid5`` of ``f"label-{c}"`` in a fixed namespace, so concept ``c``
        gets the same id on every run), its ``"geometry"`` and ``"properties"``:
        ``"objectType": "annotation"``, ``"classification": {"name": name, "color": [r, g, b]}``
        and ``"label"``, the concept id ``v - 1``. Features are ordered by label value.

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
    components that reach a cut between strips have their edges on the cut split at each other's
    vertices and are joined with ``shapely.coverage_union_all`` (``shapely.union_all`` should
    GEOS reject them as a coverage), so the result is the same geometry as for the whole map at
    once, while memory holds one strip of pixels and the polygons.
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
