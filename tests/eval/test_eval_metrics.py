from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, jaccard_score

from unseg.errors import ParameterError
from unseg.eval import (
    MATCH_METHODS,
    class_counts,
    confusion_matrix,
    f1_per_class,
    iou_per_class,
    match,
    mean_iou,
    pixel_accuracy,
)


def test_unmatched_cluster_counts_as_error():
    confusion = np.array([[4, 0], [1, 3], [0, 2]])
    mapping = match(confusion, "hungarian")  # [0, 1, -1]
    tp, fp, fn = class_counts(confusion, mapping)
    np.testing.assert_array_equal(tp, [4, 3])
    np.testing.assert_array_equal(fp, [0, 1])
    np.testing.assert_array_equal(fn, [1, 2])  # cluster 2's pixels are missed class-1 pixels
    np.testing.assert_allclose(iou_per_class(confusion, mapping), [4 / 5, 3 / 6])
    np.testing.assert_allclose(f1_per_class(confusion, mapping), [8 / 9, 6 / 9])
    assert mean_iou(confusion, mapping) == pytest.approx(0.65)
    assert pixel_accuracy(confusion, mapping) == pytest.approx(0.7)
    # the many-to-one matching recovers those pixels
    majority = match(confusion, "majority")
    np.testing.assert_allclose(iou_per_class(confusion, majority), [4 / 5, 5 / 6])
    assert pixel_accuracy(confusion, majority) == pytest.approx(0.9)


def test_class_absent_from_gt_is_nan_and_excluded():
    confusion = np.array([[2, 0, 0], [0, 0, 3], [1, 0, 0]])
    mapping = match(confusion, "hungarian")
    np.testing.assert_array_equal(mapping, [0, 2, 1])
    tp, fp, fn = class_counts(confusion, mapping)
    np.testing.assert_array_equal(fp, [0, 1, 0])  # cluster 2 predicts the absent class
    iou = iou_per_class(confusion, mapping)
    assert np.isnan(iou[1]) and np.isnan(f1_per_class(confusion, mapping)[1])
    np.testing.assert_allclose(iou[[0, 2]], [2 / 3, 1.0])
    assert mean_iou(confusion, mapping) == pytest.approx(5 / 6)
    assert pixel_accuracy(confusion, mapping) == pytest.approx(5 / 6)


def test_class_no_cluster_predicts():
    confusion = np.array([[3, 1, 0], [0, 3, 2]])
    mapping = match(confusion, "hungarian")  # [0, 1]: class 2 is never predicted
    np.testing.assert_allclose(iou_per_class(confusion, mapping), [3 / 4, 3 / 6, 0.0])
    np.testing.assert_allclose(f1_per_class(confusion, mapping), [6 / 7, 6 / 9, 0.0])
    assert mean_iou(confusion, mapping) == pytest.approx(5 / 12)
    assert pixel_accuracy(confusion, mapping) == pytest.approx(6 / 9)


def test_single_class_gt():
    confusion = np.array([[5], [3]])
    hungarian = match(confusion, "hungarian")
    assert mean_iou(confusion, hungarian) == pytest.approx(5 / 8)
    assert pixel_accuracy(confusion, hungarian) == pytest.approx(5 / 8)
    majority = match(confusion, "majority")
    assert mean_iou(confusion, majority) == 1.0
    assert pixel_accuracy(confusion, majority) == 1.0


def test_from_tiny_image_with_ignore():
    pred = np.array([[0, 0, 1], [2, 1, 2], [9, 2, 0]])
    gt = np.array([[0, 0, 0], [1, 1, 1], [255, 1, 0]])
    confusion = confusion_matrix(pred, gt)
    np.testing.assert_array_equal(confusion, [[3, 0], [1, 1], [0, 3]])
    mapping = match(confusion, "hungarian")
    np.testing.assert_array_equal(mapping, [0, -1, 1])
    np.testing.assert_allclose(iou_per_class(confusion, mapping), [3 / 4, 3 / 4])
    assert pixel_accuracy(confusion, mapping) == pytest.approx(6 / 8)


def test_no_valid_pixel_gives_nan():
    confusion = np.zeros((2, 2), dtype=np.int64)
    mapping = np.array([0, 1])
    assert np.isnan(mean_iou(confusion, mapping))
    assert np.isnan(pixel_accuracy(confusion, mapping))


@pytest.mark.parametrize("mapping", [[0, 1], [0, 1, 2], [0, 1, -2], [0.0, 1.0, 1.0]])
def test_bad_mapping_raises(mapping):
    with pytest.raises(ParameterError, match="mapping"):
        class_counts(np.ones((3, 2), dtype=int), mapping)


@pytest.mark.parametrize("method", MATCH_METHODS)
@pytest.mark.parametrize("seed", range(3))
def test_matches_sklearn_on_mapped_prediction(method, seed):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 4, (40, 40))
    # clusters loosely follow the classes (with noise); cluster 4 is extra
    pred = np.where(rng.random(gt.shape) < 0.6, (gt + 1) % 4, rng.integers(0, 5, gt.shape))
    n_classes = 4
    if method == "foreground":  # a binary protocol: class 1 against the rest
        gt, n_classes = (gt == 1).astype(gt.dtype), 2
    gt[rng.random(gt.shape) < 0.1] = 255
    confusion = confusion_matrix(pred, gt)
    mapping = match(confusion, method)
    valid = gt != 255
    y_true, y_pred = gt[valid], mapping[pred[valid]]  # -1 (unmatched) predicts no class
    labels = list(range(n_classes))
    np.testing.assert_allclose(
        iou_per_class(confusion, mapping),
        jaccard_score(y_true, y_pred, labels=labels, average=None),
    )
    np.testing.assert_allclose(
        f1_per_class(confusion, mapping), f1_score(y_true, y_pred, labels=labels, average=None)
    )
    assert pixel_accuracy(confusion, mapping) == pytest.approx(accuracy_score(y_true, y_pred))
    if method == "hungarian":
        assert (mapping == -1).sum() == 1
