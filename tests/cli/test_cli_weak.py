"""`unseg fit METHOD DATA --labels ...` and segmenting with the model: class ids and names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unseg.cli.main import main
from unseg.data.synthetic import he_tile
from unseg.io import read_label_map, write_image

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
QUICK = ["--epochs", "1", "--input-size", "32", "--weights", "random"]


def test_fit_on_wsss4luad_file_names_then_segment_writes_named_class_ids(tmp_path, capsys):
    folder = DATA / "wsss4luad-train-examples"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    model = tmp_path / "lpd.npz"
    assert main(["fit", "lpd", str(folder), "--labels", "names", "--out", str(model),
                 *QUICK]) == 0
    assert "fitted LPDSegmenter" in capsys.readouterr().out
    out = tmp_path / "labels"
    assert main(["segment", "lpd", str(folder), "--model", str(model), "--out", str(out)]) == 0
    for path in folder.glob("*.png"):
        assert set(np.unique(read_label_map(out / path.name)).tolist()) <= {0, 1, 2, 3}
    record = json.loads((out / "run.json").read_text())
    assert {k: v["name"] for k, v in record["names"].items()} == {
        "0": "tumour", "1": "stroma", "2": "normal", "3": "background"}


def test_fit_from_a_csv_and_errors_name_the_fix(tmp_path, capsys):
    folder = tmp_path / "tiles"
    for i in range(3):
        write_image(folder / f"t{i}.png", he_tile(48, random_state=i)[0])
    csv = tmp_path / "labels.csv"
    csv.write_text("name,nuclei,stroma\nt0.png,1,0\nt1.png,0,1\n")
    model = tmp_path / "cam.npz"
    assert main(["fit", "cam", str(folder), "--labels", str(csv), "--out", str(model),
                 *QUICK]) == 2
    assert "t2.png: has no image-level labels in " + str(csv) in capsys.readouterr().err
    assert not model.exists()
    csv.write_text("name,nuclei,stroma\nt0.png,1,0\nt1.png,0,1\nt2,1,1\n")
    assert main(["fit", "cam", str(folder), "--labels", str(csv), "--out", str(model),
                 *QUICK]) == 0
    assert main(["fit", "kmeans-color-dataset", str(folder), "--labels", str(csv), "--out",
                 str(tmp_path / "k.npz")]) != 0
    assert "learns without labels" in capsys.readouterr().err
    assert main(["fit", "lpd", str(folder), "--out", str(tmp_path / "l.npz"), *QUICK]) != 0
    assert "--labels" in capsys.readouterr().err
    assert main(["segment", "lpd", str(folder), "--out", str(tmp_path / "o"), *QUICK]) != 0
    assert "image-level labels" in capsys.readouterr().err


def test_benchmark_refuses_weak_methods_and_says_what_to_run(tmp_path, capsys):
    folder = DATA / "wsss4luad-val"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    assert main(["benchmark", "--data", str(folder), "--methods", "random,lpd", "--out",
                 str(tmp_path / "b")]) != 0
    assert "--match identity" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
