"""The one-dimensional example of the CIRS thesis: the pattern-frequency procedure finds 1122
whole, colour clustering splits it, and the cross-instance objective prefers the whole."""

from __future__ import annotations

import pytest

from unseg.cli.main import main
from unseg.data.runs import (
    THESIS_IMAGES,
    instances,
    pattern_counts,
    score,
    segment_by_colour,
    segment_by_patterns,
)
from unseg.errors import ParameterError


def test_pattern_counts_count_images_not_occurrences():
    counts = pattern_counts(THESIS_IMAGES)
    # the counts appendix 12.1 gives for 112200 011220 001122
    assert {p: counts[p] for p in ("1", "11", "12", "22", "20", "00", "01")} == {
        "1": 3, "11": 3, "12": 3, "22": 3, "20": 2, "00": 2, "01": 2}
    assert counts["1122"] == 3 and counts["200"] == 1 and counts["11220"] == 2
    assert max(len(p) for p in counts) == 5  # never a whole image
    assert pattern_counts(["1010"])["10"] == 1  # twice in one image counts once


def test_the_procedure_finds_the_object_whole_and_colour_clustering_splits_it():
    found_segmentation, found = segment_by_patterns(THESIS_IMAGES)
    assert [(f.pattern, f.count, f.starts) for f in found] == [("1122", 3, (0, 1, 2))]
    assert [found_segmentation.show(THESIS_IMAGES, i) for i in range(3)] == ["[1122][00]"] * 3
    assert found_segmentation.segments[1] == ((1, 2, 3, 4), (0, 5))
    by_colour = segment_by_colour(THESIS_IMAGES)
    assert by_colour.names == ("1", "2", "background")
    assert by_colour.show(THESIS_IMAGES, 1) == "[11][22][00]"
    whole, split = score(THESIS_IMAGES, found_segmentation), score(THESIS_IMAGES, by_colour)
    # section 4.2.1: both have no aligned variance; the whole object makes larger segments
    assert (whole.aligned_variance, whole.size, whole.cross_instance) == (0, 9, -9)
    assert (split.aligned_variance, split.size, split.cross_instance) == (0, 6, -6)
    # section 4.1.1: the colour variance of 1122 is what colour clustering refuses
    assert whole.colour_variance == 3 and split.colour_variance == 0


def test_two_objects_are_found_in_turn():
    images = ["110022", "011220", "002211", "022110", "220011"]  # section 4.1's dataset
    segmentation, found = segment_by_patterns(images)
    assert [f.pattern for f in found] == ["11", "22"]
    assert segmentation.show(images, 2) == "[11][22][00]"
    assert score(images, segmentation).aligned_variance == 0


def test_misaligned_segments_have_aligned_variance():
    images = ["1122", "2211"]
    segmentation = segment_by_colour(images)  # 11 and 22 align; a whole segment would not
    assert score(images, segmentation).aligned_variance == 0
    _, found = segment_by_patterns(images)
    assert found[0].pattern in ("11", "22")


def test_generated_images_hold_every_object_once_on_background():
    images = instances(["1122", "33"], 50, 10, random_state=1)
    assert len(images) == 50 and all(len(im) == 10 for im in images)
    for image in images:
        assert image.count("1122") == 1 and image.count("33") == 1
        assert image.replace("1122", "").replace("33", "") == "0000"
    assert len(set(images)) > 10
    assert instances(["1122"], 5, random_state=2) == instances(["1122"], 5, random_state=2)
    segmentation, found = segment_by_patterns(images)
    assert [f.pattern for f in found] == ["1122", "33"]


def test_bad_arguments_are_refused():
    with pytest.raises(ParameterError, match="length"):
        instances(["1122", "33"], 3, 5)
    with pytest.raises(ParameterError, match="objects"):
        instances(["00"], 3)
    with pytest.raises(ParameterError, match="digits"):
        pattern_counts(["11a2"])


def test_the_command_prints_the_procedure_and_both_segmentations(capsys):
    assert main(["data", "runs"]) == 0
    out = capsys.readouterr().out
    assert "112200 011220 001122" in out and "1122 (in 3 of 3 images)" in out
    assert "| pattern frequency (appendix 12.1) | [1122][00] [1122][00] [1122][00] | -9 |" in out
    assert "[11][22][00] [11][22][00] [11][22][00] | -6 |" in out
    assert main(["data", "runs", "--objects", "11,22", "--n", "4"]) == 0
    assert "4 images" in capsys.readouterr().out
    assert main(["data", "runs", "11a"]) == 2
