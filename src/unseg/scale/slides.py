"""Whole-slide segmentation: tissue tiles streamed through any method onto a disk-backed canvas.

A slide is planned at the processing resolution (``--magnification`` or ``--target-mpp``): a
grid of square tile cores, of which only those on tissue are segmented. Each tile is read with
``overlap`` pixels of context on every side, segmented, and only its core is written, so every
canvas pixel comes from exactly one tile (no seams from image borders, no double counting).

The canvas is a raw file in ``OUT/<slide>.partial/``, written a batch of tiles at a time and
mapped only while a batch is written, so memory does not grow with the slide. A batch is
recorded in ``done.txt`` after its pixels are flushed; a run that is killed at any point
continues from the recorded batches, and because batches always hold the same tiles, its output
is identical to an uninterrupted run's. When every batch is done the outputs are written and
``OUT/<slide>.json`` (the summary, written last) marks the slide finished.

Canvas values: 0 = no tissue (or not segmented), ``v >= 1`` = label ``v - 1`` of the method.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import pickle
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from unseg.errors import InputError, ParameterError, UnsegError
from unseg.methods.base import Segmenter
from unseg.scale.executors import DaskExecutor, LocalExecutor
from unseg.scale.local import Failures
from unseg.types import Image

if TYPE_CHECKING:
    from unseg.io import Slide

STATE_VERSION = 1


@dataclass(frozen=True)
class SlideOptions:
    """How slides are tiled.

    Attributes
    ----------
    magnification : float
        Processing magnification; 10x = 1.0 um/px (40x = 0.25 um/px). Ignored when
        ``target_mpp`` is given.
    target_mpp : float or None
        Processing resolution in microns per pixel.
    mpp : float or None
        Microns per pixel of level 0, for slides whose metadata lacks it.
    tile_size : int
        Side of a tile core at the processing resolution.
    overlap : int
        Context read around each core on every side and cropped off after segmentation.
    batch_size : int
        Tiles segmented together: the unit of resuming.
    min_tissue : float
        Fraction of a core that must be tissue for the tile to be segmented.
    tiles_per_slide : int
        Tissue tiles sampled per slide when a method is fitted on the slides.
    random_state : int
        Seed of that sampling.
    """

    magnification: float = 10.0
    target_mpp: float | None = None
    mpp: float | None = None
    tile_size: int = 256
    overlap: int = 32
    batch_size: int = 8
    min_tissue: float = 0.05
    tiles_per_slide: int = 200
    random_state: int = 0

    def __post_init__(self) -> None:
        positive = {"magnification": self.magnification, "tile_size": self.tile_size,
                    "batch_size": self.batch_size, "tiles_per_slide": self.tiles_per_slide}
        for name, value in positive.items():
            if not value > 0:
                raise ParameterError(f"{name} must be positive, got {value}")
        for name, maybe in {"target_mpp": self.target_mpp, "mpp": self.mpp}.items():
            if maybe is not None and not maybe > 0:
                raise ParameterError(f"{name} must be a positive number of microns, got {maybe}")
        if self.overlap < 0:
            raise ParameterError(f"overlap must be >= 0 pixels, got {self.overlap}")
        if not 0.0 <= self.min_tissue <= 1.0:
            raise ParameterError(f"min_tissue must be between 0 and 1, got {self.min_tissue}")

    @property
    def processing_mpp(self) -> float:
        """Microns per pixel at which slides are segmented."""
        return self.target_mpp if self.target_mpp is not None else 10.0 / self.magnification


@dataclass(frozen=True)
class Tile:
    """A tile core at the processing resolution: origin ``(x, y)`` and size, clipped."""

    x: int
    y: int
    width: int
    height: int


@dataclass
class SlidePlan:
    """The tissue tiles of one slide at the processing resolution."""

    path: Path
    id: str
    mpp: float  # level 0
    downsample: float  # level-0 pixels per processing pixel
    shape: tuple[int, int]  # canvas (height, width)
    tiles: list[Tile]
    tissue: np.ndarray = field(repr=False)  # bool mask of the thumbnail
    tissue_scale: tuple[float, float] = (1.0, 1.0)  # level-0 pixels per mask pixel (x, y)

    def batches(self, size: int) -> list[list[Tile]]:
        return [self.tiles[i : i + size] for i in range(0, len(self.tiles), size)]

    def tissue_at(self, tile: Tile) -> np.ndarray:
        """The tissue mask sampled at the processing pixel centres of a core."""
        sx, sy = self.tissue_scale
        ys = ((np.arange(tile.y, tile.y + tile.height) + 0.5) * self.downsample / sy).astype(int)
        xs = ((np.arange(tile.x, tile.x + tile.width) + 0.5) * self.downsample / sx).astype(int)
        ys = ys.clip(0, self.tissue.shape[0] - 1)
        xs = xs.clip(0, self.tissue.shape[1] - 1)
        return self.tissue[np.ix_(ys, xs)]


def plan_slide(path: Path, options: SlideOptions) -> SlidePlan:
    """Open a slide, find its tissue and list the tissue tiles (row-major)."""
    from unseg.data import slide_id
    from unseg.io import detect_tissue, open_slide

    with open_slide(path, mpp=options.mpp) as slide:
        mpp = slide.mpp
        tissue, scale = detect_tissue(slide)
        width0, height0 = slide.dimensions
    downsample = options.processing_mpp / mpp
    shape = (math.ceil(height0 / downsample), math.ceil(width0 / downsample))
    plan = SlidePlan(path, slide_id(Path(path)), mpp, downsample, shape, [], tissue,
                     scale)
    size = options.tile_size
    for y in range(0, shape[0], size):
        for x in range(0, shape[1], size):
            tile = Tile(x, y, min(size, shape[1] - x), min(size, shape[0] - y))
            if plan.tissue_at(tile).mean() >= max(options.min_tissue, 1e-9):
                plan.tiles.append(tile)
    return plan


@functools.lru_cache(maxsize=8)
def _open(path: Path, mpp: float | None) -> Slide:
    """An open slide, kept open for the batches that follow (one cache per process)."""
    from unseg.io import open_slide

    return open_slide(path, mpp=mpp)


def read_tile(slide: Slide, tile: Tile, downsample: float, side: int, overlap: int) -> Image:
    """The ``side`` x ``side`` RGB region at the processing resolution whose core is ``tile``."""
    from PIL import Image as PILImage

    level = slide.best_level_for_downsample(downsample)
    level_downsample = slide.level_downsamples[level]
    x0 = round((tile.x - overlap) * downsample)
    y0 = round((tile.y - overlap) * downsample)
    read = max(1, math.ceil(side * downsample / level_downsample))
    region = slide.read_region((x0, y0), level, (read, read))
    if read == side:
        return region
    resample = PILImage.Resampling.BOX if read > side else PILImage.Resampling.BILINEAR
    return np.asarray(PILImage.fromarray(region).resize((side, side), resample))


def segment_tiles(segmenter: Segmenter, path: Path, mpp: float | None, downsample: float,
                  tiles: list[Tile], tile_size: int, overlap: int) -> list[np.ndarray]:
    """Segment tiles of a slide; returns each core's labels + 1 (0 stays for no tissue).

    A pure function of its arguments, run in this process or on a Dask worker.
    """
    slide = _open(Path(path), mpp)
    side = tile_size + 2 * overlap
    images = [read_tile(slide, tile, downsample, side, overlap) for tile in tiles]
    labels = segmenter.predict_batch(images)
    return [
        lab[overlap : overlap + t.height, overlap : overlap + t.width] + 1
        for lab, t in zip(labels, tiles, strict=True)
    ]


def sample_tiles(plan: SlidePlan, n: int, random_state: int) -> list[Tile]:
    """Up to ``n`` tissue tiles of a slide, drawn without replacement, in a seeded order."""
    if len(plan.tiles) <= n:
        return list(plan.tiles)
    rng = np.random.default_rng(random_state)
    chosen = np.sort(rng.choice(len(plan.tiles), size=n, replace=False))
    return [plan.tiles[i] for i in chosen]


def slide_tiles(plans: Sequence[SlidePlan], options: SlideOptions) -> Iterator[Image]:
    """Sampled tissue tiles of every slide (``tiles_per_slide`` each), e.g. to fit a method."""
    for plan in plans:
        slide = _open(plan.path, options.mpp)
        for tile in sample_tiles(plan, options.tiles_per_slide, options.random_state):
            yield read_tile(slide, tile, plan.downsample, options.tile_size, 0)


def method_fingerprint(segmenter: Segmenter) -> str:
    """A digest of a segmenter's method, parameters and learned state."""
    state = {k: v for k, v in sorted(vars(segmenter).items()) if k.endswith("_")}
    digest = hashlib.sha256()
    digest.update(json.dumps([segmenter.name, segmenter.get_params()], sort_keys=True,
                             default=str).encode())
    digest.update(pickle.dumps(state, protocol=4))
    return digest.hexdigest()[:16]


