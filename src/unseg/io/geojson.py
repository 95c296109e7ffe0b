"""Slide label maps as QuPath annotations in GeoJSON: :func:`label_geojson`, :func:`write_geojson`.

One feature per concept, its geometry the outline of the concept's pixels in level-0 slide
pixels: exact, or simplified as a coverage (neighbouring concepts keep sharing their edges),
optionally clipped to the slide. Feature ids are UUIDs derived with :func:`uuid.uuid5` from a
fixed namespace, the slide's identity and the concept id, so repeated runs write the same ids.
Slide label maps are described in :mod:`unseg.io.slide_labels`; rasterio and shapely are
imported only when polygons are made.
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

__all__ = ["SIMPLIFY", "label_geojson", "write_geojson"]

SIMPLIFY = 0.85
"""Default simplification tolerance of the GeoJSON outlines, in label-map pixels.

Times ``downsample`` it is the tolerance in level-0 pixels. Between ``sqrt(1 / 2)`` and 1 it
removes the corners of one-pixel stair steps only (see ``docs/slides.md`` for the measurements).
"""

_STRIP_ROWS = 4096  # rows of the label map polygonised at once
_FEATURE_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "unseg")  # namespace of the features' UUIDs
_KEEP_SIDE = 3.0  # components under (_KEEP_SIDE * tolerance)**2 px^2 keep their exact outline


def _strip_polygons(
    labels: SlideLabels, strip_rows: int, background: bool = False
) -> dict[int, list[Any]]:
    """The polygons of each label value, in label-map pixel-edge coordinates ``(x, y)``.

    Each strip of ``strip_rows`` rows is polygonised on its own (4-connected components, exact
    pixel edges); components that reach a cut between strips are joined with the ones across
    the cut (:func:`_join_at_cut`), so the result covers exactly the pixels of each value.
    Value 0 (no tissue) is polygonised too when ``background`` is true, else left out.
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
            mask=None if background else strip != 0,
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


def _level0_geometries(
    parts: dict[int, list[Any]],
    scale: float,
    shift: np.ndarray,
    slide_size: tuple[float, float] | None,
    simplify: float,
) -> dict[int, BaseGeometry]:
    """Each label value's Polygon or MultiPolygon in level-0 pixels, value 0 left out.

    ``parts`` (emptied here) holds each value's polygons in label-map pixels. They are scaled
    and shifted, clipped to ``slide_size`` (:func:`_clip_to_slide`) and, if ``simplify > 0``,
    simplified as one coverage with the value-0 polygons (:func:`_simplify_coverage`).
    """
    shapely = optional_import("shapely", "wsi")
    values = np.array([value for value, group in parts.items() for _ in group], dtype=np.int64)
    polygons = np.empty(values.size, dtype=object)
    polygons[:] = [polygon for group in parts.values() for polygon in group]
    parts.clear()
    polygons = shapely.transform(polygons, lambda xy: xy * scale + shift)
    if slide_size is not None:
        polygons, values = _clip_to_slide(polygons, values, slide_size)
    if simplify > 0:
        polygons, values = _simplify_coverage(polygons, values, simplify)
    order = np.argsort(values, kind="stable")
    found, starts = np.unique(values[order], return_index=True)
    geometries = {}
    for value, group in zip(found, np.split(polygons[order], starts[1:]), strict=True):
        if value > 0:
            geometries[int(value)] = group[0] if group.size == 1 else shapely.multipolygons(group)
    return geometries


