"""Writing a report folder: ``index.html``, the scripts and styles in ``assets/``, and one
folder of pictures per run.

One run gives ``index.html`` itself; several give ``index.html`` listing them and one page
each (``<run>.html``). Every picture is a file beside the page: gallery thumbnails (never the
full images), example tiles, and for slides the deep-zoom tiles of the slide and of its labels.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unseg.data import LabelNames
from unseg.errors import InputError
from unseg.report import html
from unseg.report.images import (
    EXAMPLE_SIDE,
    Examples,
    best_windows,
    paint,
    save_jpeg,
    shrink,
    shrink_labels,
    thumbnail_size,
)
from unseg.report.runs import BenchmarkRun, FolderRun, Run, SlideRun

log = logging.getLogger("unseg")

#: Gallery rows per page.
PER_PAGE = 50
#: Opacity of the label overlay when a slide viewer opens.
VIEWER_OPACITY = 0.5
#: The files of ``assets/`` (the OpenSeadragon ones are vendored with its licence).
ASSET_FILES = ("report.css", "report.js", "openseadragon/openseadragon.min.js",
               "openseadragon/LICENSE.txt", "openseadragon/README.md")
#: Mask id left out of the evaluation, shown without colour.
IGNORE_ID = 255
#: The colour of labels matched to no class.
UNMATCHED = (150, 150, 150)

Page = tuple[str, str, str, bool]  # title, body, one-line summary, whether it has a viewer


def write_report(runs: Sequence[Run], out: Path) -> Path:
    """Write the report of ``runs`` into the folder ``out``; returns ``out/index.html``."""
    from unseg.io import output_dir

    output_dir(out)
    _copy_assets(out / "assets")
    slugs = _slugs(runs)
    single = len(runs) == 1
    listed = []
    for run, slug in zip(runs, slugs, strict=True):
        title, body, summary, viewer = _PAGES[type(run)](run, out, slug)
        name = "index.html" if single else f"{slug}.html"
        nav = "" if single else '<nav><a href="index.html">all runs</a></nav>'
        _write_text(out / name, html.page(title, body, nav=nav, viewer=viewer))
        listed.append([f'<a href="{html.esc(name)}">{html.esc(title)}</a>', html.esc(summary)])
    if not single:
        body = html.section("runs", "Runs", html.table(["run", "summary"], listed))
        _write_text(out / "index.html", html.page(f"unseg report: {len(runs)} runs", body))
    return out / "index.html"


def _write_text(path: Path, text: str) -> None:
    from unseg.io import atomic_write

    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _copy_assets(folder: Path) -> None:
    from importlib.resources import files

    from unseg.io import atomic_write

    source = files("unseg.report").joinpath("assets")
    for name in ASSET_FILES:
        with atomic_write(folder / name) as tmp:
            tmp.write_bytes(source.joinpath(name).read_bytes())


def _slugs(runs: Sequence[Run]) -> list[str]:
    """A distinct, URL-safe folder name per run."""
    slugs: list[str] = []
    for run in runs:
        if isinstance(run, FolderRun):
            base = f"run-{run.folder.resolve().name}"
        elif isinstance(run, BenchmarkRun):
            base = f"benchmark-{run.folder.resolve().name}"
        else:
            base = f"slide-{run.id}"
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", base)
        slug, n = base, 1
        while slug in slugs:
            n += 1
            slug = f"{base}-{n}"
        slugs.append(slug)
    return slugs


def _link(target: Path, out: Path) -> str:
    """A link (a relative URL) from a page in ``out`` to a file outside the report: an input
    image, a run's own outputs."""
    from urllib.parse import quote

    return quote(Path(os.path.relpath(target.resolve(), out.resolve())).as_posix())


class _Colours:
    """Colour tables of one set of names, made once per size."""

    def __init__(self, names: LabelNames) -> None:
        self.names = names
        self._tables: dict[int, np.ndarray] = {}

    def __call__(self, n: int) -> np.ndarray:
        if n not in self._tables:
            self._tables[n] = self.names.colour_table(n)
        return self._tables[n]


# -- what every run page shows --------------------------------------------------------------


