"""Whole-slide segmentation: tissue tiles, stitching, outputs, resume, cohorts and Dask."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from unseg import methods
from unseg.cli.main import main
from unseg.data.synthetic import synthetic_slide_truth, write_synthetic_slide
from unseg.io import open_slide
from unseg.workflows import LocalExecutor, SlideOptions, plan_slide, segment_slides

# 0.25 um/px slides read at 10x: downsample 4, a pyramid level, so tiles need no resampling
OPTIONS = SlideOptions(magnification=10, tile_size=96, overlap=16, batch_size=2,
                       tiles_per_slide=40)
WIDTH, HEIGHT = 2400, 1800


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("slides")
    return [
        write_synthetic_slide(folder / "a.tif", WIDTH, HEIGHT, random_state=1),
        write_synthetic_slide(folder / "b.svs", WIDTH, HEIGHT, flavour="svs", random_state=2),
    ]


def colour_model() -> methods.Segmenter:
    return methods.create("kmeans-color-dataset", k=3, random_state=0)


def canvas(path: Path) -> np.ndarray:
    return tifffile.imread(path)


def majority_accuracy(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Pixel accuracy on tissue after mapping each label to its majority class (one mapping)."""
    labels = np.concatenate([p.ravel() for p, _ in pairs]).astype(np.int64)
    truth = np.concatenate([t.ravel() for _, t in pairs]).astype(np.int64)
    keep = (labels > 0) & (truth > 0)
    table = np.zeros((labels.max() + 1, truth.max() + 1), dtype=np.int64)
    np.add.at(table, (labels[keep], truth[keep]), 1)
    return table.max(axis=1).sum() / keep.sum()


