"""Class names in evaluation tables and JSON, and the pooled confusion matrix a report draws."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unseg.eval import evaluate
from unseg.io import write_label_map
from unseg.workflows import evaluate_folders

PRED = np.array([[0, 0, 1, 1], [2, 2, 1, 1]])
GT = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])


def test_names_in_the_table_and_the_json() -> None:
    result = evaluate(["a"], lambda _: (PRED, GT), class_names={0: "tumour", 1: "stroma"})
    text = result.to_markdown()
    assert "| tumour (0) |" in text and "| stroma (1) |" in text
    data = json.loads(json.dumps(result.to_dict()))
    assert data["class_names"] == {"0": "tumour", "1": "stroma"}
    assert data["confusion"] == [[2, 0], [0, 4], [2, 0]]  # clusters x classes, pixels


def test_without_names_the_ids_stay() -> None:
    result = evaluate(["a"], lambda _: (PRED, GT))
    assert "| 0 | " in result.to_markdown() and result.class_names == {}


def test_folders_take_the_names_beside_the_masks(tmp_path: Path) -> None:
    write_label_map(tmp_path / "data" / "mask" / "a.png", GT)
    write_label_map(tmp_path / "pred" / "a.png", PRED)
    (tmp_path / "data" / "classes.txt").write_text("tumour\nstroma\n")
    for gt in (tmp_path / "data", tmp_path / "data" / "mask"):
        assert evaluate_folders(tmp_path / "pred", gt).class_names == {0: "tumour", 1: "stroma"}
