"""Whole-slide segmentation: tissue tiles streamed through any method onto a disk-backed canvas.

Each tile of a slide's plan (:mod:`unseg.workflows.slide_plan`) is read with ``overlap`` pixels
of context on every side, segmented, and only its core is written, so every canvas pixel comes
from exactly one tile (no seams from image borders, no double counting).

The canvas is a raw file in ``OUT/<slide>.partial/``, written a batch of tiles at a time and
mapped only while a batch is written, so memory does not grow with the slide. A batch is
recorded in ``done.txt`` after its pixels are flushed; a run that is killed at any point
continues from the recorded batches, and because batches always hold the same tiles, its output
is identical to an uninterrupted run's. When every batch is done the outputs are written and
``OUT/<slide>.json`` (the summary, written last) marks the slide finished.

Canvas values: 0 = no tissue (or not segmented), ``v >= 1`` = label ``v - 1`` of the method.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unseg.data import LabelNames
from unseg.errors import InputError, UnsegError
from unseg.io.canvas import DiskLabels, canvas_dtype
from unseg.methods import Segmenter
from unseg.workflows.executors import Executor
from unseg.workflows.runs import LabelUsage, log, run_record
from unseg.workflows.slide_plan import SlideOptions, SlidePlan, Tile, open_cached

STATE_VERSION = 2


def segment_tiles(segmenter: Segmenter, path: Path, mpp: float | None, downsample: float,
                  tiles: list[Tile], tile_size: int, overlap: int) -> list[np.ndarray]:
    """Segment tiles of a slide; returns each core's labels + 1 (0 stays for no tissue).

    A pure function of its arguments, run in this process or on a Dask worker.
    """
    from unseg.io.tiles import read_tile

    slide = open_cached(Path(path), mpp)
    side = tile_size + 2 * overlap
    images = [read_tile(slide, (tile.x - overlap, tile.y - overlap), downsample, side)
              for tile in tiles]
    labels = segmenter.predict_batch(images)
    return [
        lab[overlap : overlap + t.height, overlap : overlap + t.width] + 1
        for lab, t in zip(labels, tiles, strict=True)
    ]


def method_fingerprint(segmenter: Segmenter) -> str:
    """A digest of a segmenter's method, parameters and learned state."""
    state = dict(sorted(segmenter.learned_state().items()))
    digest = hashlib.sha256()
    digest.update(json.dumps([segmenter.name, segmenter.get_params()], sort_keys=True,
                             default=str).encode())
    digest.update(pickle.dumps(state, protocol=4))
    return digest.hexdigest()[:16]


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


def _state(plan: SlidePlan, options: SlideOptions, fingerprint: str,
           names: LabelNames | None = None) -> dict[str, Any]:
    """What a finished or partial run must match to be reused: the slide's content, the
    tiling, the fitted method (whose fingerprint covers how it was fitted) and the label
    names given (they are written into the outputs)."""
    return ({"names": names.to_json()} if names else {}) | {
        "version": STATE_VERSION,
        "slide": str(plan.path.resolve()),
        "slide_bytes": plan.path.stat().st_size,
        "slide_fingerprint": plan.fingerprint,
        "options": {k: v for k, v in asdict(options).items()
                    if k not in ("tiles_per_slide", "random_state")},
        "method": fingerprint,
        "shape": list(plan.shape),
        "tiles": len(plan.tiles),
    }


#: The parts of the state that follow from the slide file's content.
_CONTENT = ("slide_bytes", "slide_fingerprint", "tiles")


def _same_setup(earlier: dict[str, Any] | None, state: dict[str, Any]) -> bool:
    """Whether an earlier state is this run's but for the slide file's content."""
    if earlier is None:
        return False
    return ({k: v for k, v in earlier.items() if k not in _CONTENT}
            == {k: v for k, v in state.items() if k not in _CONTENT})


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
    executor: Executor,
    names: LabelNames | None = None,
) -> SlideResult:
    """Segment one planned slide into ``out``, resuming an interrupted run of the same setup.

    ``names`` (names and colours of the labels) go into the OME-TIFF legend, the GeoJSON
    classifications, the area table, the thumbnail overlay and the summary.

    The slide's outputs are locked for the run (``out/.<slide>.lock``): another run on the
    same slide and folder is refused while this one works. Files of another run (a finished
    or partial run with other options) are never deleted: the run stops and says so.
    """
    from unseg.io.lock import output_lock

    with output_lock(out / f".{plan.id}.lock", f"the outputs of {plan.id} in {out}"):
        return _segment_locked(segmenter, plan, out, options, executor, names)