class DiskLabels:
    """A label canvas in a raw file, read and written a window at a time.

    Indexing maps the file only for that access, so reading a whole slide strip by strip (as
    the exporters do) never keeps more than a strip in memory.
    """

    def __init__(self, path: Path, shape: tuple[int, int], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)

    @classmethod
    def create(cls, path: Path, shape: tuple[int, int], dtype: np.dtype) -> DiskLabels:
        with open(path, "wb") as f:
            f.truncate(shape[0] * shape[1] * np.dtype(dtype).itemsize)
        return cls(path, shape, dtype)

    def _map(self, mode: Literal["r", "r+"]) -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode=mode, shape=self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        canvas = self._map("r")
        try:
            return np.array(canvas[key])
        finally:
            del canvas

    def write(self, pieces: Iterable[tuple[Tile, np.ndarray]]) -> None:
        """Write tile cores and flush them to disk."""
        canvas = self._map("r+")
        try:
            for tile, labels in pieces:
                canvas[tile.y : tile.y + tile.height, tile.x : tile.x + tile.width] = labels
            canvas.flush()
        finally:
            del canvas
        with open(self.path, "rb+") as f:
            os.fsync(f.fileno())


def canvas_dtype(n_labels: int | None) -> np.dtype:
    """uint8 when ``n_labels + 1`` ids fit (unknown counts take uint16)."""
    return np.dtype(np.uint8 if n_labels is not None and n_labels < 255 else np.uint16)


