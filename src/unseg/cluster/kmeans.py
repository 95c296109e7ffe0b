"""Dataset-level clustering of feature vectors: k-means and optimal-transport clustering (OTC,
k-means with Sinkhorn assignments).

Both return :class:`Centres`, which assign new vectors to the nearest centre under the metric
they were fitted with (``l2`` or ``cosine``), after the same standardization. By default k-means
is Euclidean on the raw vectors, and OTC runs 200 updates of cosine transport plans from k
random vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from unseg.errors import ParameterError

METRICS = ("l2", "cosine")
#: How OTC starts its centres.
OTC_INITS = ("random", "k-means++")


@dataclass
class Centres:
    """Cluster centres (k, d) in the prepared space, and how to prepare new vectors."""

    centres: NDArray[np.float32]
    metric: str
    mean: NDArray[np.float32] | None = None
    scale: NDArray[np.float32] | None = None

    def prepare(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        """Standardize (when fitted so) and, for cosine, normalise rows of ``x`` (N, d)."""
        return _prepare(np.asarray(x, np.float32), self.metric, self.mean, self.scale)

    def assign(self, x: NDArray[np.floating]) -> NDArray[np.int64]:
        """The nearest centre of each row of ``x`` (N, d)."""
        z = self.prepare(x)
        if self.metric == "cosine":
            return np.argmax(z @ self.centres.T, axis=1)
        return np.argmin(squared_distances(z, self.centres), axis=1)


def squared_distances(x: NDArray[np.floating], c: NDArray[np.floating]) -> NDArray[np.floating]:
    """Squared Euclidean distances between the rows of ``x`` (N, d) and ``c`` (k, d): (N, k)."""
    return np.maximum((x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None], 0)


def _normalize(x: NDArray[np.float32]) -> NDArray[np.float32]:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _prepare(x: NDArray[np.float32], metric: str, mean: NDArray | None, scale: NDArray | None
             ) -> NDArray[np.float32]:
    if mean is not None and scale is not None:
        x = (x - mean) / scale
    return _normalize(x) if metric == "cosine" else x


def _standardized(x: NDArray[np.floating], metric: str, standardize: bool
                  ) -> tuple[NDArray[np.float32], NDArray | None, NDArray | None]:
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {METRICS}, got {metric!r}.")
    x = np.asarray(x, np.float32)
    mean = scale = None
    if standardize:
        mean = x.mean(0)
        scale = np.maximum(x.std(0), 1e-6).astype(np.float32)
    return _prepare(x, metric, mean, scale), mean, scale


def _check(x: NDArray, k: int) -> None:
    if x.ndim != 2 or len(x) < k:
        raise ParameterError(
            f"cannot make {k} clusters of {len(x)} vectors. Fix: give more images, or a "
            "smaller k."
        )


def fit_kmeans(x: NDArray[np.floating], k: int, *, metric: str = "l2",
               standardize: bool = False, random_state: int | None = 0) -> Centres:
    """k-means of the rows of ``x`` (N, d) into ``k`` clusters.

    Parameters
    ----------
    x : ndarray (N, d)
        The vectors.
    k : int
        Number of clusters.
    metric : str
        ``"l2"`` (the default): Euclidean k-means of the vectors as given; ``"cosine"``:
        k-means of the unit-length vectors, whose centres are scaled to unit length and
        assign by cosine similarity.
    standardize : bool
        Standardize each feature (zero mean, unit variance over ``x``) first.
    random_state : int or None
        Seeds the k-means++ seeding (best of 4 runs by inertia).

    Returns
    -------
    Centres
    """
    from sklearn.cluster import KMeans

    z, mean, scale = _standardized(x, metric, standardize)
    _check(z, k)
    centres = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(z).cluster_centers_
    centres = centres.astype(np.float32)
    return Centres(_normalize(centres) if metric == "cosine" else centres, metric, mean, scale)


def sinkhorn(scores: NDArray[np.floating], temperature: float, iterations: int
             ) -> NDArray[np.float64]:
    """Soft assignments (N, k) with rows summing to 1 and equal column masses N / k.

    ``scores`` are similarities (higher is closer); the transport plan is
    ``exp(scores / temperature)`` scaled alternately to uniform column and row sums.
    """
    s = np.asarray(scores, np.float64) / temperature
    q = np.exp(s - s.max())
    n, k = q.shape
    for _ in range(iterations):
        q /= np.maximum(q.sum(0, keepdims=True), 1e-300) * k
        q /= np.maximum(q.sum(1, keepdims=True), 1e-300) * n
    return q * n


def fit_otc(x: NDArray[np.floating], k: int, *, metric: str = "cosine",
            standardize: bool = False, temperature: float = 0.02,
            sinkhorn_iterations: int = 10, updates: int = 200, init: str = "random",
            tol: float = 0.0, random_state: int | None = 0) -> Centres:
    """Optimal-transport clustering (OTC): k-means whose assignment step is a Sinkhorn
    transport plan with equal cluster masses.

    Parameters
    ----------
    x : ndarray (N, d)
        The vectors.
    k : int
        Number of clusters.
    metric : str
        ``"cosine"``: the transport scores are the cosine similarities of the vectors and the
        centres (centres kept at unit length); ``"l2"``: minus the squared distances divided by
        their mean.
    standardize : bool
        Standardize each feature (zero mean, unit variance over ``x``) first.
    temperature, sinkhorn_iterations : float, int
        Of :func:`sinkhorn`, at every update.
    updates : int
        Assignment-update iterations: the plan, then every centre moved to the plan-weighted
        mean of the vectors.
    init : str
        ``"random"``: the centres start at k distinct rows of ``x`` drawn at random;
        ``"k-means++"``: k-means++ seeding.
    tol : float
        Stop early once no centre moves more than ``tol`` in one update (0: run every update).
    random_state : int or None
        Seeds the initialization.

    Returns
    -------
    Centres
    """
    z, mean, scale = _standardized(x, metric, standardize)
    _check(z, k)
    if init not in OTC_INITS:
        raise ParameterError(f"init must be one of {OTC_INITS}, got {init!r}.")
    rng = np.random.RandomState(random_state)
    if init == "random":
        centres = z[np.sort(rng.choice(len(z), k, replace=False))].astype(np.float32)
    else:
        from sklearn.cluster import kmeans_plusplus

        centres, _ = kmeans_plusplus(z, k, random_state=rng)
    for _ in range(updates):
        if metric == "cosine":
            scores = z @ centres.T
        else:
            d = squared_distances(z, centres)
            scores = -d / max(float(d.mean()), 1e-12)
        q = sinkhorn(scores, temperature, sinkhorn_iterations)
        new = ((q.T @ z) / np.maximum(q.sum(0)[:, None], 1e-12)).astype(np.float32)
        if metric == "cosine":
            new = _normalize(new)
        moved = float(np.abs(new - centres).max())
        centres = new
        if tol > 0 and moved <= tol:
            break
    return Centres(centres.astype(np.float32), metric, mean, scale)
