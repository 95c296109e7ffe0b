"""Slide exports on a large synthetic label map: QuPath GeoJSON, pyramidal OME-TIFF, areas.

Run from the repository root:

    .venv/bin/python benchmarks/geojson_export.py [--size 20000] [--labels 8] [--seed 0]
        [--strip-rows 4096] [--tile 512] [--dir DIR] [--simplify T1,T2,...]
        [--label-map OUT/SLIDE.ome.tif]

A ``size x size`` ``uint8`` slide label map is built as a :class:`numpy.memmap` in a temporary
folder (or ``--dir``), strip by strip: smooth noise (three octaves of smoothstep-interpolated
random grids, blobs of about 1000, 250 and 60 pixels) cut at its quantiles into ``--labels``
concepts (values 1..labels), with a second, coarser noise field marking about a quarter of the
map as no tissue (value 0). Each export then runs in a fresh process that opens the memmap
read-only, so each row's peak RSS (``resource.getrusage``, the process's own high-water mark)
is that export's alone; it includes the interpreter and imports (the ``baseline`` row) and the
memmap pages read, which are file-backed and reclaimable. The ``windowed`` rows read the same
file through an object that maps it only for each strip or tile (as the slide runner's canvas
does), so their peak RSS is the exporter's own memory. Prints a markdown table.

A second table compares the GeoJSON simplification tolerances ``--simplify`` (level-0 pixels;
default the exporter's, ``SIMPLIFY * downsample``) with the exact pixel outlines (tolerance 0):
vertices, file size, the largest change of a concept's area (relative to its exact area) and
the seconds of ``write_geojson``, each in a fresh process.

``--label-map`` runs both tables on a real label map instead: the ``<slide>.ome.tif`` that
``unseg slide segment`` wrote (level 0 is read whole), with the downsample and microns per pixel
of the ``<slide>.json`` summary beside it, and the geometries clipped to the slide's level-0 size
when the slide is still at the path the summary gives.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

OCTAVES = ((1024, 1.0), (256, 0.5), (64, 0.25))  # (cell size in pixels, weight)
TISSUE_OCTAVES = ((2048, 1.0), (512, 0.4))
TISSUE_SHARE = 0.75
MPP = 0.25
DOWNSAMPLE = 16.0


def smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


class Noise:
    """Smooth 2-D noise over ``size x size`` pixels, evaluated a strip of rows at a time."""

    def __init__(self, size: int, octaves: tuple[tuple[int, float], ...], seed: int) -> None:
        rng = np.random.default_rng(seed)
        cols = np.arange(size)
        self.layers = []
        for cell, weight in octaves:
            n = size // cell + 2
            grid = rng.standard_normal((n, n)).astype(np.float32) * weight
            i, s = cols // cell, smoothstep((cols % cell) / cell).astype(np.float32)
            across = (1.0 - s) * grid[:, i] + s * grid[:, i + 1]  # (n, size): x interpolated
            self.layers.append((cell, across))

    def rows(self, start: int, stop: int) -> np.ndarray:
        """``(stop - start, size)`` float32 noise values."""
        rows = np.arange(start, stop)
        total = None
        for cell, across in self.layers:
            i, s = rows // cell, smoothstep((rows % cell) / cell).astype(np.float32)[:, None]
            value = (1.0 - s) * across[i] + s * across[i + 1]
            total = value if total is None else total + value
        assert total is not None
        return total


def build_map(path: Path, size: int, n_labels: int, seed: int) -> None:
    """Write the synthetic label map to ``path`` as a ``(size, size)`` uint8 memmap."""
    concept, tissue = Noise(size, OCTAVES, seed), Noise(size, TISSUE_OCTAVES, seed + 1)
    sample_rows = range(0, size, max(1, size // 64))
    c_sample = np.concatenate([concept.rows(r, r + 1).ravel() for r in sample_rows])
    t_sample = np.concatenate([tissue.rows(r, r + 1).ravel() for r in sample_rows])
    cuts = np.quantile(c_sample, np.arange(1, n_labels) / n_labels).astype(np.float32)
    tissue_cut = np.float32(np.quantile(t_sample, 1.0 - TISSUE_SHARE))
    labels = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(size, size))
    for start in range(0, size, 1024):
        stop = min(start + 1024, size)
        values = np.digitize(concept.rows(start, stop), cuts).astype(np.uint8) + 1
        values[tissue.rows(start, stop) < tissue_cut] = 0
        labels[start:stop] = values
    labels.flush()
    del labels


def count_geometry(collection: dict[str, Any]) -> dict[str, int]:
    """Features, polygons and vertices (ring points, closing point included) of a collection."""
    polygons = [
        polygon
        for f in collection["features"]
        for polygon in (
            [f["geometry"]["coordinates"]]
            if f["geometry"]["type"] == "Polygon"
            else f["geometry"]["coordinates"]
        )
    ]
    vertices = sum(len(ring) for polygon in polygons for ring in polygon)
    return {
        "features": len(collection["features"]),
        "polygons": len(polygons),
        "vertices": vertices,
    }


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


class Windowed:
    """The label map file mapped only for each read, as a slide runner's canvas does.

    Unlike a long-lived :class:`numpy.memmap`, the pages read do not stay in the process, so
    peak RSS shows the exporter's own memory.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        header = np.load(path, mmap_mode="r")
        self.shape, self.dtype = header.shape, header.dtype
        del header

    def __getitem__(self, key: Any) -> np.ndarray:
        labels = np.load(self.path, mmap_mode="r")
        try:
            return np.array(labels[key])
        finally:
            del labels