def _run_facts(record: dict[str, Any], first: Sequence[tuple[str, str]]) -> str:
    params = record.get("params", {})
    items = [*first, ("method", f"<b>{html.esc(record['method'])}</b>"),
             ("parameters", html.params(params))]
    if "backbone" in params:
        items.append(("backbone", html.esc(params["backbone"])))
    if "concepts" in params:
        items.append(("concept bank", html.esc(params["concepts"] or "fitted on the inputs")))
    items += [("unseg version", html.esc(record.get("unseg_version", "?"))),
              ("date", html.esc(record.get("date", "?"))),
              ("command line", f"<code>{html.esc(record.get('command', '?'))}</code>")]
    warning = (record.get("labels") or {}).get("warning")
    if warning:
        items.append(("warning", f'<span class="warn">{html.esc(warning)}</span>'))
    return html.facts(items)


def _metrics(metrics: dict[str, Any], labels: LabelNames, classes: LabelNames) -> str:
    """Headline, per-class IoU and Dice with class names, and the confusion heatmap."""
    per_class = _per_class(metrics)
    present = [int(c) for c in metrics["classes"]]
    words = {"dataset": "one mapping of labels to classes for all images",
             "image": "one mapping per image"}
    head = html.facts([
        ("mIoU", f"<b>{html.number(metrics['miou'])}</b> (pooled over all pixels, mean over "
                 "the classes present)"),
        ("per-image mean mIoU", html.number(metrics["miou_image_mean"])),
        ("pixel accuracy", html.number(metrics["pixel_accuracy"])),
        ("protocol", f"<code>{html.esc(metrics['match'])}</code> matching, scope "
                     f"<code>{html.esc(metrics['scope'])}</code> "
                     f"({html.esc(words.get(metrics['scope'], ''))})"),
        ("images", f"{metrics['n_images']} evaluated, {len(metrics['failures'])} failed"),
    ])
    rows = [[f"{html.swatch(classes.colour(c))} {html.esc(classes.name(c))}",
             html.bar(per_class[c]["iou"], classes.colour(c)),
             html.bar(per_class[c]["f1"], classes.colour(c)), str(per_class[c]["pixels"])]
            for c in present]
    parts = [head, "<h3>Per class</h3>",
             html.table(["class", "IoU", "Dice (F1)", "pixels"], rows, "metrics")]
    if metrics.get("binary"):
        parts += ["<h3>Binary metrics (foreground = class 1), mean over images</h3>",
                  html.table(["metric", "mean"], [[html.esc(k), html.number(v)] for k, v in
                                                   metrics["binary"].items()], "metrics")]
    confusion = metrics.get("confusion") or []
    if confusion:
        mapping = metrics.get("mapping")
        matched = ({k: present.index(c) for k, c in enumerate(mapping) if c in present}
                   if mapping else None)
        columns = [[row[c] for c in present] for row in confusion]
        used = [(k, labels.name(k), labels.colour(k)) for k, row in enumerate(columns)
                if sum(row)]
        parts += ["<h3>Confusion: where each label's pixels fall</h3>",
                  '<p class="note">Each row is a label, its pixels spread over the ground-truth '
                  "classes (hover a cell for its pixel count)"
                  + ("; the class it was matched to is outlined" if matched else "") + ".</p>",
                  html.heatmap(columns, used, [classes.name(c) for c in present], matched)]
    if metrics["failures"]:
        parts += ["<h3>Failures</h3><ul>"
                  + "".join(f"<li><code>{html.esc(i)}</code>: {html.esc(m)}</li>"
                            for i, m in metrics["failures"]) + "</ul>"]
    return "\n".join(parts)


def _legend(counts: np.ndarray, names: LabelNames, matched: dict[int, str] | None = None
            ) -> str:
    total = max(int(counts.sum()), 1)
    entries = [(k, names.name(k), names.colour(k), counts[k] / total,
                matched.get(k, "unmatched") if matched is not None else "")
               for k in map(int, np.flatnonzero(counts))]
    return html.legend(entries, "matched class" if matched is not None else "")


def _class_legend(classes: LabelNames, present: Sequence[int]) -> str:
    items = "".join(f"<li>{html.swatch(classes.colour(c))} {html.esc(classes.name(c))}</li>"
                    for c in present)
    return f'<ul class="inline">{items}</ul>'