def _clip_to_slide(
    polygons: np.ndarray, values: np.ndarray, slide_size: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Clip level-0 polygons to ``[0, width] x [0, height]``; pieces outside are dropped.

    Only the polygons that overshoot are clipped; a clipped polygon may come back in pieces,
    each with its value. Shared edges stay shared: the clip adds the same points to both sides.
    """
    shapely = optional_import("shapely", "wsi")
    width, height = slide_size
    bounds = shapely.bounds(polygons).reshape(-1, 4)
    over = (bounds[:, :2] < 0).any(axis=1) | (bounds[:, 2] > width) | (bounds[:, 3] > height)
    polygons = polygons.copy()
    polygons[over] = shapely.clip_by_rect(polygons[over], 0.0, 0.0, width, height)
    pieces, index = shapely.get_parts(polygons, return_index=True)
    return pieces, values[index]


def _node_coverage(polygons: np.ndarray) -> np.ndarray:
    """Add to every ring each vertex of ``polygons`` that lies inside one of its edges.

    The polygons have axis-parallel edges and tile the plane without overlaps (pixel outlines,
    clipped by a rectangle). Two polygons then share an edge point for point except where a
    third one meets the edge (a T-junction: a vertex of one side only); inserting every vertex
    into the edges it lies on makes them an edge-matched coverage, as
    ``shapely.coverage_simplify`` needs. Coordinates are compared exactly, as ranks.
    """
    shapely = optional_import("shapely", "wsi")
    if polygons.size == 0:
        return polygons
    kind, coords, (ring_ends, polygon_ends) = shapely.to_ragged_array(polygons)
    xs, x_rank = np.unique(coords[:, 0], return_inverse=True)
    ys, y_rank = np.unique(coords[:, 1], return_inverse=True)
    # every vertex as a key along its row (horizontal edges) and along its column (vertical)
    row_keys = np.unique(y_rank * xs.size + x_rank)
    column_keys = np.unique(x_rank * ys.size + y_rank)
    n = len(coords)
    edge = np.ones(n, dtype=bool)  # vertex i starts the edge i -> i + 1 of its ring
    edge[ring_ends[1:] - 1] = False
    start = np.flatnonzero(edge)
    inserted = np.zeros(n, dtype=np.int64)  # vertices inserted after vertex i
    first = np.zeros(n, dtype=np.int64)  # index in the keys of the first one
    step = np.zeros(n, dtype=np.int64)  # +1 or -1: the edge's direction along the keys
    horizontal = y_rank[start] == y_rank[start + 1]
    for edges, keys, line, along, size in (
        (start[horizontal], row_keys, y_rank, x_rank, xs.size),
        (start[~horizontal], column_keys, x_rank, y_rank, ys.size),
    ):
        a, b = along[edges], along[edges + 1]
        low = np.searchsorted(keys, line[edges] * size + np.minimum(a, b), "right")
        high = np.searchsorted(keys, line[edges] * size + np.maximum(a, b), "left")
        inserted[edges] = high - low
        first[edges] = np.where(a < b, low, high - 1)
        step[edges] = np.where(a < b, 1, -1)
    out_start = np.concatenate([[0], np.cumsum(1 + inserted)])
    out = np.empty((out_start[-1], 2))
    out[out_start[:-1]] = coords
    edges = np.flatnonzero(inserted)
    owner = np.repeat(edges, inserted[edges])
    nth = np.arange(owner.size) - np.repeat(
        np.cumsum(inserted[edges]) - inserted[edges], inserted[edges]
    )
    position = first[owner] + step[owner] * nth
    on_row = y_rank[owner] == y_rank[owner + 1]
    row_key = row_keys[np.where(on_row, position, 0)]
    column_key = column_keys[np.where(on_row, 0, position)]
    out[out_start[owner] + 1 + nth] = np.column_stack(
        [
            np.where(on_row, xs[row_key % xs.size], xs[column_key // ys.size]),
            np.where(on_row, ys[row_key // xs.size], ys[column_key % ys.size]),
        ]
    )
    return shapely.from_ragged_array(kind, out, (out_start[ring_ends], polygon_ends))


def _simplify_coverage(
    polygons: np.ndarray, values: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Simplify the polygons of a coverage together, so that shared edges stay shared.

    The polygons are put in a canonical form and order first (``shapely.normalize``: each ring
    starts at its smallest vertex; then sorted by bounds and area), so the result does not
    depend on how the label map was cut into strips. They are noded (:func:`_node_coverage`),
    then ``shapely.coverage_simplify`` (topology-preserving Visvalingam-Whyatt) simplifies the
    edges between them with ``tolerance``. Polygons smaller than
    ``(_KEEP_SIDE * tolerance) ** 2`` are left out of it and keep their exact outline, and so
    do the edges they share and the coverage's outer edge (``simplify_boundary=False``): a
    one-pixel speck would otherwise become a triangle and lose half its area. The result is
    still an edge-matched coverage.

    Returns
    -------
    tuple of ndarray
        The simplified polygons and their values, in the canonical order.
    """
    shapely = optional_import("shapely", "wsi")
    canonical = shapely.normalize(polygons)
    keys = np.column_stack([shapely.bounds(canonical).reshape(-1, 4), shapely.area(canonical)])
    order = np.lexsort(keys.T[::-1])
    noded = _node_coverage(canonical[order])
    free = shapely.area(noded) >= (_KEEP_SIDE * tolerance) ** 2
    noded[free] = shapely.coverage_simplify(noded[free], tolerance, simplify_boundary=False)
    return noded, values[order]


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
    slide_id: str | None,
    slide_size: tuple[float, float] | None,
    simplify: float | None,
) -> Iterator[tuple[dict[str, Any], BaseGeometry]]:
    """Check the arguments and make the geometries; the iterator gives each feature and geometry.

    The features come without ``"geometry"``; the geometries are in level-0 coordinates.
    """
    labels = _checked_slide_labels(labels)
    scale = _require_positive("downsample", downsample)
    shift = np.asarray(offset, dtype=np.float64)
    if shift.shape != (2,) or not np.isfinite(shift).all():
        raise ParameterError(f"offset must be two finite numbers (x, y), got {offset}")
    if isinstance(strip_rows, bool) or not isinstance(strip_rows, int) or strip_rows < 1:
        raise ParameterError(f"strip_rows must be a positive integer, got {strip_rows}")
    if slide_id is not None and not isinstance(slide_id, str):
        raise ParameterError(f"slide_id must be a string (the slide's identity), got {slide_id!r}")
    if slide_size is not None:
        if len(slide_size) != 2:
            raise ParameterError(f"slide_size must be (width, height), got {slide_size}")
        slide_size = (
            _require_positive("slide_size width", slide_size[0]),
            _require_positive("slide_size height", slide_size[1]),
        )
    tolerance = SIMPLIFY * scale if simplify is None else float(simplify)
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ParameterError(f"simplify must be a tolerance >= 0 (0 = exact), got {simplify}")
    parts = _strip_polygons(labels, strip_rows, background=tolerance > 0)
    present = [value - 1 for value in sorted(parts) if value > 0]
    class_names = _concept_names(names, present)
    class_colours = _concept_colours(colours, present)
    geometries = _level0_geometries(parts, scale, shift, slide_size, tolerance)
    prefix = "label-" if slide_id is None else f"{slide_id}/"

    def features() -> Iterator[tuple[dict[str, Any], BaseGeometry]]:
        for value in sorted(geometries):
            concept = value - 1
            classification = {"name": class_names[concept], "color": class_colours[concept]}
            feature = {
                "type": "Feature",
                # the same on every run, so a resumed or repeated run writes the same file
                "id": str(uuid.uuid5(_FEATURE_IDS, f"{prefix}{concept}")),
                "properties": {
                    "objectType": "annotation",
                    "classification": classification,
                    "measurements": {"concept": concept},
                    "label": concept,
                },
            }
            yield feature, geometries.pop(value)

    return features()


