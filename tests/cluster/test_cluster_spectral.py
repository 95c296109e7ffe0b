"""Spectral grouping: affinities, Laplacian eigenvectors, eigengap, segments, border segment."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from unseg.cluster.spectral import (
    border_segment,
    eigengap,
    feature_affinity,
    knn_affinity,
    laplacian_eigenvectors,
    spectral_segments,
)
from unseg.errors import ParameterError


def _blocks(sizes: list[int], bridge: float = 0.01) -> np.ndarray:
    n = sum(sizes)
    w = np.full((n, n), bridge)
    start = 0
    for size in sizes:
        w[start : start + size, start : start + size] = 1.0
        start += size
    return w


def test_feature_affinity_is_clipped_cosine():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [2.0, 0.0]])
    a = feature_affinity(x)
    assert np.allclose(np.diag(a), 1)
    assert a[0, 1] == pytest.approx(0) and a[0, 2] == 0 and a[0, 3] == pytest.approx(1)
    assert (a >= 0).all() and np.allclose(a, a.T)


def test_knn_affinity_is_symmetric_without_self_loops():
    rng = np.random.default_rng(0)
    g = knn_affinity(rng.normal(size=(30, 2)), 3)
    assert sp.issparse(g) and (g != g.T).nnz == 0
    assert g.diagonal().sum() == 0
    assert (np.asarray(g.sum(1)).ravel() >= 3).all()


@pytest.mark.parametrize("sparse", [False, True])
def test_three_blocks_give_three_small_eigenvalues_and_their_segments(sparse):
    w = _blocks([10, 15, 20])
    values, vectors = laplacian_eigenvectors(sp.csr_matrix(w) if sparse else w, 6)
    assert values[0] == pytest.approx(0, abs=1e-6)
    assert values[2] < 0.1 < values[3]
    assert eigengap(values, 5) == 3
    labels = spectral_segments(vectors, 3, random_state=0)
    truth = np.repeat([0, 1, 2], [10, 15, 20])
    # each block is one segment and the segments differ
    assert all(len(set(labels[truth == b])) == 1 for b in range(3))
    assert len(set(labels)) == 3


def test_eigenvectors_are_deterministic_and_asked_count_is_checked():
    w = _blocks([8, 12], bridge=0.2)
    a = laplacian_eigenvectors(w, 2)[1]  # the third eigenvalue (1) is repeated
    b = laplacian_eigenvectors(w, 2)[1]
    assert np.array_equal(a, b)
    with pytest.raises(ParameterError, match="fewer"):
        laplacian_eigenvectors(w, 20)


def test_border_segment_holds_most_of_the_border():
    grid = np.zeros((8, 8), int)
    grid[2:6, 2:6] = 1
    assert border_segment(grid) == 0
    assert border_segment(1 - grid) == 1
