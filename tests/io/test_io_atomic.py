from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from unseg.errors import InputError
from unseg.io import atomic_write, read_image, write_image, write_label_map, write_overlay

IMAGE = np.full((8, 10, 3), 100, dtype=np.uint8)
LABELS = np.arange(80).reshape(8, 10) % 3


def test_atomic_write_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "out.txt"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.name.startswith(".") and tmp.suffix == ".txt"
        assert not target.exists()
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert os.listdir(target.parent) == ["out.txt"]


def test_temporary_names_are_unique(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "a.png") as first, atomic_write(tmp_path / "a.png") as second:
        assert first != second
        first.write_bytes(b"1")
        second.write_bytes(b"2")
    assert (tmp_path / "a.png").read_bytes() == b"1"
    assert os.listdir(tmp_path) == ["a.png"]


def test_atomic_write_cleans_up_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="midway"), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("midway")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failed_replace_leaves_target_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write_image(tmp_path / "img.png", IMAGE)
    before = target.read_bytes()

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(InputError, match="cannot write the file"):
        write_image(target, IMAGE + 1)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["img.png"]


@pytest.mark.parametrize(
    "write",
    [
        lambda path: write_image(path, IMAGE),
        lambda path: write_label_map(path, LABELS),
        lambda path: write_overlay(path, IMAGE, LABELS),
    ],
    ids=["image", "label_map", "overlay"],
)
def test_writers_interrupted_midway_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"previous content")

    def broken_save(self: PIL.Image.Image, fp: Path, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(PIL.Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write(target)
    assert target.read_bytes() == b"previous content"
    assert os.listdir(tmp_path) == ["out.png"]


def test_tiff_writer_interrupted_midway_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tifffile

    def broken_imwrite(path: Path, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"II*\x00partial")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken_imwrite)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / "out.tif", IMAGE)
    assert os.listdir(tmp_path) == []


def test_writers_create_parent_folders(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a" / "b" / "img.tif", IMAGE)
    np.testing.assert_array_equal(read_image(path), IMAGE)
    assert write_label_map(tmp_path / "c" / "d" / "l.png", LABELS).is_file()


def test_output_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(InputError, match="taken: exists and is not a folder"):
        write_image(tmp_path / "taken" / "img.png", IMAGE)


def test_output_dir_creates_nested_folders(tmp_path: Path) -> None:
    from unseg.io import output_dir

    assert output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