def test_plan_keeps_only_tissue_tiles(slides: list[Path]) -> None:
    plan = plan_slide(slides[0], OPTIONS)
    assert plan.shape == (HEIGHT // 4, WIDTH // 4)
    truth = synthetic_slide_truth(WIDTH, HEIGHT, 4, random_state=1)
    n_all = -(-plan.shape[0] // 96) * -(-plan.shape[1] // 96)
    assert 0 < len(plan.tiles) < n_all
    for tile in plan.tiles:
        core = truth[tile.y : tile.y + tile.height, tile.x : tile.x + tile.width]
        assert (core > 0).any()


def test_slides_segmented_consistently_with_all_outputs(slides: list[Path], tmp_path: Path
                                                        ) -> None:
    run = segment_slides(colour_model(), slides, tmp_path, OPTIONS)
    assert len(run.failures) == 0 and len(run.results) == 2
    assert (tmp_path / "kmeans-color-dataset.model").is_file()
    pairs = []
    for path, seed in zip(slides, (1, 2), strict=True):
        sid = path.stem
        labels = canvas(tmp_path / f"{sid}.ome.tif")
        truth = synthetic_slide_truth(WIDTH, HEIGHT, 4, random_state=seed)
        assert labels.shape == truth.shape and labels.dtype == np.uint8
        pairs.append((labels, truth))
        # glass stays 0, tissue is labelled
        assert (labels[truth == 0] == 0).mean() > 0.95
        assert (labels[truth > 0] > 0).mean() > 0.95
        with open(tmp_path / f"{sid}_areas.csv") as f:
            rows = list(csv.DictReader(f))
        assert abs(sum(float(r["percent_of_tissue"]) for r in rows) - 100) < 0.1
        pixels = {int(r["label"]) + 1: int(r["pixels"]) for r in rows}
        values, counts = np.unique(labels[labels > 0], return_counts=True)
        assert pixels == dict(zip(values.tolist(), counts.tolist(), strict=True))
        area = float(rows[0]["area_um2"])
        assert area == pytest.approx(int(rows[0]["pixels"]) * 1.0**2, rel=1e-6)  # 1 um/px
        features = json.loads((tmp_path / f"{sid}.geojson").read_text())
        assert features["type"] == "FeatureCollection"
        names = {f["properties"]["classification"]["name"] for f in features["features"]}
        assert names == {f"concept {v - 1}" for v in values.tolist()}
        summary = json.loads((tmp_path / f"{sid}.json").read_text())
        assert summary["tiles"] == len(plan_slide(path, OPTIONS).tiles)
        assert (tmp_path / f"{sid}_overlay.png").is_file()
        assert not (tmp_path / f"{sid}.partial").exists()
    # one label, one tissue class, on both slides
    assert majority_accuracy(pairs) > 0.9


def test_tiles_stitch_without_seams(slides: list[Path], tmp_path: Path) -> None:
    """A per-pixel method on tiles gives exactly its labels on the whole image."""
    model = colour_model()
    segment_slides(model, slides[:1], tmp_path, OPTIONS)
    model = methods.load_model(tmp_path / "kmeans-color-dataset.model")
    labels = canvas(tmp_path / "a.ome.tif")
    with open_slide(slides[0]) as slide:
        level = slide.best_level_for_downsample(4)
        assert slide.level_downsamples[level] == pytest.approx(4)
        image = slide.read_region((0, 0), level, (labels.shape[1], labels.shape[0]))
    whole = model.predict(image) + 1
    tissue = labels > 0
    np.testing.assert_array_equal(labels[tissue], whole[tissue])


class Crash(Exception):
    pass


class CrashingExecutor(LocalExecutor):
    """Stops the run after some batches, as a killed process would."""

    def __init__(self, after: int) -> None:
        self.after = after

    def run(self, function, shared, tasks):  # type: ignore[no-untyped-def]
        for i, item in enumerate(super().run(function, shared, tasks)):
            if i == self.after:
                raise Crash
            yield item


def test_interrupted_run_resumes_to_identical_outputs(slides: list[Path], tmp_path: Path
                                                      ) -> None:
    segment_slides(colour_model(), slides[:1], tmp_path / "whole", OPTIONS)
    with pytest.raises(Crash):
        segment_slides(colour_model(), slides[:1], tmp_path / "resumed", OPTIONS,
                       executor=CrashingExecutor(3))
    done = (tmp_path / "resumed" / "a.partial" / "done.txt").read_text().split()
    assert len(done) == 3
    run = segment_slides(colour_model(), slides[:1], tmp_path / "resumed", OPTIONS)
    assert run.results[0].resumed_batches == 3
    for name in ("a.ome.tif", "a.geojson", "a_areas.csv"):
        whole, resumed = tmp_path / "whole" / name, tmp_path / "resumed" / name
        if name.endswith(".tif"):
            np.testing.assert_array_equal(tifffile.imread(whole), tifffile.imread(resumed))
        else:
            assert whole.read_bytes() == resumed.read_bytes()
    # a finished slide is skipped on a re-run
    again = segment_slides(colour_model(), slides[:1], tmp_path / "resumed", OPTIONS)
    assert again.results[0].skipped


def test_killed_command_resumes_to_identical_outputs(slides: list[Path], tmp_path: Path) -> None:
    args = [sys.executable, "-m", "unseg.cli.main", "slide", "segment", str(slides[0]),
            "--method", "fseg", "--k", "4", "--tile-size", "32", "--tile", "64",
            "--overlap", "8", "--tile-batch", "1", "--tiles-per-slide", "20"]
    subprocess.run([*args, "--out", str(tmp_path / "whole")], check=True, capture_output=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([*args, "--out", str(tmp_path / "killed")], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = tmp_path / "killed" / "a.partial" / "done.txt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if done.exists() and len(done.read_text().split()) >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "a.json").exists()
    result = subprocess.run([*args, "--out", str(tmp_path / "killed")], check=True,
                            capture_output=True, text=True)
    assert "resumed after" in result.stdout
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "whole" / "a.ome.tif"),
                                  tifffile.imread(tmp_path / "killed" / "a.ome.tif"))
    for name in ("a.geojson", "a_areas.csv"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "killed" / name).read_bytes()


def test_dask_local_cluster_gives_the_local_result(slides: list[Path], tmp_path: Path) -> None:
    from unseg.workflows import DaskExecutor

    segment_slides(colour_model(), slides, tmp_path / "local", OPTIONS)
    executor = DaskExecutor(workers=2)
    try:
        run = segment_slides(colour_model(), slides, tmp_path / "dask", OPTIONS,
                             executor=executor)
    finally:
        executor.close()
    assert len(run.results) == 2 and len(run.failures) == 0
    for sid in ("a", "b"):
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "local" / f"{sid}.ome.tif"),
                                      tifffile.imread(tmp_path / "dask" / f"{sid}.ome.tif"))


