from __future__ import annotations

import itertools

import numpy as np
import pytest

from unseg.errors import ParameterError
from unseg.eval import MATCH_METHODS, match


def _best_total_by_brute_force(confusion: np.ndarray) -> int:
    """Largest matched pixel count over every one-to-one cluster/class assignment."""
    n_clusters, n_classes = confusion.shape
    if n_clusters <= n_classes:
        return max(
            sum(confusion[k, c] for k, c in enumerate(classes))
            for classes in itertools.permutations(range(n_classes), n_clusters)
        )
    return max(
        sum(confusion[k, c] for c, k in enumerate(clusters))
        for clusters in itertools.permutations(range(n_clusters), n_classes)
    )


@pytest.mark.parametrize("seed", range(20))
def test_hungarian_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 6, size=2))
    confusion = rng.integers(0, 50, size=shape)
    mapping = match(confusion, "hungarian")
    assert mapping.dtype == np.int64 and mapping.shape == (shape[0],)
    matched = mapping >= 0
    assert matched.sum() == min(shape)
    assert len(set(mapping[matched].tolist())) == matched.sum()  # one-to-one
    total = confusion[np.flatnonzero(matched), mapping[matched]].sum()
    assert total == _best_total_by_brute_force(confusion)


def test_hungarian_more_clusters_leaves_the_weakest_unmatched():
    confusion = np.array([[4, 0], [1, 3], [0, 2]])
    np.testing.assert_array_equal(match(confusion, "hungarian"), [0, 1, -1])
    np.testing.assert_array_equal(match(confusion, "majority"), [0, 1, 1])


def test_hungarian_fewer_clusters_leaves_classes_unpredicted():
    np.testing.assert_array_equal(match([[3, 1, 0], [0, 3, 2]], "hungarian"), [0, 1])


def test_majority_and_normalized_differ_on_imbalanced_classes():
    # class 0 has 100 pixels, class 1 has 10; cluster 1 holds most of class 1
    confusion = np.array([[90, 2], [10, 8]])
    np.testing.assert_array_equal(match(confusion, "majority"), [0, 0])
    np.testing.assert_array_equal(match(confusion, "majority-normalized"), [0, 1])


def test_empty_cluster():
    confusion = np.array([[5, 0], [0, 0], [0, 3]])
    for method in ("majority", "majority-normalized"):
        np.testing.assert_array_equal(match(confusion, method), [0, -1, 1])
    # hungarian: -1 because the assignment leaves it out, not because it is empty
    np.testing.assert_array_equal(match(confusion, "hungarian"), [0, -1, 1])
    np.testing.assert_array_equal(match([[5, 0], [0, 0]], "hungarian"), [0, 1])


def test_single_class():
    confusion = np.array([[5], [3]])
    np.testing.assert_array_equal(match(confusion, "hungarian"), [0, -1])
    np.testing.assert_array_equal(match(confusion, "majority"), [0, 0])


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ParameterError) as info:
        match([[1]], "greedy")
    assert all(name in str(info.value) for name in MATCH_METHODS)
    assert "'greedy'" in str(info.value)


@pytest.mark.parametrize("confusion", [[1, 2], np.zeros((0, 2)), [[1, -1]]])
def test_bad_confusion_raises(confusion):
    with pytest.raises(ParameterError, match="confusion"):
        match(confusion, "majority")


def test_identity_keeps_class_ids_and_unmatches_ids_beyond_the_classes() -> None:
    confusion = np.array([[0, 5], [7, 0], [1, 1]])  # cluster 0 is all class 1: identity ignores it
    np.testing.assert_array_equal(match(confusion, "identity"), [0, 1, -1])


def test_foreground_matching_takes_the_cluster_most_frequent_under_the_foreground():
    confusion = np.array([[50, 3], [10, 9], [40, 5], [0, 0]])  # clusters x {0, 1}
    assert match(confusion, "foreground").tolist() == [0, 1, 0, 0]
    assert match(np.array([[5, 0], [7, 0]]), "foreground").tolist() == [0, 0]
    with pytest.raises(ParameterError, match="binary"):
        match(np.ones((3, 3)), "foreground")