def load_label_map(path: Path, map_path: Path) -> tuple[float, float, tuple[int, int] | None]:
    """Save level 0 of a slide runner's OME-TIFF as ``map_path`` (``.npy``).

    Returns the downsample and level-0 microns per pixel from the ``<slide>.json`` summary
    beside ``path``, and the slide's level-0 ``(width, height)`` (None if the slide is gone).
    """
    import tifffile

    from unseg.io import open_slide

    stem = path.name.removesuffix(".ome.tif").removesuffix(".ome.tiff")
    summary = json.loads(path.with_name(stem + ".json").read_text())
    np.save(map_path, tifffile.imread(path, level=0))
    slide = Path(summary["slide"])
    size = None
    if slide.exists():
        with open_slide(slide, mpp=summary["mpp"]) as opened:
            size = opened.dimensions
    return float(summary["downsample"]), float(summary["mpp"]), size


def run_simplify(
    map_path: Path, out: Path, downsample: float, slide_size: Any, tolerance: float
) -> dict[str, Any]:
    """Write the GeoJSON with one tolerance in this (fresh) process; count what it holds."""
    from shapely.geometry import shape

    import unseg.io as export

    labels = np.load(map_path, mmap_mode="r")
    start = time.perf_counter()
    target = export.write_geojson(
        out / f"simplify-{tolerance:g}.geojson",
        labels,
        downsample=downsample,
        slide_size=slide_size,
        simplify=tolerance,
    )
    seconds = time.perf_counter() - start
    peak = peak_mb()  # before the counting below reads the file back
    with open(target, encoding="utf-8") as fh:
        collection = json.load(fh)
    areas = {
        f["properties"]["measurements"]["concept"]: shape(f["geometry"]).area
        for f in collection["features"]
    }
    return {
        **count_geometry(collection),
        "seconds": seconds,
        "peak_mb": peak,
        "file_mb": target.stat().st_size / 2**20,
        "areas": areas,
    }


def run_step(
    step: str,
    map_path: Path,
    out: Path,
    strip_rows: int,
    tile: int,
    downsample: float,
    mpp: float,
    slide_size: tuple[int, int] | None,
) -> dict[str, Any]:
    """Run one export in this (fresh) process; return its counts, seconds and peak RSS."""
    import unseg.io as export

    windowed = step.endswith("windowed")
    step = step.split()[0]
    labels: Any = Windowed(map_path) if windowed else np.load(map_path, mmap_mode="r")
    result: dict[str, Any] = {"step": step}
    target: Path | None
    start = time.perf_counter()
    if step == "write_geojson":
        target = export.write_geojson(
            out / "labels.geojson",
            labels,
            downsample=downsample,
            strip_rows=strip_rows,
            slide_size=slide_size,
        )
        result["seconds"] = time.perf_counter() - start
        result["peak_mb"] = peak_mb()  # before the counting below reads the file back
        with open(target, encoding="utf-8") as fh:
            result.update(count_geometry(json.load(fh)))
    elif step == "label_geojson":
        collection = export.label_geojson(
            labels, downsample=downsample, strip_rows=strip_rows, slide_size=slide_size
        )
        result["seconds"] = time.perf_counter() - start
        result["peak_mb"] = peak_mb()
        result.update(count_geometry(collection))
        target = None
    elif step == "write_ome_tiff":
        target = export.write_ome_tiff(
            out / "labels.ome.tif", labels, mpp=mpp, downsample=downsample, tile=tile
        )
        result["seconds"] = time.perf_counter() - start
    elif step == "label_areas":
        rows = export.label_areas(labels, mpp=mpp, downsample=downsample)
        target = export.write_area_csv(out / "areas.csv", rows)
        result["seconds"] = time.perf_counter() - start
        result["features"] = len(rows)
    else:  # baseline: the interpreter, numpy and unseg.io imported, the memmap opened
        target = map_path
        result["seconds"] = 0.0
    result["file_mb"] = target.stat().st_size / 2**20 if target is not None else None
    result.setdefault("peak_mb", peak_mb())
    return result


