"""Slide exports on a large synthetic label map: QuPath GeoJSON, pyramidal OME-TIFF, areas.

Run from the repository root:

    .venv/bin/python benchmarks/geojson_export.py [--size 20000] [--labels 8] [--seed 0]
        [--strip-rows 4096] [--tile 512] [--dir DIR]

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


def run_step(step: str, map_path: Path, out: Path, strip_rows: int, tile: int) -> dict[str, Any]:
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
            out / "labels.geojson", labels, downsample=DOWNSAMPLE, strip_rows=strip_rows
        )
        result["seconds"] = time.perf_counter() - start
        result["peak_mb"] = peak_mb()  # before the counting below reads the file back
        with open(target, encoding="utf-8") as fh:
            result.update(count_geometry(json.load(fh)))
    elif step == "label_geojson":
        collection = export.label_geojson(labels, downsample=DOWNSAMPLE, strip_rows=strip_rows)
        result["seconds"] = time.perf_counter() - start
        result["peak_mb"] = peak_mb()
        result.update(count_geometry(collection))
        target = None
    elif step == "write_ome_tiff":
        target = export.write_ome_tiff(
            out / "labels.ome.tif", labels, mpp=MPP, downsample=DOWNSAMPLE, tile=tile
        )
        result["seconds"] = time.perf_counter() - start
    elif step == "label_areas":
        rows = export.label_areas(labels, mpp=MPP, downsample=DOWNSAMPLE)
        target = export.write_area_csv(out / "areas.csv", rows)
        result["seconds"] = time.perf_counter() - start
        result["features"] = len(rows)
    else:  # baseline: the interpreter, numpy and unseg.io imported, the memmap opened
        target = map_path
        result["seconds"] = 0.0
    result["file_mb"] = target.stat().st_size / 2**20 if target is not None else None
    result.setdefault("peak_mb", peak_mb())
    return result


def in_fresh_process(*args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(run_step, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000, help="label map side, px")
    parser.add_argument("--labels", type=int, default=8, help="concepts (values 1..labels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strip-rows", type=int, default=4096, help="GeoJSON strip height")
    parser.add_argument("--tile", type=int, default=512, help="OME-TIFF tile side")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the map and outputs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        map_path = folder / "labels.npy"
        start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            pool.submit(build_map, map_path, args.size, args.labels, args.seed).result()
        print(
            f"built a {args.size} x {args.size} uint8 label map ({args.labels} concepts) in "
            f"{time.perf_counter() - start:.1f} s; strips of {args.strip_rows} rows, "
            f"tiles of {args.tile} px\n"
        )
        size = f"{args.size} x {args.size}"
        print(
            "| output | size | labels | features | polygons | vertices | seconds "
            "| peak RSS MB | file MB |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        steps = ["baseline", "write_geojson", "label_geojson", "write_ome_tiff", "label_areas"]
        steps += [f"{step} windowed" for step in ("write_geojson", "write_ome_tiff")]
        for step in steps:
            r = in_fresh_process(step, map_path, folder, args.strip_rows, args.tile)
            seconds = f"{r['seconds']:.1f}"
            file_mb = "-" if r["file_mb"] is None else f"{r['file_mb']:.1f}"
            print(
                f"| {step} | {size} | {args.labels} | {r.get('features', '-')} | "
                f"{r.get('polygons', '-')} | {r.get('vertices', '-')} | {seconds} | "
                f"{r['peak_mb']:.0f} | {file_mb} |"
            )


if __name__ == "__main__":
    main()
