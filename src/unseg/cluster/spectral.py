"""Spectral grouping of the cells of one image (Deep Spectral Methods).

The affinity of two feature cells is the cosine similarity of their backbone features with
negative values set to 0, optionally plus a kNN affinity on colour and position. Segments come
from the eigenvectors of the graph Laplacian with the smallest eigenvalues, by k-means with a
fixed count or with the count at the largest eigengap.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.linalg import eigsh

from unseg.errors import ParameterError


def feature_affinity(features: NDArray[np.floating]) -> NDArray[np.float32]:
    """Cosine similarity of the rows of ``features`` (N, C), negatives set to 0: (N, N)."""
    x = np.asarray(features, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    affinity = x @ x.T
    np.maximum(affinity, 0, out=affinity)
    return affinity


def knn_affinity(points: NDArray[np.floating], n_neighbors: int) -> sp.csr_matrix:
    """Symmetric 0/1 affinity linking each row of ``points`` (N, D) to its nearest neighbours."""
    from sklearn.neighbors import NearestNeighbors

    n = len(points)
    k = min(n_neighbors + 1, n)
    _, idx = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(points)
    rows = np.repeat(np.arange(n), k)
    graph = sp.csr_matrix((np.ones(n * k, np.float32), (rows, idx.ravel())), shape=(n, n))
    graph.setdiag(0)
    graph.eliminate_zeros()
    return graph.maximum(graph.T).tocsr()


def laplacian_eigenvectors(
    affinity: NDArray[np.floating] | sp.spmatrix, n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The ``n`` smallest solutions of the generalised problem ``(D - W) v = lambda D v``.

    Solved as the largest eigenpairs of ``D^-1/2 W D^-1/2`` by ARPACK (``eigsh``), which only
    needs products with ``W`` (dense or sparse), started from a fixed vector so the result is
    deterministic.

    Returns
    -------
    eigenvalues : (n,) ascending, in [0, 2]
    vectors : (N, n) the generalised eigenvectors, each of unit norm, sign fixed so that its
        first entry of at least a tenth of its largest magnitude is positive
    """
    w = affinity
    size = w.shape[0]
    if not 1 <= n < size:
        raise ParameterError(
            f"asked for {n} eigenvectors of a graph of {size} nodes. Fix: ask for fewer "
            "segments, or give a larger image."
        )
    degree = np.asarray(w.sum(axis=1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    if sp.issparse(w):
        normalised = sp.diags(inv_sqrt) @ w @ sp.diags(inv_sqrt)
    else:
        normalised = np.asarray(w, dtype=np.float64) * inv_sqrt[:, None] * inv_sqrt[None, :]
    v0 = np.sqrt(np.maximum(degree, 1e-12))
    mu, u = eigsh(normalised, k=n, which="LA", v0=v0 / np.linalg.norm(v0), tol=1e-6)
    order = np.argsort(-mu)
    eigenvalues = np.clip(1.0 - mu[order], 0.0, 2.0)
    vectors = u[:, order] * inv_sqrt[:, None]
    vectors /= np.maximum(np.linalg.norm(vectors, axis=0, keepdims=True), 1e-12)
    big = np.abs(vectors) >= 0.1 * np.abs(vectors).max(axis=0, keepdims=True)
    flip = np.sign(vectors[big.argmax(axis=0), np.arange(n)])
    return eigenvalues, vectors * np.where(flip == 0, 1, flip)


def eigengap(eigenvalues: NDArray[np.floating], max_segments: int) -> int:
    """The segment count ``k`` (2..max_segments) after which the eigenvalues jump most."""
    values = np.asarray(eigenvalues)[: max_segments + 1]
    if len(values) < 3:
        return 2
    gaps = np.diff(values)[1:]  # gaps[i] lies between eigenvalue i + 1 and i + 2
    return int(np.argmax(gaps)) + 2


def spectral_segments(
    vectors: NDArray[np.floating], n_segments: int, random_state: int | None
) -> NDArray[np.int64]:
    """k-means of the rows of the first ``n_segments`` eigenvectors: a segment id per node."""
    from sklearn.cluster import KMeans

    x = vectors[:, :n_segments]
    n_segments = min(n_segments, len(np.unique(x.round(8), axis=0)))
    km = KMeans(n_clusters=n_segments, n_init=4, random_state=random_state)
    return km.fit_predict(x).astype(np.int64)


def border_segment(segments: NDArray[np.integer]) -> int:
    """The id of the segment holding the largest share of the grid's border cells."""
    grid = np.asarray(segments)
    border = np.concatenate([grid[0], grid[-1], grid[1:-1, 0], grid[1:-1, -1]])
    return int(np.bincount(border).argmax())
