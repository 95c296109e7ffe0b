from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from unseg.errors import ParameterError
from unseg.eval import ConfusionAccumulator, confusion_matrix

# 3x3 image: the bottom-left pixel is ignored (and its cluster id 9 must not count).
PRED = np.array([[0, 0, 1], [1, 1, 2], [9, 2, 0]])
GT = np.array([[0, 0, 0], [1, 1, 1], [255, 1, 0]])
EXPECTED = np.array([[3, 0], [1, 2], [0, 2]])


def test_hand_computed_with_ignore():
    matrix = confusion_matrix(PRED, GT)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, EXPECTED)


def test_custom_ignore_index():
    gt = np.where(GT == 255, 7, GT)
    np.testing.assert_array_equal(confusion_matrix(PRED, gt, ignore_index=7), EXPECTED)
    # with the default ignore id, 7 is an ordinary class and cluster 9 counts
    assert confusion_matrix(PRED, gt).shape == (10, 8)


def test_fewer_clusters_than_classes():
    pred = np.zeros((2, 3), dtype=np.uint8)
    gt = np.array([[0, 1, 2], [2, 2, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(confusion_matrix(pred, gt), [[1, 2, 3]])


def test_more_clusters_than_classes_and_bool_input():
    pred = np.array([[0, 1], [2, 3]])
    gt = np.array([[True, True], [False, True]])
    np.testing.assert_array_equal(confusion_matrix(pred, gt), [[0, 1], [0, 1], [1, 0], [0, 1]])


def test_all_ignored_gives_one_by_one_zero():
    np.testing.assert_array_equal(confusion_matrix(PRED, np.full((3, 3), 255)), [[0]])


def test_matches_sklearn_on_random_512():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 6, (512, 512)).astype(np.int32)
    gt = rng.integers(0, 5, (512, 512)).astype(np.uint8)
    gt[rng.random((512, 512)) < 0.1] = 255
    valid = gt != 255
    expected = sk_confusion_matrix(gt[valid], pred[valid], labels=range(6))[:5].T
    np.testing.assert_array_equal(confusion_matrix(pred, gt), expected)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ParameterError, match=r"pred \(3, 3\) and gt \(3, 4\)"):
        confusion_matrix(PRED, np.zeros((3, 4), dtype=int))


@pytest.mark.parametrize(
    ("pred", "gt", "message"),
    [
        (-PRED, GT, "non-negative"),
        (PRED.astype(float), GT, "integer ids"),
        (PRED[None], GT[None], "2-D"),
    ],
)
def test_bad_input_raises(pred, gt, message):
    with pytest.raises(ParameterError, match=message):
        confusion_matrix(pred, gt)


def test_accumulator_grows_and_pads():
    acc = ConfusionAccumulator()
    assert acc.matrix.shape == (0, 0)
    first = acc.update(np.array([[0, 1]]), np.array([[0, 0]]))
    np.testing.assert_array_equal(first, [[1], [1]])
    second = acc.update(np.array([[2, 2, 0]]), np.array([[1, 255, 2]]))
    np.testing.assert_array_equal(second, [[0, 0, 1], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(acc.matrix, [[1, 0, 1], [1, 0, 0], [0, 1, 0]])
    per_image = acc.per_image
    assert [m.shape for m in per_image] == [(3, 3), (3, 3)]
    np.testing.assert_array_equal(per_image[0], [[1, 0, 0], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(sum(per_image), acc.matrix)


def test_accumulator_ignore_index():
    acc = ConfusionAccumulator(ignore_index=0)
    acc.update(np.array([[5, 1]]), np.array([[0, 1]]))
    np.testing.assert_array_equal(acc.matrix, [[0, 0], [0, 1]])