def _write_examples(examples: Examples, folder: Path, slug: str, names: LabelNames,
                    crop: Callable[[Any], np.ndarray]) -> str:
    best = {}
    for label, offers in examples.best().items():
        best[label] = [(score, caption, f"{slug}/examples/"
                        + save_jpeg(folder / "examples" / f"{label}-{rank}.jpg", crop(payload)))
                       for rank, (score, caption, payload) in enumerate(offers)]
    return html.examples(best, {k: (names.name(k), names.colour(k)) for k in best})


def _gallery_rows(rows: list[list[Any]], columns: list[str], values: list[str]) -> str:
    return html.gallery({"columns": columns, "values": values, "per_page": PER_PAGE,
                         "rows": rows})


def _matched_colours(classes: LabelNames, labels: LabelNames, metrics: dict[str, Any] | None
                     ) -> LabelNames:
    """The classes, each in the colour of the label matched to it (the largest one, under one
    mapping for the dataset), so that a right label map and its ground truth look alike;
    colours the dataset's class file gives come first."""
    if not metrics or not metrics.get("mapping"):
        return classes
    mapping = metrics["mapping"]
    size = [sum(row) for row in metrics["confusion"]]
    colours = {c: labels.colour(max((k for k, m in enumerate(mapping) if m == c),
                                    key=lambda k: size[k]))
               for c in set(mapping) - {-1}}
    return LabelNames(classes.names, colours | dict(classes.colours), classes.unnamed)


def _truth(small: np.ndarray, mask: np.ndarray, colours: _Colours) -> np.ndarray:
    """A mask's classes painted over a thumbnail; the ignore id (in masks of ids up to 255)
    stays unpainted."""
    return paint(small, shrink_labels(mask, small.shape[:2]), colours(int(mask.max()) + 1),
                 IGNORE_ID if mask.max() <= IGNORE_ID else None)