def method_labels(segmenter: Segmenter) -> int | None:
    """How many labels the method gives, when it says."""
    n_labels = getattr(segmenter, "n_labels", None)
    if callable(n_labels):
        return int(n_labels())
    k = segmenter.get_params().get("k")
    return int(k) if isinstance(k, int) else None


# -- one slide ---------------------------------------------------------------------------------


@dataclass
class SlideResult:
    """What segmenting one slide wrote."""

    id: str
    outputs: dict[str, str]
    tiles: int
    seconds: float
    resumed_batches: int = 0
    skipped: bool = False


def output_paths(out: Path, slide_id: str) -> dict[str, Path]:
    """The files one slide's segmentation writes (the summary last)."""
    return {
        "labels": out / f"{slide_id}.ome.tif",
        "geojson": out / f"{slide_id}.geojson",
        "areas": out / f"{slide_id}_areas.csv",
        "thumbnail": out / f"{slide_id}_overlay.png",
        "summary": out / f"{slide_id}.json",
    }


def _state(plan: SlidePlan, options: SlideOptions, fingerprint: str) -> dict[str, Any]:
    stat = plan.path.stat()
    return {
        "version": STATE_VERSION,
        "slide": str(plan.path.resolve()),
        "slide_bytes": stat.st_size,
        "slide_mtime_ns": stat.st_mtime_ns,
        "options": {k: v for k, v in asdict(options).items()
                    if k not in ("tiles_per_slide", "random_state")},
        "method": fingerprint,
        "shape": list(plan.shape),
        "tiles": len(plan.tiles),
    }


