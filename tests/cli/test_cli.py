"""The `unseg` command as a user runs it: help, segment, fit, evaluate, benchmark, demo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unseg import methods
from unseg.cli.main import COMMANDS, main
from unseg.data.synthetic import write_dataset
from unseg.io import read_label_map


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", n=3, kind="he_tile", size=96, random_state=0)


def test_top_level_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "example" in capsys.readouterr().out


def test_method_options_come_from_the_signature_and_docstring(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["segment", "kmeans-color", "x.png", "--out", "o", "--help"])
    out = capsys.readouterr().out
    assert "--k K" in out and "Number of clusters" in out and "--random-state" in out


@pytest.mark.parametrize("command", [
    ["segment", "{m}", "x.png", "--out", "o"],
    ["fit", "{m}", "x", "--out", "m.npz"],
    ["slide", "segment", "--method", "{m}", "s.svs", "--out", "o"],
])
def test_every_method_options_parse_beside_each_command_own(command, capsys) -> None:
    """A method's options never clash with those of the command that takes them."""
    for name in methods.list():
        with pytest.raises(SystemExit) as stop:
            main([part.format(m=name) for part in command] + ["--help"])
        assert stop.value.code == 0, name
        assert "--random-state" in capsys.readouterr().out or name in ("watershed", "slic",
                                                                       "felzenszwalb")


def test_methods_lists_every_registered_method(capsys) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in methods.list():
        assert name in out


def test_segment_writes_label_maps_and_overlays(dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["segment", "kmeans-color", str(dataset), "--out", str(out), "--k", "3"]) == 0
    for image_path in sorted((dataset / "img").iterdir()):
        labels = read_label_map(out / image_path.name)
        assert labels.shape == np.array(Image.open(image_path)).shape[:2]
        assert set(np.unique(labels)) <= {0, 1, 2}
        overlay = np.array(Image.open(out / f"{image_path.stem}_overlay.png"))
        assert overlay.shape == labels.shape + (3,)
    assert "segmented 3 of 3" in capsys.readouterr().out


def test_a_bad_file_is_reported_and_skipped(dataset: Path, tmp_path: Path, capsys) -> None:
    images = tmp_path / "images"
    shutil.copytree(dataset / "img", images)
    good = sorted(images.iterdir())
    data = good[0].read_bytes()
    (images / "broken.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    code = main(["segment", "kmeans-color-dataset", str(images), "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.png" in err
    assert sorted(p.name for p in out.iterdir() if not p.stem.endswith("_overlay")) == sorted(
        [p.name for p in good] + ["run.json"]
    )
    assert "broken" in json.loads((out / "run.json").read_text())["failed"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_fit_then_segment_with_the_model(dataset: Path, tmp_path: Path) -> None:
    model = tmp_path / "colours.pkl"
    assert main(["fit", "kmeans-color-dataset", str(dataset), "--out", str(model), "--k", "3"]) == 0
    out_model, out_direct = tmp_path / "a", tmp_path / "b"
    assert main(["segment", "kmeans-color-dataset", str(dataset), "--model", str(model),
                 "--out", str(out_model)]) == 0
    assert main(["segment", "kmeans-color-dataset", str(dataset), "--k", "3",
                 "--out", str(out_direct)]) == 0
    for path in out_model.glob("*[0-9].png"):
        assert np.array_equal(read_label_map(path), read_label_map(out_direct / path.name))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["segment", "kmeans-colour", "DATA", "--out", "OUT"], "unknown method 'kmeans-colour'"),
        (["segment", "kmeans-color", "DATA", "--out", "OUT", "--k", "0"], "k must be an integer"),
        (["segment", "slic", "gone.png", "--out", "OUT"], "gone.png: file or folder not found"),
        (["fit", "slic", "DATA", "--out", "OUT/m.pkl"], "learns nothing"),
        (["segment", "slic", "DATA", "--model", "MODEL", "--out", "OUT"], "holds a fitted"),
        (["segment", "kmeans-color-dataset", "DATA", "--model", "DATA/img/synthetic-00.png",
          "--out", "OUT"], "not an unseg model file"),
    ],
)
def test_user_errors_exit_2_with_a_clear_message(
    argv: list[str], message: str, dataset: Path, tmp_path: Path, capsys
) -> None:
    model = tmp_path / "m.pkl"
    methods.save_model(methods.create("kmeans-color-dataset", k=2).fit(
        [np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)]), model)
    subs = {"DATA": str(dataset), "OUT": str(tmp_path / "out"), "MODEL": str(model)}
    argv = [subs.get(a, a.replace("DATA", str(dataset)).replace("OUT", str(tmp_path / "out")))
            for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_evaluate_prints_a_table_and_writes_json(dataset: Path, tmp_path: Path, capsys) -> None:
    pred = tmp_path / "pred"
    shutil.copytree(dataset / "mask", pred)
    report = tmp_path / "metrics.json"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(dataset), "--json", str(report)]) == 0
    assert "hungarian" in capsys.readouterr().out
    metrics = json.loads(report.read_text())
    assert metrics["miou"] == pytest.approx(1.0)
    assert metrics["pixel_accuracy"] == pytest.approx(1.0)


def test_evaluate_reports_missing_and_mis_sized_predictions(
    dataset: Path, tmp_path: Path, capsys
) -> None:
    pred = tmp_path / "pred"
    shutil.copytree(dataset / "mask", pred)
    names = sorted(p.name for p in pred.iterdir())
    (pred / names[0]).unlink()
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(pred / names[1])
    assert main(["evaluate", "--pred", str(pred), "--gt", str(dataset / "mask")]) == 1
    err = capsys.readouterr().err
    assert names[0].removesuffix(".png") in err and names[1] in err and "5x5" in err


def test_benchmark_writes_table_csv_and_plot(dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    code = main(["benchmark", "--data", str(dataset), "--methods", "random,kmeans-color-dataset",
                 "--param", "k=3", "--out", str(out)])
    assert code == 0
    table = (out / "benchmark.md").read_text()
    assert "| random |" in table and "| kmeans-color-dataset |" in table
    assert (out / "benchmark.csv").read_text().count("\n") == 3
    assert Image.open(out / "benchmark.png").size[0] > 100
    assert len(list((out / "predictions" / "random").glob("*.png"))) == 3


def test_demo_without_real_data_generates_tiles(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # so ../shared/data is not found
    assert main(["demo", "--out", "demo"]) == 0
    assert (tmp_path / "demo" / "metrics.md").exists()
    assert len(list((tmp_path / "demo" / "labels").glob("*_overlay.png"))) == 4
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert metrics["miou"] > 0.5  # H&E-like colours separate well


def test_demo_on_real_he_images_beats_colour_clusters(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "wsss4luad-val"
    assert main(["demo", "--data", str(data), "--out", str(tmp_path / "demo")]) == 0
    demo = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert demo["n_images"] == 31
    out = tmp_path / "colour"
    assert main(["segment", "kmeans-color-dataset", str(data), "--out", str(out), "--k", "8"]) == 0
    assert main(["evaluate", "--pred", str(out), "--gt", str(data), "--match", "majority",
                 "--json", str(tmp_path / "c.json")]) == 0
    colour = json.loads((tmp_path / "c.json").read_text())
    assert demo["miou"] > colour["miou"] + 0.02  # same k, same matching