def _per_class(metrics: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Per-class metrics by class id (JSON files key them by text)."""
    return {int(k): v for k, v in metrics["per_class"].items()}


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


# -- a folder run ---------------------------------------------------------------------------


def _folder_page(run: FolderRun, out: Path, slug: str) -> Page:
    from unseg._progress import progress
    from unseg.io import read_image, read_label_map

    record, folder, metrics = run.record, out / slug, run.metrics
    labels_info = record.get("labels") or {}
    consistent = labels_info.get("n_labels") is not None  # a label means one thing everywhere
    classes = _matched_colours(run.class_names, run.names, metrics)
    label_colours, class_colours = _Colours(run.names), _Colours(classes)
    per_image = {str(e["id"]): e for e in metrics["per_image"]} if metrics else {}
    has_masks = any(mask is not None for _, _, mask in run.samples)
    counts = np.zeros(1, np.int64)
    examples = Examples()
    rows, unreadable = [], []
    samples = run.samples
    for index, (sample_id, image_path, mask_path) in enumerate(
            progress(samples, "report: images", total=len(samples))):
        try:
            image = read_image(image_path)
            labels = read_label_map(run.folder / f"{sample_id}.png")
            mask = read_label_map(mask_path) if mask_path is not None else None
        except InputError as error:
            log.warning("report: skipped %s: %s", sample_id, error)
            unreadable.append((sample_id, str(error)))
            continue
        size = thumbnail_size(image.shape)
        small = shrink(image, size)
        pictures = {"image": small, "labels": paint(small, shrink_labels(labels, size),
                                                    label_colours(int(labels.max()) + 1))}
        overlay = run.folder / f"{sample_id}_overlay.png"
        links = [_link(image_path, out), _link(overlay, out) if overlay.exists() else None]
        if mask is not None and mask.shape == labels.shape:
            pictures["truth"] = _truth(small, mask, class_colours)
        thumbs: list[str | None] = [
            f"{slug}/thumbs/" + save_jpeg(folder / "thumbs" / f"{index}-{kind}.jpg", picture)
            for kind, picture in pictures.items()]
        if has_masks:
            links.append(None)
            if len(thumbs) == 2:  # this image has no mask of its size: an empty cell
                thumbs.append(None)
        found = np.bincount(labels.ravel())
        counts = np.pad(counts, (0, max(0, len(found) - len(counts))))
        counts[: len(found)] += found
        largest = int(np.argmax(found))
        scores = per_image.get(sample_id, {})
        values = ([_clean(scores.get("miou")), _clean(scores.get("pixel_accuracy"))]
                  if metrics else [])
        values += [int(np.count_nonzero(found)), round(float(found[largest] / labels.size), 4),
                   run.names.name(largest)]
        rows.append([sample_id, thumbs, links, values])
        if consistent:
            side = min(EXAMPLE_SIDE, *labels.shape)
            for label, (share, y, x) in best_windows(labels, side, np.flatnonzero(found)).items():
                examples.offer(label, share, sample_id, image[y : y + side, x : x + side].copy())
    columns = ["image", "labels", "ground truth"] if has_masks else ["image", "labels"]
    values = (["mIoU", "pixel accuracy"] if metrics else []) + [
        "labels present", "largest share", "largest label"]
    matched = None
    if metrics and metrics.get("mapping"):
        matched = {k: classes.name(c) for k, c in enumerate(metrics["mapping"]) if c >= 0}
    written = len(record["written"])
    facts = _run_facts(record, [
        ("output folder", f'<a href="{html.esc(_link(run.folder, out))}">'
                          f"{html.esc(run.folder)}</a>"),
        ("images", f"{written} segmented of {record.get('images', written)}, "
                   f"{len(record.get('failed', {}))} failed")])
    parts = [html.section("run", "Run", facts),
             html.section("legend", "Labels", _legend(counts, run.names, matched),
                          "Colour and name of every label in the maps, with its share of all "
                          "their pixels." + ("" if consistent else " This method makes regions "
                                             "per image: a label id means nothing across "
                                             "images."))]
    if metrics:
        parts.append(html.section("metrics", "Metrics", _metrics(metrics, run.names, classes)))
    if consistent and counts.any():
        parts.append(html.section(
            "examples", "What each label looks like",
            _write_examples(examples, folder, slug, run.names,
                            lambda crop: shrink(crop, crop.shape[:2])),  # as RGB uint8
            f"The image windows ({EXAMPLE_SIDE} px at most) each label covers most, with the "
            "share of the window it covers."))
    note = ("Sort by a column, page through the images; thumbnails open the full image "
            "(and the run's full-size overlay).")
    if has_masks:
        note += (" Ground truth: each class in the colour of the label matched to it (when one "
                 "mapping holds for the dataset): " + _class_legend(
                     classes, metrics["classes"] if metrics else []))
    if unreadable:
        note += f" {len(unreadable)} image(s) could not be read and are left out: " + ", ".join(
            html.esc(i) for i, _ in unreadable)
    parts.append(html.section("gallery", "Images", _gallery_rows(rows, columns, values), note))
    title = f"{record['method']} on {written} image(s)"
    summary = (f"mIoU {html.number(metrics['miou'])}" if metrics else "no masks")
    return title, "\n".join(parts), f"folder run in {run.folder}: {summary}", False


# -- a benchmark ----------------------------------------------------------------------------


def _benchmark_page(run: BenchmarkRun, out: Path, slug: str) -> Page:
    from unseg._progress import progress
    from unseg.data import discover
    from unseg.io import read_image, read_label_map

    record, folder = run.record, out / slug
    methods = record["methods"]
    classes = run.class_names
    plain = LabelNames()
    class_colours, label_colours = _Colours(classes), _Colours(plain)
    # a method's labels in the colour of the class matched to them (grey: unmatched)
    matched = [None if not m["result"].get("mapping") else np.array(
        [classes.colour(c) if c >= 0 else UNMATCHED for c in m["result"]["mapping"]], np.uint8)
        for m in methods]
    present = [int(c) for c in methods[0]["result"]["classes"]]
    header = list(methods[0]["columns"])
    table = html.table(header, [[html.number(m["columns"][h]) if h != "method"
                                 else f"<b>{html.esc(m['method'])}</b>" for h in header]
                                for m in methods], "metrics")
    plot = run.folder / "benchmark.png"
    figure = ""
    if plot.exists():
        from unseg.io import atomic_write

        with atomic_write(folder / "benchmark.png") as tmp:
            tmp.write_bytes(plot.read_bytes())
        figure = f'<img class="plot" src="{slug}/benchmark.png" alt="mIoU of each method">'
    per_class_rows = []
    for c in present:
        bars = "".join(
            f"<div>{html.esc(m['method'])} "
            f"{html.bar(_per_class(m['result'])[c]['iou'])}</div>" for m in methods)
        per_class_rows.append([f"{html.swatch(classes.colour(c))} {html.esc(classes.name(c))}",
                               bars])
    details = "".join(
        f"<details><summary>{html.esc(m['method'])}: per class and confusion</summary>"
        f"{_metrics(m['result'], plain, classes)}</details>" for m in methods)
    facts = html.facts([
        ("data", html.esc(record["data"])), ("images", str(record["n_images"])),
        ("protocol", f"<code>{html.esc(record['match'])}</code> matching, scope "
                     f"<code>{html.esc(record['scope'])}</code>"),
        ("methods", "<br>".join(f"<b>{html.esc(m['method'])}</b> {html.params(m['params'])}"
                                for m in methods)),
        ("unseg version", html.esc(record.get("unseg_version", "?"))),
        ("date", html.esc(record.get("date", "?"))),
        ("command line", f"<code>{html.esc(record.get('command', '?'))}</code>")])
    samples = discover([run.data])
    per_image = [{str(e["id"]): e for e in m["result"]["per_image"]} for m in methods]
    rows = []
    for index, sample in enumerate(progress(samples, "report: images", total=len(samples))):
        try:
            image = read_image(sample.image)
            mask = read_label_map(sample.mask) if sample.mask is not None else None
        except InputError as error:
            log.warning("report: skipped %s: %s", sample.id, error)
            continue
        size = thumbnail_size(image.shape)
        small = shrink(image, size)
        pictures = [small]
        if mask is not None:
            pictures.append(_truth(small, mask, class_colours))
        for m, colours in zip(methods, matched, strict=True):
            path = run.folder / "predictions" / m["method"] / f"{sample.id}.png"
            try:
                labels = read_label_map(path)
            except InputError:  # the method failed on this image (listed in its failures)
                pictures.append(small)
                continue
            pictures.append(paint(small, shrink_labels(labels, size), label_colours(
                int(labels.max()) + 1) if colours is None else colours))
        thumbs = [f"{slug}/thumbs/"
                  + save_jpeg(folder / "thumbs" / f"{index}-{n}.jpg", picture)
                  for n, picture in enumerate(pictures)]
        links = [_link(sample.image, out)] + [None] * (len(thumbs) - 1)
        values = [_clean(p.get(sample.id, {}).get("miou")) for p in per_image]
        rows.append([sample.id, thumbs, links, values])
    columns = ["image", "ground truth"] + [m["method"] for m in methods]
    parts = [
        html.section("run", "Benchmark", facts),
        html.section("comparison", "Comparison", table + figure,
                     "mIoU pooled over the dataset, per-image mean beside it; s/image counts "
                     "predict only."),
        html.section("per-class", "IoU per class",
                     html.table(["class", "IoU of each method"], per_class_rows, "metrics")
                     + details),
        html.section("gallery", "Images", _gallery_rows(
            rows, columns, [f"mIoU {m['method']}" for m in methods]),
            "Each method's labels over the image, painted in the colour of the class they were "
            "matched to (grey: matched to none; with one mapping per image, in the colours of "
            "the label ids). Classes: " + _class_legend(classes, present)),
    ]
    best = max(methods, key=lambda m: m["columns"]["mIoU"] or -1)
    return (f"Benchmark on {Path(record['data']).name}", "\n".join(parts),
            f"{len(methods)} methods; best mIoU {html.number(best['columns']['mIoU'])} "
            f"({best['method']})", False)


# -- a slide --------------------------------------------------------------------------------


def _slide_page(run: SlideRun, out: Path, slide_slug: str) -> Page:
    import tifffile

    from unseg._optional import optional_import
    from unseg.io import open_slide
    from unseg.io.tiles import read_tile
    from unseg.report.deepzoom import write_pyramid

    zarr = optional_import("zarr", "wsi")
    summary, folder, names = run.summary, out / slide_slug, run.names
    downsample = float(summary["downsample"])
    areas = _area_rows(run.output("areas"))
    with tifffile.TiffFile(run.output("labels")) as tif, \
            open_slide(summary["slide"], mpp=summary["mpp"]) as slide:
        series = tif.series[0]
        pyramid = [zarr.open(series.aszarr(level=n), mode="r") for n in range(len(series.levels))]
        height, width = pyramid[0].shape
        top = max([int(r["label"]) + 1 for r in areas] + [1])
        table = names.colour_table(top)

        def read_image(scale: int, x: int, y: int, w: int, h: int) -> np.ndarray:
            return read_tile(slide, (x, y), downsample * scale, max(w, h))[:h, :w]

        def read_labels(scale: int, x: int, y: int, w: int, h: int) -> np.ndarray:
            level = min(int(math.log2(scale)), len(pyramid) - 1)
            step = scale // 2**level
            values = np.asarray(pyramid[level][y * step : (y + h) * step,
                                               x * step : (x + w) * step])[::step, ::step]
            rgba = np.zeros((*values.shape, 4), np.uint8)
            rgba[..., :3] = table[np.maximum(values.astype(np.int64) - 1, 0)]
            rgba[..., 3] = np.where(values > 0, 255, 0)
            return rgba

        zoom = folder / "zoom"
        config = {"image": write_pyramid(zoom, "slide", width, height, read_image, "jpg",
                                         f"{slide_slug}/zoom"),
                  "labels": write_pyramid(zoom, "labels", width, height, read_labels, "png",
                                          f"{slide_slug}/zoom"),
                  "opacity": VIEWER_OPACITY}
        examples = Examples()
        for y in range(0, height, EXAMPLE_SIDE):
            strip = np.asarray(pyramid[0][y : y + EXAMPLE_SIDE])
            for x in range(0, width, EXAMPLE_SIDE):
                found = np.bincount(strip[:, x : x + EXAMPLE_SIDE].ravel())
                for value in np.flatnonzero(found[1:]) + 1:
                    examples.offer(int(value) - 1, found[value] / EXAMPLE_SIDE**2,
                                   f"x {round(x * downsample)}, y {round(y * downsample)}",
                                   (x, y))
        tiles = _write_examples(examples, folder, slide_slug, names,
                                lambda xy: read_tile(slide, xy, downsample, EXAMPLE_SIDE))
    share = {int(r["label"]): float(r["percent_of_tissue"]) / 100 for r in areas}
    legend = html.legend([(k, names.name(k), names.colour(k), v, "") for k, v in share.items()])
    area_rows = [[html.swatch(names.colour(int(r["label"]))), html.esc(r["label"]),
                  html.esc(r["name"]), f"{float(r['area_um2']) / 1e6:.4f}",
                  html.bar(float(r["percent_of_tissue"]), names.colour(int(r["label"])), 100),
                  html.esc(r["pixels"])] for r in areas]
    outputs = " ".join(f'<a href="{html.esc(_link(run.output(k), out))}">{html.esc(k)}</a>'
                       for k in summary["outputs"])
    facts = _run_facts(summary, [
        ("slide", html.esc(summary["slide"])),
        ("resolution", f"{summary['mpp']} µm/px at level 0 ({html.esc(summary['mpp_source'])}); "
                       f"segmented at {summary['processing_mpp']:.3g} µm/px, label map "
                       f"{width} x {height} px, {summary['tiles']} tissue tiles"),
        ("outputs", outputs)])
    mpp_note = ("" if summary["mpp_source"] == "metadata" else
                f" The microns per pixel came from {summary['mpp_source']}, not the metadata.")
    parts = [
        html.section("run", "Run", facts),
        html.section("viewer", "Slide", html.viewer(config, legend),
                     "Scroll or pinch to zoom, drag to move; the slider sets the labels' "
                     "opacity. Shown at the resolution the slide was segmented at."),
        html.section("areas", "Area per label", html.table(
            ["", "id", "name", "area (mm²)", "% of tissue", "pixels"], area_rows, "metrics"),
            "Tissue only (no-tissue pixels are not counted)." + mpp_note),
        html.section("examples", "What each label looks like", tiles,
                     f"The {EXAMPLE_SIDE} x {EXAMPLE_SIDE} px tiles (at the segmentation's "
                     "resolution) each label covers most; positions in level-0 pixels."),
    ]
    return (f"{summary['method']} on {run.id}", "\n".join(parts),
            f"slide {summary['slide']}: {len(areas)} labels", True)


def _area_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a slide's area table."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError as error:
        raise InputError(path, f"cannot read the area table ({error.strerror})",
                         "run `unseg slide segment` again to write it") from error


_PAGES: dict[type, Callable[[Any, Path, str], Page]] = {
    FolderRun: _folder_page, BenchmarkRun: _benchmark_page, SlideRun: _slide_page}
