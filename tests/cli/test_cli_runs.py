"""What a user sees of a run: progress in logs, labels used, failures counted, masks read right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unseg.cli.main import main
from unseg.data.synthetic import he_tile, quadrants
from unseg.io import read_label_map, write_image, write_label_map
from unseg.workflows.runs import LabelUsage


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``unseg ARGS`` in a new process whose standard error is a pipe, as in a batch job."""
    return subprocess.run([sys.executable, "-m", "unseg.cli.main", *args], capture_output=True,
                          text=True, env=os.environ | (env or {}))


@pytest.fixture()
def tiles(tmp_path: Path) -> Path:
    folder = tmp_path / "tiles"
    for i in range(4):
        write_image(folder / f"t{i}.png", quadrants(48, random_state=i)[0])
    return folder


# -- labels used ------------------------------------------------------------------------------


def test_label_usage_warns_when_few_labels_or_one_label_hold_the_pixels() -> None:
    usage = LabelUsage()
    usage.add(np.array([[0, 0, 1, 1], [2, 2, 3, 3]]))
    assert usage.summary("m", 4)["warning"] is None
    assert usage.summary("m", 4)["labels_used"] == 4
    one = LabelUsage()
    one.add(np.r_[np.zeros(997, int), [1, 2, 3]])
    summary = one.summary("m", 4)
    assert summary["largest_share"] == pytest.approx(0.997)
    assert "m used 1 of its 4 labels" in summary["warning"]
    half = LabelUsage()
    half.add(np.r_[np.zeros(50, int), np.ones(50, int)])
    assert "used 2 of its 8 labels" in half.summary("m", 8)["warning"]
    assert half.summary("m", None)["warning"] is None  # per-image ids: no expected count


def test_a_collapsed_model_warns_in_the_output_and_the_run_record(tiles: Path,
                                                                   tmp_path: Path) -> None:
    model = tmp_path / "colours.npz"
    fitted = _run("fit", "kmeans-color-dataset", str(tiles), "--out", str(model), "--k", "4")
    assert fitted.returncode == 0 and "collapsed" not in fitted.stderr
    assert "4 of 4 labels used" in fitted.stderr
    flat = tmp_path / "flat"
    for i in range(3):
        write_image(flat / f"f{i}.png", np.full((40, 40, 3), 128, np.uint8))
    out = tmp_path / "labels"
    run = _run("segment", "kmeans-color-dataset", str(flat), "--model", str(model), "--out",
               str(out))
    assert run.returncode == 0
    assert "warning: kmeans-color-dataset used 1 of its 4 labels" in run.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["labels"]["labels_used"] == 1 and "collapsed" in record["labels"]["warning"]
    assert record["method"] == "kmeans-color-dataset" and len(record["written"]) == 3


# -- progress when standard error is not a terminal --------------------------------------------


def test_progress_reaches_a_log_and_quiet_silences_it(tiles: Path, tmp_path: Path) -> None:
    every = {"UNSEG_PROGRESS_SECONDS": "0"}
    run = _run("segment", "slic", str(tiles), "--out", str(tmp_path / "a"), env=every)
    lines = [line for line in run.stderr.splitlines() if line.startswith("unseg: segmenting")]
    assert lines[0].startswith("unseg: segmenting (slic): 1/4 img")
    assert "elapsed" in lines[0] and "ETA" in lines[0]
    assert lines[-1].startswith("unseg: segmenting (slic): 4/4 img")
    quiet = _run("segment", "slic", str(tiles), "--out", str(tmp_path / "b"), "--quiet",
                 env=every)
    assert quiet.returncode == 0 and "segmenting" not in quiet.stderr


def test_training_reports_each_epoch_in_a_log(tiles: Path, tmp_path: Path) -> None:
    run = _run("fit", "cirs", str(tiles), "--out", str(tmp_path / "m.npz"), "--epochs", "2",
               "--input-size", "16", "--batch-size", "2", env={"UNSEG_PROGRESS_SECONDS": "0"})
    assert run.returncode == 0, run.stderr
    epochs = [line for line in run.stderr.splitlines() if "training cirs:" in line]
    assert "1/2 epoch" in epochs[0] and "loss" in epochs[0]
    assert "2/2 epoch" in epochs[-1]


# -- failures and masks ------------------------------------------------------------------------


def test_a_benchmark_counts_a_mask_that_does_not_fit_as_a_failure(tmp_path: Path,
                                                                   capsys) -> None:
    data = tmp_path / "data"
    for i in range(4):
        image, mask = quadrants(32, random_state=i)
        write_image(data / "img" / f"q{i}.png", image)
        write_label_map(data / "mask" / f"q{i}.png", mask if i else mask[:20])
    code = main(["benchmark", "--data", str(data), "--methods", "kmeans-color", "--out",
                 str(tmp_path / "bench")])
    assert code == 1
    captured = capsys.readouterr()
    assert "| kmeans-color |" in captured.out and "| 1 |" in captured.out
    assert "kmeans-color: failed q0" in captured.err