def label_geojson(
    labels: SlideLabels,
    *,
    downsample: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
    names: Sequence[str] | None = None,
    colours: np.ndarray | None = None,
    strip_rows: int = _STRIP_ROWS,
    slide_id: str | None = None,
    slide_size: tuple[float, float] | None = None,
    simplify: float | None = None,
) -> dict[str, Any]:
    """Outline each concept of a slide label map as a QuPath annotation (GeoJSON).

    One Feature per label value present (value 0, no tissue, has none). Its geometry is a
    Polygon, or a MultiPolygon of all its connected components, with holes as interior rings.
    Components are 4-connected (pixels touching only at a corner are separate polygons that
    share that corner), which keeps every geometry valid for shapely/GEOS and JTS. Coordinates
    are level-0 slide pixels ``(x, y)``: the label-map pixel edges times ``downsample`` plus
    ``offset``, clipped to the slide when ``slide_size`` is given.

    With ``simplify=0`` each geometry covers exactly the pixels of its value. With a tolerance
    ``simplify > 0`` (the default: 0.85 label-map pixels) the outlines of all values, no tissue
    included, are simplified together as one polygonal coverage, so neighbouring concepts
    still share their edges vertex for vertex: no gaps and no overlaps between them (Notes).

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
        Rows of the label map polygonised at once; bounds the memory for the pixels read, not
        the result (the polygons are held in memory).
    slide_id : str, optional
        The slide's identity (its id or file name), which makes the feature ids unique per
        slide and concept. Default: none, and then every slide's concept ``c`` gets the same
        id, so ids repeat across files.
    slide_size : tuple of float, optional
        Level-0 ``(width, height)`` of the slide (as ``slide.dimensions``). The geometries are
        clipped to ``[0, width] x [0, height]``: the label map's last row and column may reach
        past the slide's edge by up to ``downsample`` pixels. Default: not clipped.
    simplify : float, optional
        Simplification tolerance in level-0 pixels, about the square root of the largest
        triangle area a removed vertex may cut off or add; ``0`` keeps the exact pixel
        outlines. Default: ``SIMPLIFY * downsample`` (:data:`SIMPLIFY` = 0.85 label-map
        pixels), which removes the corners of one-pixel stair steps and keeps each concept's
        area within about 0.5% on the measured slides (``docs/slides.md``).

    Returns
    -------
    dict
        A FeatureCollection. Each feature has a top-level ``"id"`` (a UUID, as QuPath writes,
        but not random: ``uuid5`` of ``f"{slide_id}/{c}"``, or of ``f"label-{c}"`` without
        ``slide_id``, in a fixed namespace, so a repeated run writes the same ids), its
        ``"geometry"`` and ``"properties"``: ``"objectType": "annotation"``,
        ``"classification": {"name": name, "color": [r, g, b]}``,
        ``"measurements": {"concept": c}`` and ``"label": c``, the concept id ``v - 1``.
        Features are ordered by label value.

    Raises
    ------
    ParameterError
        If ``labels`` is not a 2-D map of values in 0..65535, ``downsample``, ``strip_rows``
        or ``slide_size`` is not positive, ``simplify`` is negative, ``slide_id`` is not a
        string, or ``names``/``colours`` have fewer entries than the concepts present.
    MissingDependencyError
        If rasterio or shapely is missing (``pip install 'unseg[wsi]'``).

    Notes
    -----
    *QuPath.* Its GeoJSON reader (``PathObjectTypeAdapters.PathObjectTypeAdapter.read`` in
    qupath-core, ``qupath.lib.io``) takes the feature's ``id`` as the object's UUID and, from
    ``properties``, only ``objectType``, ``name``, ``color``, ``classification``, ``isLocked``,
    ``measurements`` (a name -> number object, or a list of name/value pairs) and ``metadata``
    (string values); anything else, such as ``"label"``, is dropped on import. The concept id
    is therefore also in ``measurements``, where QuPath shows it as the measurement
    ``"concept"``; ``"label"`` stays for other readers.

    *Polygons.* Each strip of ``strip_rows`` rows is polygonised with
    ``rasterio.features.shapes``; the components that reach a cut between strips have their
    edges on the cut split at each other's vertices and are joined with
    ``shapely.coverage_union_all`` (``shapely.union_all`` should GEOS reject them as a
    coverage), so the result is the same geometry as for the whole map at once, while memory
    holds one strip of pixels and the polygons.

    *Simplification.* The components of every value (no tissue too, so that the tissue's
    outline is an inner edge) are first noded: a vertex of one polygon that lies inside an
    edge of another (where three values meet) is added to that edge, which makes them an
    edge-matched coverage. ``shapely.coverage_simplify`` (GEOS' topology-preserving
    Visvalingam-Whyatt coverage simplifier) then simplifies the edges between them; shared
    edges are simplified once, for both sides. Components smaller than
    ``(3 * simplify) ** 2`` level-0 pixels, and the edges they share, keep their exact outline
    (a one-pixel speck would otherwise become a triangle with half its area), and so do the
    label map's outer edge and the slide's edge. The polygons are put in a canonical order
    first, so the result does not depend on ``strip_rows``. No-tissue polygons are not
    written. The noding adds a vertex wherever three values meet along an edge, so on a
    speckled map (pixel-wise clustering) the simplified file can have a few percent more
    vertices than the exact one; on smoother maps it has fewer (``docs/slides.md``).
    """
    features = []
    for feature, geometry in _features(
        labels, downsample, offset, names, colours, strip_rows, slide_id, slide_size, simplify
    ):
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
    slide_id: str | None = None,
    slide_size: tuple[float, float] | None = None,
    simplify: float | None = None,
) -> Path:
    """Write :func:`label_geojson` atomically as compact JSON (QuPath: File > Import objects).

    The features are written one at a time (geometries by GEOS' GeoJSON writer, coordinates
    exact), so the file never exists whole in memory as Python objects.

    Parameters
    ----------
    path : str or Path
        Output file, ``.geojson`` by convention. Missing folders are created.
    labels, downsample, offset, names, colours, strip_rows, slide_id, slide_size, simplify
        As for :func:`label_geojson`.

    Returns
    -------
    Path
        ``path``.
    """
    shapely = optional_import("shapely", "wsi")
    features = _features(
        labels, downsample, offset, names, colours, strip_rows, slide_id, slide_size, simplify
    )
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write('{"type":"FeatureCollection","features":[')
        for i, (feature, geometry) in enumerate(features):
            text = json.dumps(feature, separators=(",", ":"), allow_nan=False)
            fh.write(("," if i else "") + text[:-1] + ',"geometry":')
            fh.write(shapely.to_geojson(geometry) + "}")
        fh.write("]}")
    return Path(path)
