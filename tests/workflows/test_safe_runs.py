"""Runs that never destroy inputs or another run's work, and survive full disks and SIGTERM."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
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
from unseg.data.synthetic import quadrants, write_synthetic_slide
from unseg.io import write_image, write_label_map
from unseg.io.lock import output_lock
from unseg.workflows import LocalExecutor, SlideOptions, segment_slides

OPTIONS = SlideOptions(magnification=10, tile_size=96, overlap=16, batch_size=2,
                       tiles_per_slide=20)


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_slide(tmp_path_factory.mktemp("slide") / "a.tif", 1600, 1200,
                                 random_state=1)


def colour_model(k: int = 3) -> methods.Segmenter:
    return methods.create("kmeans-color-dataset", k=k, random_state=0)


def hidden_leftovers(folder: Path) -> list[str]:
    """Temporary files of interrupted writes (``.name.<pid>-<id>.suffix``); locks excepted."""
    return [p.name for p in folder.rglob(".*") if not p.name.endswith(".lock")]


# -- outputs never touch inputs -------------------------------------------------------------


def test_segment_into_the_input_folder_is_refused(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "same"
    write_image(folder / "q.png", quadrants(32)[0])
    before = (folder / "q.png").read_bytes()
    link = tmp_path / "link"
    link.symlink_to(folder)
    for out in (folder, link):
        assert main(["segment", "slic", str(folder), "--out", str(out)]) == 2
        assert "is an input" in capsys.readouterr().err
    assert (folder / "q.png").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["q.png"]


def test_other_commands_refuse_to_write_over_an_input(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    for i in range(2):
        write_image(data / "img" / f"q{i}.png", quadrants(32, random_state=i)[0])
        write_label_map(data / "mask" / f"q{i}.png", quadrants(32, random_state=i)[1])
    image, mask = data / "img" / "q0.png", data / "mask" / "q1.png"
    before = {p: p.read_bytes() for p in (image, mask)}
    for argv in (
        ["fit", "kmeans-color-dataset", str(data), "--out", str(image)],
        ["concepts", "fit", "--data", str(data), "--k", "2", "--out", str(image)],
        ["evaluate", "--pred", str(data / "mask"), "--gt", str(data), "--json", str(mask)],
        ["segment", "slic", str(data), "--out", str(data / "mask")],
    ):
        assert main(argv) == 2, argv
        assert "is an input" in capsys.readouterr().err
    assert all(p.read_bytes() == content for p, content in before.items())


def test_a_slide_run_into_the_slide_folder_cannot_replace_the_slide(tmp_path: Path,
                                                                     capsys) -> None:
    slide = write_synthetic_slide(tmp_path / "s.ome.tif", 800, 600, random_state=3)
    before = slide.read_bytes()
    assert main(["slide", "segment", str(slide), "--method", "kmeans-color-dataset",
                 "--out", str(tmp_path)]) == 2
    assert "is an input" in capsys.readouterr().err
    assert slide.read_bytes() == before


# -- one run per output ---------------------------------------------------------------------


def test_a_locked_slide_is_refused_naming_the_holder(slide: Path, tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    with output_lock(tmp_path / ".a.lock", "a"):
        run = segment_slides(colour_model(), [slide], tmp_path, OPTIONS)
    assert len(run.results) == 0
    message = run.failures.messages[str(slide)]
    assert "being written by another unseg run" in message and f"process {os.getpid()}" in message
    again = segment_slides(colour_model(), [slide], tmp_path, OPTIONS)
    assert len(again.results) == 1 and not again.results[0].skipped


def test_two_concurrent_runs_into_one_folder(slide: Path, tmp_path: Path) -> None:
    def command(k: int) -> list[str]:
        return [sys.executable, "-m", "unseg.cli.main", "slide", "segment", str(slide),
                "--method", "kmeans-color-dataset", "--k", str(k), "--tile", "96",
                "--tiles-per-slide", "20", "--out", str(tmp_path / "out")]

    runs = [subprocess.Popen(command(k), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for k in (4, 8)]
    results = [(p.wait(), p.stderr.read()) for p in runs]  # type: ignore[union-attr]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and codes[1] != 0, results
    refusal = next(err for code, err in results if code != 0)
    assert "another unseg run" in refusal or "other parameters" in refusal, refusal
    summary = json.loads((tmp_path / "out" / "a.json").read_text())
    labels = tifffile.imread(tmp_path / "out" / "a.ome.tif")
    assert labels.max() <= summary["params"]["k"]  # the outputs are those of the run that won
    assert methods.model_info(tmp_path / "out" / "kmeans-color-dataset.model")["params"][
        "k"] == summary["params"]["k"]


class Crash(Exception):
    pass


class CrashAfterOneBatch(LocalExecutor):
    """Stops the run after its first batch, as a killed process would."""

    def run(self, function, shared, tasks):  # type: ignore[no-untyped-def]
        yield next(super().run(function, shared, tasks))
        raise Crash


def test_a_partial_run_of_other_options_is_kept(slide: Path, tmp_path: Path) -> None:
    with pytest.raises(Crash):
        segment_slides(colour_model(3), [slide], tmp_path, OPTIONS, executor=CrashAfterOneBatch())
    partial = sorted(p.name for p in (tmp_path / "a.partial").iterdir())
    (tmp_path / "kmeans-color-dataset.model").unlink()
    run = segment_slides(colour_model(4), [slide], tmp_path, OPTIONS)
    assert "holds an unfinished run" in run.failures.messages[str(slide)]
    assert sorted(p.name for p in (tmp_path / "a.partial").iterdir()) == partial


def test_a_slide_run_model_of_other_sampling_is_not_reused(slide: Path, tmp_path: Path) -> None:
    segment_slides(colour_model(), [slide], tmp_path, OPTIONS)
    model = tmp_path / "kmeans-color-dataset.model"
    assert methods.model_info(model)["fitted_on"]["options"]["tiles_per_slide"] == 20
    other = SlideOptions(**{**OPTIONS.__dict__, "tiles_per_slide": 21})
    with pytest.raises(Exception, match="fitted with other parameters, slides or sampling"):
        segment_slides(colour_model(), [slide], tmp_path, other)


def test_a_crafted_model_in_the_output_folder_is_refused(slide: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (marker,))

    (tmp_path / "kmeans-color-dataset.model").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(Exception, match="Python pickle"):
        segment_slides(colour_model(), [slide], tmp_path, OPTIONS)
    assert not marker.exists()


# -- changed inputs, full disks, SIGTERM ----------------------------------------------------


def uncompressed_slide(path: Path, random_state: int) -> Path:
    """A generated slide rewritten without compression: every seed gives the same file size."""
    jpeg = write_synthetic_slide(path.with_suffix(".jpeg.tif"), 1600, 1200,
                                 random_state=random_state)
    with tifffile.TiffFile(jpeg) as tif:
        levels = [level.asarray() for level in tif.series[0].levels]
    with tifffile.TiffWriter(path) as writer:
        for i, level in enumerate(levels):
            writer.write(level, tile=(256, 256), photometric="rgb", subfiletype=1 if i else 0,
                         resolution=(1e4 / 0.25 * 2**i, 1e4 / 0.25 * 2**i),
                         resolutionunit="CENTIMETER")
    jpeg.unlink()
    return path


def test_a_replaced_slide_of_the_same_size_and_time_is_segmented_again(tmp_path: Path) -> None:
    slide = uncompressed_slide(tmp_path / "s.tif", random_state=1)
    out = tmp_path / "out"
    model = colour_model().fit([quadrants(64, random_state=s)[0] for s in range(3)])
    first = segment_slides(model, [slide], out, OPTIONS, fit=False)
    assert not first.results[0].skipped
    before = tifffile.imread(out / "s.ome.tif")
    stat = slide.stat()
    other = uncompressed_slide(tmp_path / "other.tif", random_state=5)
    assert other.stat().st_size == stat.st_size
    shutil.copyfile(other, slide)
    os.utime(slide, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = segment_slides(model, [slide], out, OPTIONS, fit=False)
    assert not second.results[0].skipped
    assert not np.array_equal(before, tifffile.imread(out / "s.ome.tif"))
    assert segment_slides(model, [slide], out, OPTIONS, fit=False).results[0].skipped


def test_no_disk_for_the_canvas_is_an_error_and_the_next_slide_runs(
        slide: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = write_synthetic_slide(tmp_path / "b.tif", 800, 600, random_state=2)
    real = os.posix_fallocate

    def full_for_a(fd: int, offset: int, length: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("a.partial/labels.raw"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", full_for_a)
    model = colour_model().fit([quadrants(64, random_state=s)[0] for s in range(3)])
    run = segment_slides(model, [slide, small], tmp_path / "out", OPTIONS, fit=False)
    assert "cannot reserve" in run.failures.messages[str(slide)]
    assert [r.id for r in run.results] == ["b"]
    assert not (tmp_path / "out" / "a.partial" / "labels.raw").exists()


def test_a_full_disk_during_export_fails_that_slide_only_and_leaves_no_temporary_file(
        slide: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shapely

    small = write_synthetic_slide(tmp_path / "b.tif", 800, 600, random_state=2)
    real, calls = shapely.to_geojson, []

    def full_once(geometry):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:  # while the first slide's GeoJSON is half written
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(geometry)

    monkeypatch.setattr(shapely, "to_geojson", full_once)
    model = colour_model().fit([quadrants(64, random_state=s)[0] for s in range(3)])
    out = tmp_path / "out"
    run = segment_slides(model, [slide, small], out, OPTIONS, fit=False)
    assert "No space left on device" in run.failures.messages[str(slide)]
    assert [r.id for r in run.results] == ["b"]
    assert hidden_leftovers(out) == [] and not (out / "a.geojson").exists()
    monkeypatch.setattr(shapely, "to_geojson", real)
    again = segment_slides(model, [slide], out, OPTIONS, fit=False)  # the canvas was kept
    assert again.results[0].resumed_batches > 0 and (out / "a.geojson").is_file()


def test_a_guessed_pixel_size_is_recorded(tmp_path: Path, unseg_warnings) -> None:
    slide = write_synthetic_slide(tmp_path / "s.svs", 800, 600, flavour="svs", mpp=None)
    model = colour_model().fit([quadrants(64, random_state=s)[0] for s in range(3)])
    run = segment_slides(model, [slide], tmp_path / "out", OPTIONS, fit=False)
    assert len(run.results) == 1
    summary = json.loads((tmp_path / "out" / "s.json").read_text())
    assert summary["mpp_source"] == "objective-power" and summary["mpp"] == 0.25
    assert "objective-power" in (tmp_path / "out" / "s_areas.csv").read_text()
    assert any("--mpp" in message for message in unseg_warnings)


@pytest.fixture()
def small_filesystem(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 6 MiB tmpfs mounted in tmp_path (skips where mounting is not permitted)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("mounting a small file system needs privileges this machine lacks")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_fails_one_slide_and_the_next_runs(tmp_path: Path,
                                                             small_filesystem: Path) -> None:
    big = write_synthetic_slide(tmp_path / "a.tif", 4000, 3000, mpp=1.0, random_state=1)
    small = write_synthetic_slide(tmp_path / "b.tif", 1200, 900, mpp=1.0, random_state=2)
    model = colour_model().fit([quadrants(64, random_state=s)[0] for s in range(3)])
    out = small_filesystem / "out"
    run = segment_slides(model, [big, small], out, OPTIONS, fit=False)  # 12 MB canvas for a
    assert "cannot reserve" in run.failures.messages[str(big)]
    assert [r.id for r in run.results] == ["b"]
    assert hidden_leftovers(out) == []


def test_sigterm_leaves_a_state_that_resumes_to_the_same_outputs(slide: Path,
                                                                  tmp_path: Path) -> None:
    args = [sys.executable, "-m", "unseg.cli.main", "slide", "segment", str(slide),
            "--method", "fseg", "--k", "4", "--tile-size", "32", "--tile", "64",
            "--overlap", "8", "--tile-batch", "1", "--tiles-per-slide", "20"]
    subprocess.run([*args, "--out", str(tmp_path / "whole")], check=True, capture_output=True)
    process = subprocess.Popen([*args, "--out", str(tmp_path / "stopped")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = tmp_path / "stopped" / "a.partial" / "done.txt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if done.exists() and len(done.read_text().split()) >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 130
    assert "run the same command again" in process.stderr.read()  # type: ignore[union-attr]
    assert hidden_leftovers(tmp_path / "stopped") == []
    result = subprocess.run([*args, "--out", str(tmp_path / "stopped")], check=True,
                            capture_output=True, text=True)
    assert "resumed after" in result.stdout
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "whole" / "a.ome.tif"),
                                  tifffile.imread(tmp_path / "stopped" / "a.ome.tif"))