def test_existing_dask_cluster_by_address(slides: list[Path], tmp_path: Path) -> None:
    from distributed import LocalCluster

    args = ["slide", "segment", str(slides[0]), "--method", "kmeans-color-dataset", "--k", "3",
            "--tile", "96"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        assert main([*args, "--out", str(tmp_path / "remote"),
                     "--scheduler", cluster.scheduler_address]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "local" / "a.ome.tif"),
                                  tifffile.imread(tmp_path / "remote" / "a.ome.tif"))


def test_unreachable_scheduler_is_a_clear_error(slides: list[Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["slide", "segment", str(slides[0]), "--method", "kmeans-color-dataset",
                 "--out", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


def test_bad_slide_is_reported_and_the_others_finish(slides: list[Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide at all" * 100)
    out = tmp_path / "out"
    code = main(["slide", "segment", str(bad), str(slides[0]), "--method", "kmeans-color-dataset",
                 "--k", "3", "--tile", "96", "--out", str(out)])
    assert code == 1
    assert "broken.svs" in capsys.readouterr().err
    assert (out / "a.ome.tif").is_file() and not (out / "broken.ome.tif").exists()


def test_missing_resolution_asks_for_mpp(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    slide = write_synthetic_slide(tmp_path / "nompp.tif", 1200, 900, mpp=None)
    args = ["slide", "segment", str(slide), "--method", "kmeans-color-dataset", "--k", "3",
            "--tile", "96", "--out", str(tmp_path / "out")]
    assert main(args) == 1
    assert "--mpp" in capsys.readouterr().err
    assert main([*args, "--mpp", "0.25"]) == 0
    assert tifffile.imread(tmp_path / "out" / "nompp.ome.tif").shape == (225, 300)


def test_concepts_fit_on_slides(slides: list[Path], tmp_path: Path) -> None:
    from unseg.concepts import load_bank

    out = tmp_path / "bank.npz"
    code = main(["concepts", "fit", "--data", str(slides[0].parent), "--k", "4,8",
                 "--tiles-per-slide", "20", "--out", str(out)])
    assert code == 0
    bank = load_bank(out)
    assert bank.ks == [4, 8] and bank.fitted_on["slides"] == 2
    assert bank.fitted_on["tiles"] == 40  # 20 tiles of the backbone's input size per slide


def test_real_svs_with_fseg(shared_data: Path, tmp_path: Path) -> None:
    import openslide

    out = tmp_path / "out"
    slide = shared_data / "slides" / "cmu_small_region.svs"
    code = main(["slide", "segment", str(slide), "--method", "fseg", "--k", "8",
                 "--tile-size", "64", "--out", str(out)])
    assert code == 0
    labels = tifffile.imread(out / "cmu_small_region.ome.tif")
    # 0.499 um/px read at 10x (1 um/px)
    assert labels.shape == (round(2967 / 2.004), round(2220 / 2.004))
    assert 1 < len(np.unique(labels)) <= 9
    with openslide.OpenSlide(out / "cmu_small_region.ome.tif") as reopened:
        assert reopened.dimensions == (labels.shape[1], labels.shape[0])