def _segment_locked(segmenter: Segmenter, plan: SlidePlan, out: Path, options: SlideOptions,
                    executor: Executor, names: LabelNames | None) -> SlideResult:
    from unseg._progress import Progress
    from unseg.io import atomic_write

    start = time.perf_counter()
    fingerprint = method_fingerprint(segmenter)
    paths = output_paths(out, plan.id)
    state = _state(plan, options, fingerprint, names)
    if paths["summary"].exists():
        earlier = json.loads(paths["summary"].read_text()).get("state")
        if earlier == state:
            summary = json.loads(paths["summary"].read_text())
            return SlideResult(plan.id, summary["outputs"], len(plan.tiles), 0.0, skipped=True)
        if not _same_setup(earlier, state):
            raise InputError(
                paths["summary"], "holds the results of another slide, method or options",
                "write to another --out folder, or delete that slide's outputs to redo it")
        log.info("%s changed since its outputs were written: segmenting it again", plan.path)
    work = out / f"{plan.id}.partial"
    n_labels = segmenter.n_labels_
    dtype = canvas_dtype(n_labels)
    state_file = work / "state.json"
    earlier = json.loads(state_file.read_text()) if state_file.exists() else None
    if earlier is not None and earlier != state and not _same_setup(earlier, state):
        raise InputError(
            work, "holds an unfinished run of another slide, method or options",
            "run again with that run's options to finish it, delete the folder to start "
            "over, or write to another --out folder")
    if earlier == state:
        canvas = DiskLabels(work / "labels.raw", plan.shape, dtype)
    else:
        if earlier is not None:  # this setup's work on the slide file as it was before
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
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
    bar = Progress(plan.id, len(plan.tiles), unit="tile",
                   initial=sum(len(batches[b]) for b in done))
    with bar, open(done_file, "a") as record:
        for b, cores in executor.run(segment_tiles, segmenter, tasks):
            windows = []
            for tile, labels in zip(batches[b], cores, strict=True):
                if labels.max(initial=0) > np.iinfo(dtype).max:
                    raise UnsegError(f"{segmenter.name} gave label {labels.max() - 1}, more than "
                                     f"its {n_labels} labels")
                masked = np.where(plan.tissue_at(tile), labels, 0).astype(dtype)
                windows.append(((tile.x, tile.y), masked))
            canvas.write(windows)
            record.write(f"{b}\n")
            record.flush()
            os.fsync(record.fileno())
            bar.update(len(batches[b]))
    outputs, areas = write_outputs(canvas, plan, paths, n_labels, options.simplify, names)
    counts = np.zeros(max((row["label"] + 1 for row in areas), default=0), np.int64)
    for row in areas:
        counts[row["label"]] = row["pixels"]
    usage = LabelUsage(counts).report(f"{segmenter.name} on {plan.id}", n_labels)
    summary = run_record(
        slide=str(plan.path), method=segmenter.name, params=segmenter.get_params(),
        mpp=plan.mpp, mpp_source=plan.mpp_source, processing_mpp=options.processing_mpp,
        downsample=plan.downsample, shape=list(plan.shape), tiles=len(plan.tiles),
        outputs=outputs, labels=usage, names=names.to_json() if names else {}, state=state,
    )
    with atomic_write(paths["summary"]) as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str))
    shutil.rmtree(work)
    outputs["summary"] = str(paths["summary"])
    return SlideResult(plan.id, outputs, len(plan.tiles), time.perf_counter() - start,
                       resumed_batches=len(done))


def write_outputs(canvas: DiskLabels, plan: SlidePlan, paths: dict[str, Path],
                  n_labels: int | None, simplify: float | None, names: LabelNames | None = None
                  ) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The label map OME-TIFF, QuPath GeoJSON, area CSV and thumbnail overlay of a slide, with
    the label ``names`` and colours given (else "concept c" in the palette colour); returns the
    paths written and the area table's rows."""
    from unseg.io import (
        label_areas,
        open_slide,
        write_area_csv,
        write_geojson,
        write_image,
        write_ome_tiff,
    )

    n = n_labels or int(np.iinfo(canvas.dtype).max)  # the canvas holds labels 0 .. n - 1
    label_names = names.name_list(n) if names else None
    colours = names.colour_table(n) if names else None
    write_ome_tiff(paths["labels"], canvas, mpp=plan.mpp, downsample=plan.downsample,
                   source=plan.path.name, names=label_names, colours=colours)
    write_geojson(paths["geojson"], canvas, downsample=plan.downsample, slide_id=plan.id,
                  slide_size=plan.dimensions, simplify=simplify, names=label_names,
                  colours=colours)
    areas = label_areas(canvas, mpp=plan.mpp, downsample=plan.downsample,
                        mpp_source=plan.mpp_source or "unknown", names=label_names)
    write_area_csv(paths["areas"], areas)
    with open_slide(plan.path, mpp=plan.mpp) as slide:
        thumb = slide.thumbnail(1024)
    rows = np.minimum((np.arange(thumb.shape[0]) + 0.5) * plan.shape[0] / thumb.shape[0],
                      plan.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(thumb.shape[1]) + 0.5) * plan.shape[1] / thumb.shape[1],
                      plan.shape[1] - 1).astype(int)
    small = canvas[np.ix_(rows, cols)].astype(np.int64)
    table = (names or LabelNames()).colour_table(max(n_labels or 0, int(small.max()), 1))
    painted = table[np.maximum(small - 1, 0)]
    blended = np.where(small[..., None] > 0, 0.5 * thumb + 0.5 * painted, thumb)
    write_image(paths["thumbnail"], np.round(blended).astype(np.uint8))
    return {k: str(v) for k, v in paths.items() if k != "summary"}, areas