def _instances(path: Path) -> np.ndarray:
    """A 16-bit instance mask of 300 square nuclei, ids 1..300: one of them is id 255."""
    mask = np.zeros((200, 300), np.uint16)
    for i in range(300):
        y, x = 10 * (i // 30), 10 * (i % 30)
        mask[y + 2 : y + 8, x + 2 : x + 8] = i + 1
    write_label_map(path, mask)
    return mask


def test_instance_masks_are_scored_with_every_nucleus(tmp_path: Path, capsys) -> None:
    mask = _instances(tmp_path / "gt" / "n.png")
    pred = tmp_path / "pred"
    write_label_map(pred / "n.png", (mask > 0).astype(np.uint8))
    report = tmp_path / "m.json"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(tmp_path / "gt"), "--binarize",
                 "--match", "foreground", "--scope", "image", "--json", str(report)]) == 0
    metrics = json.loads(report.read_text())
    assert metrics["per_class"]["1"]["pixels"] == int((mask > 0).sum())  # nucleus 255 counted
    assert metrics["miou"] == pytest.approx(1.0)
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(pred), "--gt", str(tmp_path / "gt")]) == 2
    assert "above the ignore id 255" in capsys.readouterr().err


def test_real_instance_masks_with_binarize(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "cpm-nuclei-dev"
    out = tmp_path / "pred"
    assert main(["segment", "kmeans-color", str(data), "--k", "2", "--out", str(out)]) == 0
    report = tmp_path / "m.json"
    assert main(["evaluate", "--pred", str(out), "--gt", str(data), "--binarize", "--match",
                 "foreground", "--scope", "image", "--json", str(report)]) == 0
    metrics = json.loads(report.read_text())
    masks = [read_label_map(p) for p in sorted((data / "mask").iterdir())]
    assert metrics["n_images"] == len(masks)
    assert metrics["per_class"]["1"]["pixels"] == sum(int((m > 0).sum()) for m in masks)
    assert metrics["binary"]["dice"] > 0.2  # measured 0.29: colour alone finds nuclei poorly


# -- memory does not grow with the number of images --------------------------------------------


def _peak_mb(*args: str) -> float:
    code = ("import resource, sys; from unseg.cli.main import main; "
            "assert main(sys.argv[1:]) == 0; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    done = subprocess.run([sys.executable, "-c", code, *args, "--quiet"], capture_output=True,
                          text=True, check=True)
    return float(done.stdout.split()[-1])


def test_a_folder_run_needs_the_same_memory_for_200_images_as_for_20(tmp_path: Path) -> None:
    tile = he_tile(256, random_state=0)[0]
    for n in (20, 200):  # images of many sizes: every one a new shape for the convolutions
        for i in range(n):
            write_image(tmp_path / f"d{n}" / f"im{i:03d}.png",
                        tile[: 64 + (i * 7) % 96, : 64 + (i * 13) % 96])
    model = tmp_path / "cuts.npz"
    assert main(["fit", "cuts", str(tmp_path / "d20"), "--out", str(model), "--epochs", "1",
                 "--crop-size", "48", "--quiet"]) == 0
    peaks = {n: _peak_mb("segment", "cuts", str(tmp_path / f"d{n}"), "--model", str(model),
                         "--n-landmarks", "50", "--k", "3", "--out", str(tmp_path / f"o{n}"))
             for n in (20, 200)}
    # measured: +4% with the convolution cache bounded, +24% without
    assert peaks[200] < 1.1 * peaks[20], peaks


# -- wording -----------------------------------------------------------------------------------


def test_method_descriptions_are_whole_sentences(capsys) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "clustered over the dataset: labels consistent across images." in out
    assert "dsm, acseg 8" in out


def test_an_unknown_option_points_to_the_method_help(tiles: Path, tmp_path: Path, capsys
                                                     ) -> None:
    assert main(["segment", "slic", str(tiles), "--out", str(tmp_path), "--bogus", "1"]) == 2
    assert "`unseg segment slic --help` lists the options" in capsys.readouterr().err


def test_a_bank_given_as_a_model_and_a_folder_as_the_model_file(tiles: Path, tmp_path: Path,
                                                               capsys) -> None:
    bank = tmp_path / "bank.npz"
    assert main(["concepts", "fit", "--data", str(tiles), "--k", "2", "--out", str(bank),
                 "--tile-size", "16"]) == 0
    assert main(["segment", "fseg", str(tiles), "--model", str(bank), "--out",
                 str(tmp_path / "o")]) == 2
    assert "is a concept bank, not a fitted model" in capsys.readouterr().err
    folder = tmp_path / "models"
    folder.mkdir()
    assert main(["fit", "cirs", str(tiles), "--out", str(folder), "--epochs", "50"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert list(folder.iterdir()) == []  # refused before training: no checkpoint either