def _done_batches(path: Path) -> set[int]:
    if not path.exists():
        return set()
    lines = path.read_text().split("\n")
    return {int(line) for line in lines[:-1] if line.strip().isdigit()}  # last: partial or ""


def segment_slide(
    segmenter: Segmenter,
    plan: SlidePlan,
    out: Path,
    options: SlideOptions,
    executor: LocalExecutor | DaskExecutor,
    *,
    names: Sequence[str] | None = None,
) -> SlideResult:
    """Segment one planned slide into ``out``, resuming an interrupted run of the same setup."""
    from tqdm import tqdm

    from unseg.io import atomic_write

    start = time.perf_counter()
    fingerprint = method_fingerprint(segmenter)
    paths = output_paths(out, plan.id)
    state = _state(plan, options, fingerprint)
    if paths["summary"].exists():
        summary = json.loads(paths["summary"].read_text())
        if summary.get("state") == state:
            return SlideResult(plan.id, summary["outputs"], len(plan.tiles), 0.0, skipped=True)
        raise InputError(
            paths["summary"], "holds the results of another slide, method or options",
            "write to another --out folder, or delete that slide's outputs to redo it")
    work = out / f"{plan.id}.partial"
    n_labels = method_labels(segmenter)
    dtype = canvas_dtype(n_labels)
    state_file = work / "state.json"
    if state_file.exists() and json.loads(state_file.read_text()) == state:
        canvas = DiskLabels(work / "labels.raw", plan.shape, dtype)
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        canvas = DiskLabels.create(work / "labels.raw", plan.shape, dtype)
        with atomic_write(state_file) as tmp:
            tmp.write_text(json.dumps(state, indent=1))
    done_file = work / "done.txt"
    done = _done_batches(done_file)
    batches = plan.batches(options.batch_size)
    tasks = (
        (b, (plan.path, options.mpp, plan.downsample, batch, options.tile_size, options.overlap))
        for b, batch in enumerate(batches) if b not in done
    )
    bar = tqdm(total=len(plan.tiles), initial=sum(len(batches[b]) for b in done), unit="tile",
               desc=plan.id, disable=None, file=sys.stderr)
    with bar, open(done_file, "a") as log:
        for b, cores in executor.run(segmenter, tasks):
            pieces = []
            for tile, labels in zip(batches[b], cores, strict=True):
                if labels.max(initial=0) > np.iinfo(dtype).max:
                    raise UnsegError(f"{segmenter.name} gave label {labels.max() - 1}, more than "
                                     f"its {n_labels} labels")
                pieces.append((tile, np.where(plan.tissue_at(tile), labels, 0).astype(dtype)))
            canvas.write(pieces)
            log.write(f"{b}\n")
            log.flush()
            os.fsync(log.fileno())
            bar.update(len(batches[b]))
    outputs = write_outputs(canvas, plan, paths, n_labels, names)
    summary = {
        "slide": str(plan.path), "method": segmenter.name, "params": segmenter.get_params(),
        "mpp": plan.mpp, "processing_mpp": options.processing_mpp,
        "downsample": plan.downsample, "shape": list(plan.shape), "tiles": len(plan.tiles),
        "outputs": outputs, "state": state,
    }
    with atomic_write(paths["summary"]) as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str))
    shutil.rmtree(work)
    outputs["summary"] = str(paths["summary"])
    return SlideResult(plan.id, outputs, len(plan.tiles), time.perf_counter() - start,
                       resumed_batches=len(done))


