"""Names and colours of labels: names.json, a dataset's classes.json / classes.txt, and the
synthetic datasets' class files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unseg.data import LabelNames, class_names, read_label_names
from unseg.data.synthetic import dataset as synthetic_dataset
from unseg.data.synthetic import write_dataset
from unseg.errors import InputError
from unseg.io import overlay, palette


def test_names_file_gives_names_colours_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    path.write_text(json.dumps({"0": "tumour", "2": {"name": "stroma", "colour": "#102030"},
                                "3": {"color": [1, 2, 3]}}))
    names = read_label_names(path)
    assert [names.name(i) for i in range(5)] == ["tumour", "concept 1", "stroma", "concept 3",
                                                 "concept 4"]
    assert names.colour(2) == (16, 32, 48) and names.colour(3) == (1, 2, 3)
    assert names.colour(1) == tuple(palette(2)[1])  # not given: the colour of every output
    table = names.colour_table(5)
    assert table.shape == (5, 3) and tuple(table[2]) == (16, 32, 48)
    assert LabelNames.from_json(names.to_json()) == names


@pytest.mark.parametrize("content, words", [
    ('{"x": "a"}', "not a label id"),
    ('{"-1": "a"}', "not a label id"),
    ('{"0": 5}', "expected a name"),
    ('{"0": {"name": "a", "colour": "red"}}', "neither '#rrggbb'"),
    ('{"0": {"name": "a", "colour": [1, 2, 300]}}', "neither '#rrggbb'"),
    ('{"0": {"label": "a"}}', "unknown key"),
    ('["a", "b"]', "expected an object"),
    ("{", "not valid JSON"),
])
def test_bad_names_files_name_the_file_and_the_format(tmp_path: Path, content: str,
                                                      words: str) -> None:
    path = tmp_path / "names.json"
    path.write_text(content)
    with pytest.raises(InputError) as error:
        read_label_names(path)
    assert str(path) in str(error.value) and words in str(error.value)
    assert "Fix:" in str(error.value) or "not valid JSON" in str(error.value)


def test_missing_names_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="names file not found"):
        read_label_names(tmp_path / "nope.json")


def test_class_names_from_json_txt_or_the_mask_folder(tmp_path: Path) -> None:
    (tmp_path / "a" / "mask").mkdir(parents=True)
    (tmp_path / "a" / "classes.json").write_text('{"0": "tumour", "1": "stroma"}')
    assert class_names(tmp_path / "a").name(1) == "stroma"
    assert class_names(tmp_path / "a" / "mask").name(0) == "tumour"  # beside mask/
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "classes.txt").write_text("glass\n\nnuclei\n")
    names = class_names(tmp_path / "b")
    assert [names.name(i) for i in range(3)] == ["glass", "class 1", "nuclei"]
    assert not class_names(tmp_path) and class_names(tmp_path).name(2) == "class 2"


def test_real_datasets_name_their_classes(shared_data: Path) -> None:
    names = class_names(shared_data / "wsss4luad-val")
    assert [names.name(i) for i in range(4)] == ["tumour", "stroma", "normal", "background"]


@pytest.mark.parametrize("kind", sorted(synthetic_dataset._GENERATORS))
def test_every_synthetic_dataset_names_its_classes(kind: str, tmp_path: Path) -> None:
    size = {"blobs": 48, "he_tile": 48}.get(kind, 32)
    out = write_dataset(tmp_path / kind, n=2, kind=kind, size=size, random_state=0)
    names = class_names(out)
    mask_ids = {int(i) for p in (out / "mask").iterdir()
                for i in np.unique(np.array(Image.open(p)))}
    assert mask_ids <= set(names.names)  # every class in the masks has a name


def test_overlay_paints_the_given_colours() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    labels = np.array([[0, 1], [2, 1]])
    painted = overlay(image, labels, alpha=1.0, colours=np.array([[10, 20, 30]]))
    assert tuple(painted[0, 0]) == (10, 20, 30)  # given
    assert tuple(painted[0, 1]) == tuple(palette(3)[1])  # the palette for the others
