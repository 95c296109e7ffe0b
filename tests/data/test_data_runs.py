"""The one-dimensional CIRS example: colour clustering splits 1122, the cross-instance
objective keeps it whole."""

from __future__ import annotations

import numpy as np
import pytest

from unseg.cli.main import main
from unseg.data.runs import exhaustive, runs_1d
from unseg.errors import ParameterError


def test_instances_hold_one_to_three_whole_objects_on_background():
    instances, masks = runs_1d(200, 16, random_state=1)
    assert instances.shape == masks.shape == (200, 16)
    text = ["".join(map(str, row)) for row in instances]
    copies = [t.count("1122") for t in text]
    assert set(copies) == {1, 2, 3}
    for t, n in zip(text, copies, strict=True):
        assert t.replace("1122", "") == "0" * (16 - 4 * n)  # nothing but objects and background
    assert np.array_equal(masks, (instances > 0).astype(int))
    assert np.array_equal(runs_1d(5, random_state=2)[0], runs_1d(5, random_state=2)[0])


def test_colour_clustering_splits_the_object_and_the_cross_instance_objective_does_not():
    instances, _ = runs_1d(500, random_state=0)
    rows = exhaustive(instances, 2)
    assert len(rows) == 3  # the partitions of 3 colours into 2 segments
    best = rows[0]
    assert best.assignment == (0, 1, 1)  # background | 1122
    assert best.within == 0.0  # the object's composition is the same in every instance
    by_colour = min(rows, key=lambda r: r.colour_sse)
    assert by_colour.assignment[1] != by_colour.assignment[2]  # 11 and 22 apart
    assert by_colour.show(np.array([0, 1, 1, 2, 2, 0])) in ("000110", "011000")


def test_bad_arguments_are_refused():
    with pytest.raises(ParameterError, match="length"):
        runs_1d(3, 8)
    with pytest.raises(ParameterError, match="k must"):
        exhaustive(runs_1d(3)[0], 4)


def test_the_command_prints_both_choices(capsys):
    assert main(["data", "runs", "--n", "300"]) == 0
    out = capsys.readouterr().out
    assert "cross-instance objective chooses (0, 1, 1)" in out
    assert "colour clustering chooses (0, 0, 1)" in out or "chooses (0, 1, 0)" in out