def write_outputs(canvas: DiskLabels, plan: SlidePlan, paths: dict[str, Path],
                  n_labels: int | None, names: Sequence[str] | None) -> dict[str, str]:
    """The label map OME-TIFF, QuPath GeoJSON, area CSV and thumbnail overlay of a slide."""
    from unseg.io import (
        label_areas,
        open_slide,
        palette,
        write_area_csv,
        write_geojson,
        write_image,
        write_ome_tiff,
    )

    write_ome_tiff(paths["labels"], canvas, mpp=plan.mpp, downsample=plan.downsample)
    write_geojson(paths["geojson"], canvas, downsample=plan.downsample, names=names)
    write_area_csv(paths["areas"], label_areas(canvas, mpp=plan.mpp,
                                               downsample=plan.downsample, names=names))
    with open_slide(plan.path, mpp=plan.mpp) as slide:
        thumb = slide.thumbnail(1024)
    rows = np.minimum((np.arange(thumb.shape[0]) + 0.5) * plan.shape[0] / thumb.shape[0],
                      plan.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(thumb.shape[1]) + 0.5) * plan.shape[1] / thumb.shape[1],
                      plan.shape[1] - 1).astype(int)
    small = canvas[np.ix_(rows, cols)].astype(np.int64)
    colours = palette(max(n_labels or 0, int(small.max()), 1))
    painted = colours[np.maximum(small - 1, 0)]
    blended = np.where(small[..., None] > 0, 0.5 * thumb + 0.5 * painted, thumb)
    write_image(paths["thumbnail"], np.round(blended).astype(np.uint8))
    return {k: str(v) for k, v in paths.items() if k != "summary"}


# -- cohorts -----------------------------------------------------------------------------------


@dataclass
class CohortRun:
    """What :func:`segment_slides` did."""

    results: list[SlideResult] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)
    fit_seconds: float = 0.0
    model: Path | None = None


def fit_on_slides(segmenter: Segmenter, plans: Sequence[SlidePlan], options: SlideOptions,
                  model: Path) -> Segmenter:
    """Fit a learning method on tiles sampled from the slides and save it to ``model``.

    A model already at ``model`` (from an earlier run of the same method and parameters) is
    loaded instead, so an interrupted cohort run resumes with the same labels.
    """
    from unseg.methods import load_model, save_model

    if model.exists():
        saved = load_model(model)
        if saved.name != segmenter.name or saved.get_params() != segmenter.get_params():
            raise InputError(model, f"holds a {saved.name} model with other parameters "
                             f"({saved.get_params()})",
                             "write to another --out folder, or pass that file as --model")
        print(f"unseg: using the {saved.name} model fitted earlier: {model}", file=sys.stderr)
        return saved
    tiles = sum(min(len(p.tiles), options.tiles_per_slide) for p in plans)
    if tiles == 0:
        raise UnsegError("no tissue tiles to fit on in any slide. Fix: check the slides, or "
                         "lower --min-tissue.")
    from unseg.scale.local import progress

    images = progress(slide_tiles(plans, options), f"fitting {segmenter.name}", total=tiles)
    segmenter.fit(images)
    save_model(segmenter, model)
    return segmenter


def segment_slides(
    segmenter: Segmenter,
    slides: Sequence[Path],
    out: Path,
    options: SlideOptions,
    *,
    fit: bool = True,
    executor: LocalExecutor | DaskExecutor | None = None,
) -> CohortRun:
    """Segment every slide into ``out``; a failing slide is reported and the others finish.

    Methods that learn are fitted first on ``options.tiles_per_slide`` tissue tiles of each
    slide (when ``fit``), and the fitted model is kept as ``out/<method>.model``; finished
    slides are skipped on a re-run.
    """
    from unseg.io import output_dir

    run = CohortRun()
    output_dir(out)
    plans = []
    for path in slides:
        try:
            plans.append(plan_slide(Path(path), options))
        except UnsegError as error:
            run.failures.add(str(path), error)
    if fit and segmenter.requires_fit and plans:
        start = time.perf_counter()
        run.model = out / f"{segmenter.name}.model"
        segmenter = fit_on_slides(segmenter, plans, options, run.model)
        run.fit_seconds = time.perf_counter() - start
    executor = executor or LocalExecutor()
    for plan in plans:
        try:
            run.results.append(segment_slide(segmenter, plan, out, options, executor))
        except UnsegError as error:
            run.failures.add(str(plan.path), error)
    return run
