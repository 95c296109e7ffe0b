"""The report of a folder run: the run, a legend entry per label, metrics with class names,
example tiles, and a gallery of thumbnails whose scores are those of the evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unseg import methods
from unseg.data import LabelNames, discover
from unseg.data.synthetic import write_dataset
from unseg.errors import InputError
from unseg.io import read_label_map
from unseg.workflows import evaluate_folders, segment_samples
from unseg.workflows.report import write_report

NAMES = LabelNames({0: "red corner", 2: "blue corner"}, {2: (1, 2, 250)})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Quadrant images (300 px, so thumbnails shrink them) segmented perfectly into 4 labels."""
    root = tmp_path_factory.mktemp("folder")
    data = write_dataset(root / "data", n=7, kind="quadrants", size=300, random_state=0)
    segmenter = methods.create("kmeans-color-dataset", k=4, random_state=0)
    segment_samples(segmenter, discover([data]), root / "labels", names=NAMES)
    return root / "labels"


@pytest.fixture(scope="module")
def report(run: Path) -> Path:
    return write_report([run], run.parent / "report", match="hungarian")


def test_run_record_keeps_inputs_and_names(run: Path) -> None:
    record = json.loads((run / "run.json").read_text())
    assert set(record["samples"]) == set(record["written"])
    sample = record["samples"][record["written"][0]]
    assert Path(sample["image"]).is_file() and Path(sample["mask"]).is_file()
    assert record["names"] == {"0": {"name": "red corner"},
                               "2": {"name": "blue corner", "colour": [1, 2, 250]}}


def test_overlays_use_the_given_colours(run: Path) -> None:
    labels = read_label_map(run / "synthetic-00.png")
    overlay = np.array(Image.open(run / "synthetic-00_overlay.png"))
    image = np.array(Image.open(run.parent / "data" / "img" / "synthetic-00.png"))
    where = labels == 2
    expected = np.round(0.5 * image[where] + 0.5 * np.array([1, 2, 250]))
    assert np.abs(overlay[where].astype(int) - expected).max() <= 1


def test_every_file_exists_and_every_label_has_a_legend_entry(report: Path, run: Path,
                                                              read_report) -> None:
    pages = read_report(report)
    page = pages["index.html"]
    used = set()
    for path in run.glob("synthetic-??.png"):
        used |= {int(v) for v in np.unique(read_label_map(path))}
    legend = {int(row[1]): row[2] for row in page.tables["legend"]}
    assert set(legend) == used == {0, 1, 2, 3}
    assert legend[0] == "red corner" and legend[2] == "blue corner"
    assert legend[1] == "concept 1"  # no name given: "concept N" stays
    assert (report.parent / "assets" / "openseadragon" / "LICENSE.txt").is_file()


def test_metrics_use_class_names_and_match_the_evaluation(report: Path, run: Path,
                                                          read_report) -> None:
    page = read_report(report)["index.html"]
    result = evaluate_folders(run, run.parent / "data")
    assert result.miou == pytest.approx(1.0)  # quadrants are found exactly
    classes = [row[0] for row in page.tables["metrics"]]
    assert classes == ["top-left", "top-right", "bottom-left", "bottom-right"]
    heat = page.tables["heatmap"]
    assert len(heat) == 4 and all(row.count("100%") == 1 for row in heat)
    gallery = page.gallery
    assert gallery["values"][:2] == ["mIoU", "pixel accuracy"]
    assert len(gallery["rows"]) == 7 and gallery["columns"] == ["image", "labels",
                                                                "ground truth"]
    by_id = {e["id"]: e["miou"] for e in result.per_image}
    assert {row[0]: row[3][0] for row in gallery["rows"]} == pytest.approx(by_id)


def test_examples_show_where_each_label_is_most_present(report: Path) -> None:
    html = report.read_text()
    assert html.count('class="concept"') == 4
    crops = sorted((report.parent / "run-labels" / "examples").glob("*.jpg"))
    assert len(crops) == 4 * 6  # 6 of the 7 images per label
    assert "100% · synthetic-" in html  # a quadrant fills a whole 128 px window
    with Image.open(crops[0]) as crop:
        assert crop.size == (128, 128)


def test_gallery_rows_are_data_not_markup(report: Path, read_report) -> None:
    """The page holds the rows as data and its script draws one page of them at a time, so a
    run of thousands of images gives a page of the same weight in the browser."""
    page = read_report(report)["index.html"]
    images = [ref for ref in page.refs if ref.endswith(".jpg")]
    assert all("/examples/" in ref for ref in images)  # no gallery <img> in the markup
    assert page.gallery["per_page"] == 50


def test_names_given_to_the_report_replace_the_recorded_ones(run: Path, tmp_path: Path,
                                                             read_report) -> None:
    index = write_report([run], tmp_path / "named", names=LabelNames({1: "green corner"}))
    legend = {int(r[1]): r[2] for r in read_report(index)["index.html"].tables["legend"]}
    assert legend[1] == "green corner" and legend[0] == "concept 0"


def test_not_a_run_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no run.json, benchmark.json or finished slide"):
        write_report([tmp_path], tmp_path / "report")


def test_real_images_with_class_names(shared_data: Path, tmp_path: Path, read_report) -> None:
    data = shared_data / "wsss4luad-val"
    segmenter = methods.create("kmeans-color-dataset", k=4, random_state=0)
    segment_samples(segmenter, discover([data]), tmp_path / "labels")
    page = read_report(write_report([tmp_path / "labels"], tmp_path / "report"))["index.html"]
    assert [row[0] for row in page.tables["metrics"]] == ["tumour", "stroma", "normal",
                                                          "background"]
    assert len(page.gallery["rows"]) == 31


def test_images_without_masks_get_an_empty_cell_and_no_metrics(tmp_path: Path,
                                                               read_report) -> None:
    data = write_dataset(tmp_path / "data", n=2, kind="blobs", size=48, random_state=0)
    plain = write_dataset(tmp_path / "other", n=1, kind="blobs", size=48, random_state=1) / "img"
    (plain / "synthetic-00.png").rename(plain / "plain.png")
    segmenter = methods.create("kmeans-color", k=2, random_state=0)
    segment_samples(segmenter, discover([data, plain]), tmp_path / "labels")
    page = read_report(write_report([tmp_path / "labels"], tmp_path / "report"))["index.html"]
    rows = {row[0]: row[1] for row in page.gallery["rows"]}
    assert rows["plain"][2] is None and all(rows["synthetic-00"])
    assert 'id="metrics"' not in (tmp_path / "report" / "index.html").read_text()


def test_links_to_files_with_any_name(tmp_path: Path, read_report) -> None:
    data = write_dataset(tmp_path / "data", n=1, kind="blobs", size=48, random_state=0)
    (data / "img" / "synthetic-00.png").rename(data / "img" / "a #1 [x, y]%.png")
    (data / "mask" / "synthetic-00.png").rename(data / "mask" / "a #1 [x, y]%.png")
    segment_samples(methods.create("kmeans-color", k=2), discover([data]), tmp_path / "labels")
    page = read_report(write_report([tmp_path / "labels"], tmp_path / "report"))["index.html"]
    (row,) = page.gallery["rows"]
    assert row[0] == "a #1 [x, y]%" and "%23" in row[2][0]  # '#' would end the path
