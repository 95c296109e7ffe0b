"""The report of a benchmark: the comparison table and plot, IoU per class by name, each
method's labels beside the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unseg.data.synthetic import write_dataset
from unseg.workflows.benchmark import run_benchmark, write_reports
from unseg.workflows.report import write_report

METHODS = ["kmeans-color", "random"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    data = write_dataset(root / "data", n=4, kind="quadrants", size=64, random_state=0)
    rows = run_benchmark(data, METHODS, root / "bench", params={"k": 4})
    write_reports(rows, root / "bench", data=data, match="hungarian", scope="dataset")
    return root / "bench"


def test_benchmark_record_and_tables_name_the_classes(bench: Path) -> None:
    record = json.loads((bench / "benchmark.json").read_text())
    assert [m["method"] for m in record["methods"]] == METHODS
    result = record["methods"][0]["result"]
    assert result["class_names"] == {"0": "top-left", "1": "top-right", "2": "bottom-left",
                                     "3": "bottom-right"}
    assert len(result["confusion"]) == result["n_clusters"]
    assert "| method | top-left (0) | top-right (1) | bottom-left (2) | bottom-right (3) |" in (
        bench / "benchmark.md").read_text()


def test_report_shows_comparison_classes_and_every_method(bench: Path, tmp_path: Path,
                                                          read_report) -> None:
    page = read_report(write_report([bench], tmp_path / "report"))["index.html"]
    assert "benchmark-bench/benchmark.png" in page.refs
    per_class = [row[0] for row in page.tables["metrics"] if row[0] in {
        "top-left", "top-right", "bottom-left", "bottom-right"}]
    assert per_class[:4] == ["top-left", "top-right", "bottom-left", "bottom-right"]
    gallery = page.gallery
    assert gallery["columns"] == ["image", "ground truth", *METHODS]
    assert gallery["values"] == [f"mIoU {m}" for m in METHODS]
    kmeans = {row[0]: row[3][0] for row in gallery["rows"]}
    assert min(kmeans.values()) == pytest.approx(1.0)  # quadrants: found exactly