def in_fresh_process(function: Any, *args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def print_simplify_table(
    map_path: Path,
    folder: Path,
    name: str,
    downsample: float,
    slide_size: tuple[int, int] | None,
    tolerances: list[float],
) -> None:
    """The simplification tolerances against the exact outlines, as a markdown table."""
    exact = in_fresh_process(run_simplify, map_path, folder, downsample, slide_size, 0.0)
    print(
        "\n| label map | tolerance (level-0 px) | vertices | x fewer | file MB | x smaller "
        "| max concept area change % | seconds | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for tolerance in [0.0, *tolerances]:
        r = (
            exact
            if tolerance == 0
            else in_fresh_process(run_simplify, map_path, folder, downsample, slide_size, tolerance)
        )
        change = max(
            abs(area / exact["areas"][concept] - 1) for concept, area in r["areas"].items()
        )
        print(
            f"| {name} | {tolerance:g} | {r['vertices']} | "
            f"{exact['vertices'] / r['vertices']:.2f} | {r['file_mb']:.2f} | "
            f"{exact['file_mb'] / r['file_mb']:.2f} | {100 * change:.2f} | {r['seconds']:.1f} | "
            f"{r['peak_mb']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000, help="label map side, px")
    parser.add_argument("--labels", type=int, default=8, help="concepts (values 1..labels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strip-rows", type=int, default=4096, help="GeoJSON strip height")
    parser.add_argument("--tile", type=int, default=512, help="OME-TIFF tile side")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the map and outputs")
    parser.add_argument(
        "--simplify",
        default=None,
        help="GeoJSON tolerances to compare, level-0 px, comma-separated (default: the default)",
    )
    parser.add_argument(
        "--label-map", type=Path, default=None, help="a slide runner's <slide>.ome.tif instead"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        map_path = folder / "labels.npy"
        start = time.perf_counter()
        slide_size: tuple[int, int] | None = None
        if args.label_map is None:
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                pool.submit(build_map, map_path, args.size, args.labels, args.seed).result()
            downsample, mpp, n_labels = DOWNSAMPLE, MPP, args.labels
            size = f"{args.size} x {args.size}"
            built = f"built a {size} uint8 label map ({n_labels} concepts)"
        else:
            downsample, mpp, slide_size = load_label_map(args.label_map, map_path)
            labels = np.load(map_path, mmap_mode="r")
            n_labels = int(np.count_nonzero(np.bincount(labels.ravel())[1:]))
            size = f"{labels.shape[1]} x {labels.shape[0]}"
            built = f"read the {size} label map of {args.label_map.name} ({n_labels} concepts)"
            del labels
        print(
            f"{built} in {time.perf_counter() - start:.1f} s; downsample {downsample:g}; strips "
            f"of {args.strip_rows} rows, tiles of {args.tile} px\n"
        )
        print(
            "| output | size | labels | features | polygons | vertices | seconds "
            "| peak RSS MB | file MB |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        steps = ["baseline", "write_geojson", "label_geojson", "write_ome_tiff", "label_areas"]
        steps += [f"{step} windowed" for step in ("write_geojson", "write_ome_tiff")]
        for step in steps:
            r = in_fresh_process(
                run_step,
                step,
                map_path,
                folder,
                args.strip_rows,
                args.tile,
                downsample,
                mpp,
                slide_size,
            )
            seconds = f"{r['seconds']:.1f}"
            file_mb = "-" if r["file_mb"] is None else f"{r['file_mb']:.1f}"
            print(
                f"| {step} | {size} | {n_labels} | {r.get('features', '-')} | "
                f"{r.get('polygons', '-')} | {r.get('vertices', '-')} | {seconds} | "
                f"{r['peak_mb']:.0f} | {file_mb} |"
            )
        from unseg.io.geojson import SIMPLIFY

        tolerances = (
            [SIMPLIFY * downsample]
            if args.simplify is None
            else [float(t) for t in args.simplify.split(",")]
        )
        name = size if args.label_map is None else args.label_map.name
        print_simplify_table(map_path, folder, name, downsample, slide_size, tolerances)


if __name__ == "__main__":
    main()
