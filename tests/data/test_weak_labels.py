"""Image-level labels from a CSV file, WSSS4LUAD-style file names and masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unseg.data import discover
from unseg.data.datasets import Sample
from unseg.data.weak_labels import from_file_names, from_masks, read_csv
from unseg.errors import InputError, ParameterError
from unseg.io import write_label_map

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_csv_gives_classes_in_column_order_and_background_after(tmp_path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("name,tumour,stroma,normal\na.png,1,0,1\nb,0,1,0\n\n")
    labels = read_csv(path)
    assert labels.classes == ("tumour", "stroma", "normal")
    assert labels.ids == (0, 1, 2) and labels.background_id == 3
    assert labels.image_ids == ("a", "b")
    assert labels.present.tolist() == [[True, False, True], [False, True, False]]
    samples = [Sample("b", tmp_path / "b.png"), Sample("a", tmp_path / "a.png")]
    assert labels.for_samples(samples).present.tolist() == [[False, True, False],
                                                                   [True, False, True]]


@pytest.mark.parametrize("text, words", [
    ("name,tumour\na,2\n", "line 2"),
    ("name,tumour,stroma\na,1\n", "line 2"),
    ("image,tumour\na,1\n", "header"),
    ("name,tumour\na,1\na,0\n", "labelled twice"),
])
def test_bad_csv_names_the_line_and_the_fix(tmp_path, text: str, words: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=words):
        read_csv(path)


def test_an_image_without_labels_is_named(tmp_path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("name,tumour\na,1\n")
    with pytest.raises(InputError, match=r"c\.png: has no image-level labels in .*labels\.csv"):
        read_csv(path).for_samples([Sample("a", tmp_path / "a.png"),
                                    Sample("c", tmp_path / "c.png")])
    with pytest.raises(InputError, match="labels file not found"):
        read_csv(tmp_path / "missing.csv")


def test_wsss4luad_file_names_give_their_labels() -> None:
    folder = DATA / "wsss4luad-train-examples"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    samples = discover([folder])
    labels = from_file_names(samples)
    assert labels.classes == ("tumour", "stroma", "normal")
    by_id = dict(zip(labels.image_ids, labels.present.astype(int).tolist(), strict=True))
    assert by_id["436219-9328-56427-[1, 1, 0]"] == [1, 1, 0]
    assert by_id["449636-23526-9666-[0, 0, 1]"] == [0, 0, 1]
    with pytest.raises(InputError, match=r"does not end in 2 labels"):
        from_file_names(samples, ["tumour", "stroma"])


def test_masks_give_their_ids_without_the_background() -> None:
    folder = DATA / "wsss4luad-val"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    samples = discover([folder])[:3]  # 00: tumour, stroma; 01: stroma; 02: normal
    labels = from_masks(samples)
    assert labels.classes == ("tumour", "stroma", "normal") and labels.ids == (0, 1, 2)
    assert (labels.background_id, labels.background_name) == (3, "background")
    assert labels.present.astype(int).tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_masks_with_another_background_id(tmp_path) -> None:
    for name, mask in (("a", [[0, 2], [2, 0]]), ("b", [[0, 5], [255, 0]])):
        write_label_map(tmp_path / "mask" / f"{name}.png", np.array(mask, np.int32))
    samples = [Sample(n, tmp_path / "img" / f"{n}.png", tmp_path / "mask" / f"{n}.png")
               for n in ("a", "b")]
    with pytest.raises(ParameterError, match="--background-id"):
        from_masks(samples)
    labels = from_masks(samples, background_id=0)
    assert labels.ids == (2, 5) and labels.classes == ("class 2", "class 5")
    assert labels.present.tolist() == [[True, False], [False, True]]
    with pytest.raises(InputError, match="has no mask"):
        from_masks([Sample("c", tmp_path / "c.png")])
