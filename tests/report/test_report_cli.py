"""`unseg report`, `--report` on segment / slide segment / benchmark, and `--names`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unseg.cli.main import main
from unseg.data.synthetic import write_dataset


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", n=3, kind="he_tile", size=96, random_state=0)


@pytest.fixture()
def names(tmp_path: Path) -> Path:
    path = tmp_path / "names.json"
    path.write_text(json.dumps({"0": "glass", "2": {"name": "nuclei", "colour": "#00ff00"}}))
    return path


def test_segment_with_names_and_report(dataset: Path, names: Path, tmp_path: Path, capsys,
                                       read_report) -> None:
    out = tmp_path / "out"
    code = main(["segment", "kmeans-color-dataset", str(dataset), "--out", str(out), "--k", "3",
                 "--names", str(names), "--report"])
    assert code == 0
    assert f"wrote the report {out / 'report' / 'index.html'}" in capsys.readouterr().out
    page = read_report(out / "report" / "index.html")["index.html"]
    legend = {int(row[1]): row[2] for row in page.tables["legend"]}
    assert legend == {0: "glass", 1: "concept 1", 2: "nuclei"}
    assert [row[0] for row in page.tables["metrics"]] == ["background", "stroma", "nuclei"]
    labels = np.array(Image.open(out / "synthetic-00.png"))
    overlay = np.array(Image.open(out / "synthetic-00_overlay.png")).astype(int)
    image = np.array(Image.open(dataset / "img" / "synthetic-00.png")).astype(int)
    green = overlay[labels == 2] - np.round(0.5 * image[labels == 2])
    assert np.abs(green - [0, 128, 0]).max() <= 1  # half of #00ff00 over the image


def test_report_command_on_a_run_and_its_errors(dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["segment", "kmeans-color", str(dataset), "--out", str(out), "--k", "3"]) == 0
    assert not (out / "report").exists()
    assert main(["report", str(out), "--out", str(tmp_path / "rep"), "--match", "majority"]) == 0
    assert "majority" in (tmp_path / "rep" / "index.html").read_text()
    capsys.readouterr()
    assert main(["report", str(dataset), "--out", str(tmp_path / "rep2")]) == 2
    err = capsys.readouterr().err
    assert str(dataset) in err and "no run.json, benchmark.json or finished slide" in err


def test_bad_names_file_stops_before_any_work(dataset: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "names.json"
    bad.write_text('{"zero": "glass"}')
    out = tmp_path / "out"
    code = main(["segment", "kmeans-color", str(dataset), "--out", str(out), "--names", str(bad)])
    assert code == 2 and not out.exists()
    assert f"{bad}: 'zero' is not a label id" in capsys.readouterr().err


def test_slide_segment_with_names_and_report(synthetic_slide, names: Path, tmp_path: Path,
                                             read_report) -> None:
    out = tmp_path / "maps"
    slide = synthetic_slide()
    code = main(["slide", "segment", str(slide), "--method", "kmeans-color-dataset", "--k", "3",
                 "--tile", "96", "--overlap", "16", "--tiles-per-slide", "20", "--names",
                 str(names), "--out", str(out), "--report"])
    assert code == 0
    page = read_report(out / "report" / "index.html")["index.html"]
    assert page.blocks["viewer-data"]
    legend = {int(row[1]): row[2] for row in page.tables["legend"]}
    assert legend[0] == "glass" and legend[2] == "nuclei"
    rows = (out / f"{slide.stem}_areas.csv").read_text().splitlines()
    assert rows[1].split(",")[:2] == ["0", "glass"]
    features = json.loads((out / f"{slide.stem}.geojson").read_text())["features"]
    assert {f["properties"]["classification"]["name"] for f in features} == {
        "glass", "concept 1", "nuclei"}


def test_benchmark_report_and_evaluate_use_class_names(dataset: Path, tmp_path: Path, capsys,
                                                       read_report) -> None:
    out = tmp_path / "bench"
    assert main(["benchmark", "--data", str(dataset), "--methods", "kmeans-color,slic",
                 "--param", "k=3", "--out", str(out), "--report"]) == 0
    assert "| method | background (0) | stroma (1) | nuclei (2) |" in (
        out / "benchmark.md").read_text()
    page = read_report(out / "report" / "index.html")["index.html"]
    assert page.gallery["columns"] == ["image", "ground truth", "kmeans-color", "slic"]
    capsys.readouterr()
    metrics = tmp_path / "m.json"
    assert main(["evaluate", "--pred", str(out / "predictions" / "slic"), "--gt", str(dataset),
                 "--json", str(metrics)]) == 0
    assert "| nuclei (2) |" in capsys.readouterr().out
    assert json.loads(metrics.read_text())["class_names"]["1"] == "stroma"


def test_demo_writes_a_report_with_the_generated_class_names(tmp_path: Path, monkeypatch,
                                                             read_report) -> None:
    monkeypatch.chdir(tmp_path)  # so ../shared/data is not found: generated tiles
    assert main(["demo", "--out", "demo"]) == 0
    page = read_report(tmp_path / "demo" / "report" / "index.html")["index.html"]
    assert [row[0] for row in page.tables["metrics"]] == ["background", "stroma", "nuclei"]
    assert len(page.gallery["rows"]) == 4
