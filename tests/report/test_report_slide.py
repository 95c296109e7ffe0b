"""The report of a slide run: deep-zoom tiles of the slide and of its labels that agree with the
label map, a legend and area table with the names given, example tiles per label."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from unseg import methods
from unseg.data import LabelNames
from unseg.report.deepzoom import TILE, levels
from unseg.workflows import SlideOptions, segment_slides
from unseg.workflows.report import write_report

NAMES = LabelNames({1: "nuclei-rich"}, {1: (200, 0, 100)})


@pytest.fixture(scope="module")
def slide_run(synthetic_slide, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("slide-run")
    options = SlideOptions(magnification=10, tile_size=96, overlap=16, batch_size=4,
                           tiles_per_slide=20)
    segmenter = methods.create("kmeans-color-dataset", k=3, random_state=0)
    run = segment_slides(segmenter, [synthetic_slide()], out, options, names=NAMES)
    assert not run.failures and len(run.results) == 1
    return out


@pytest.fixture(scope="module")
def report(slide_run: Path) -> Path:
    return write_report([slide_run], slide_run / "report")


def test_pyramid_levels() -> None:
    assert levels(1, 1) == [(1, 1, 1)]
    found = levels(600, 300)  # top = ceil(log2(600)) = 10
    assert len(found) == 11 and found[0] == (1024, 1, 1) and found[-1] == (1, 600, 300)
    assert found[-2] == (2, 300, 150)


def test_every_tile_exists_and_every_label_has_a_legend_entry(report: Path, slide_run: Path,
                                                              read_report) -> None:
    page = read_report(report)["index.html"]  # checks every tile of both pyramids
    with tifffile.TiffFile(slide_run / "synthetic-tiff-0.25.ome.tif") as tif:
        values = tif.series[0].asarray()
    present = {int(v) - 1 for v in np.unique(values) if v}
    legend = {int(row[1]): row[2] for row in page.tables["legend"]}
    assert set(legend) == present and legend[1] == "nuclei-rich" and legend[0] == "concept 0"
    areas = {int(row[1]): row[2] for row in page.tables["metrics"]}
    assert areas == legend
    (config,) = page.blocks["viewer-data"]
    size = config["labels"]["Image"]["Size"]
    assert (int(size["Height"]), int(size["Width"])) == values.shape


def test_label_tiles_show_the_label_map(report: Path, slide_run: Path) -> None:
    with tifffile.TiffFile(slide_run / "synthetic-tiff-0.25.ome.tif") as tif:
        values = tif.series[0].asarray()
    height, width = values.shape
    top = len(levels(width, height)) - 1
    zoom = report.parent / "slide-synthetic-tiff-0.25" / "zoom"
    colours = NAMES.colour_table(3)
    for level, scale in ((top, 1), (top - 2, 4)):
        tile = np.array(Image.open(zoom / "labels_files" / str(level) / "0_0.png"))
        expected = values[: TILE * scale : scale, : TILE * scale : scale]
        assert tile.shape[:2] == expected.shape
        assert np.array_equal(tile[..., 3] > 0, expected > 0)  # no tissue: transparent
        inside = expected > 0
        assert np.array_equal(tile[..., :3][inside], colours[expected[inside] - 1])
    image = np.array(Image.open(zoom / "slide_files" / str(top) / "0_0.jpg"))
    assert image.shape == (min(TILE, height), min(TILE, width), 3)


def test_slide_outputs_carry_the_names(slide_run: Path) -> None:
    geojson = json.loads((slide_run / "synthetic-tiff-0.25.geojson").read_text())
    classes = {f["properties"]["measurements"]["concept"]: f["properties"]["classification"]
               for f in geojson["features"]}
    assert classes[1] == {"name": "nuclei-rich", "color": [200, 0, 100]}
    assert classes[0]["name"] == "concept 0"
    assert "nuclei-rich" in (slide_run / "synthetic-tiff-0.25_areas.csv").read_text()
    with tifffile.TiffFile(slide_run / "synthetic-tiff-0.25.ome.tif") as tif:
        assert "nuclei-rich" in tif.ome_metadata
    summary = json.loads((slide_run / "synthetic-tiff-0.25.json").read_text())
    assert summary["names"] == {"1": {"name": "nuclei-rich", "colour": [200, 0, 100]}}
    assert {"unseg_version", "date", "command"} <= set(summary)


def test_other_names_on_a_finished_slide_are_refused(slide_run: Path, synthetic_slide) -> None:
    options = SlideOptions(magnification=10, tile_size=96, overlap=16, batch_size=4,
                           tiles_per_slide=20)
    segmenter = methods.create("kmeans-color-dataset", k=3, random_state=0)
    run = segment_slides(segmenter, [synthetic_slide()], slide_run, options,
                         names=LabelNames({1: "other"}))
    (message,) = run.failures.messages.values()
    assert "holds the results of another slide, method or options" in message
    again = segment_slides(segmenter, [synthetic_slide()], slide_run, options, names=NAMES)
    assert again.results[0].skipped  # the same names: the finished slide is kept


def test_examples_come_from_the_slide(report: Path) -> None:
    html = report.read_text()
    crops = sorted((report.parent / "slide-synthetic-tiff-0.25" / "examples").glob("*.jpg"))
    assert crops and html.count('class="concept"') == 3
    with Image.open(crops[0]) as crop:
        assert crop.size == (128, 128)
