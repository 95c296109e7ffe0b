"""Diffusion-based clustering of pixel embeddings: landmarks, diffusion maps, condensation.

A 512 x 512 image has 262,144 pixels; a dense kernel over them would take 550 GB. Pixels are
first summarised by ``n`` weighted landmarks (k-means centres; a landmark's weight is the
number of pixels it holds), and every kernel below is built on the landmarks, each term weighted
by the landmark's pixel count, so memory is bounded by ``n`` whatever the image size. With one
landmark per point (``landmarks`` on fewer points than ``n``) the methods are the plain ones.

- :func:`diffusion_kmeans`: a diffusion-map embedding, then weighted k-means.
- :func:`phate_kmeans`: the diffusion map of PHATE's kernel (Moon et al., 2019: a kNN graph with
  an adaptive, alpha-decaying bandwidth) at diffusion time ``t``, then weighted k-means.
- :func:`condense`: diffusion condensation (Brugnone et al., 2019): the points diffuse towards
  their weighted kernel means step after step; points that meet merge, and the bandwidth grows
  whenever a step merges nothing. Every change of the partition is a level, so each level only
  merges clusters of the one before.
- :meth:`Condensation.persistent`: the CUTS paper's persistent structures (each point takes
  the segment that stays intact for the most condensation steps among those holding it);
  :meth:`Condensation.excess_of_mass`: the segments of most pixels x steps survived.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from unseg.cluster.kmeans import squared_distances
from unseg.errors import ParameterError

_CHUNK = 8192
_LLOYD_SAMPLE = 50_000


def _group_sums(groups: NDArray[np.int64], x: NDArray[np.floating], n: int) -> NDArray:
    """Sum of the rows of ``x`` in each of ``n`` groups: (n, d)."""
    from scipy.sparse import csr_matrix

    member = csr_matrix((np.ones(len(groups), x.dtype), (groups, np.arange(len(groups)))),
                        shape=(n, len(groups)))
    return np.asarray(member @ x)


def _nearest(x: NDArray[np.float32], centres: NDArray[np.float32]) -> NDArray[np.int64]:
    """Index of the nearest centre of each row of ``x``, in chunks of rows."""
    out = np.empty(len(x), dtype=np.int64)
    c2 = (centres**2).sum(1)[None]
    for start in range(0, len(x), _CHUNK):
        block = x[start : start + _CHUNK]
        out[start : start + _CHUNK] = np.argmin(c2 - 2 * (block @ centres.T), axis=1)
    return out


@dataclass
class Landmarks:
    """Weighted landmarks summarising points."""

    #: (n, d) landmark positions.
    centres: NDArray[np.float32]
    #: (n,) number of points each landmark holds (all > 0).
    weights: NDArray[np.float64]
    #: (N,) the landmark of each point.
    assignment: NDArray[np.int64]


def landmarks(x: NDArray[np.floating], n: int, *, iterations: int = 5,
              random_state: int | None = 0) -> Landmarks:
    """Summarise the rows of ``x`` (N, d) by at most ``n`` weighted k-means centres.

    The work happens on a sample of at most 50,000 rows. When the sample holds at most ``n``
    distinct rows, they are the landmarks; otherwise k-means starts from ``n`` distinct sampled
    rows and runs ``iterations`` Lloyd updates on the sample. Every row then goes to its nearest
    landmark, each landmark moves to the mean of its rows, and landmarks left empty are
    dropped. Memory grows with N + n, never N * n.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ParameterError(f"landmarks need a non-empty (N, d) array; received {x.shape}.")
    if n < 1:
        raise ParameterError(f"the number of landmarks must be >= 1, got {n}.")
    rng = np.random.default_rng(random_state)
    sample = x if len(x) <= _LLOYD_SAMPLE else x[rng.choice(len(x), _LLOYD_SAMPLE, replace=False)]
    distinct = np.unique(sample, axis=0)
    if len(distinct) <= n:  # few distinct rows: they are the landmarks
        centres = distinct
    else:
        centres = distinct[rng.choice(len(distinct), n, replace=False)]
        for _ in range(iterations):
            nearest = _nearest(sample, centres)
            counts = np.bincount(nearest, minlength=n)
            sums = _group_sums(nearest, sample, n)
            filled = counts > 0
            centres[filled] = sums[filled] / counts[filled, None]
    assignment = _nearest(x, centres)
    used, assignment = np.unique(assignment, return_inverse=True)
    weights = np.bincount(assignment).astype(np.float64)
    if len(distinct) <= n and len(sample) == len(x):
        return Landmarks(centres[used], weights, assignment)
    sums = _group_sums(assignment, x, len(used))
    return Landmarks((sums / weights[:, None]).astype(np.float32), weights, assignment)


def _check(points: NDArray[np.floating], weights: NDArray[np.floating] | None
           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x: NDArray[np.float64] = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ParameterError(f"expected a non-empty (n, d) array of points; got {x.shape}.")
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(x),) or (w <= 0).any():
        raise ParameterError(
            f"weights must be {len(x)} positive numbers, one per point; got shape {w.shape}."
        )
    return x, w


def _knn_scale(d2: NDArray[np.floating], n_neighbors: int) -> NDArray[np.float64]:
    """Each point's distance to its ``n_neighbors``-th nearest other point (floored)."""
    k = min(n_neighbors, len(d2) - 1)
    if k < 1:
        return np.ones(len(d2))
    dist = np.sqrt(np.partition(d2, k, axis=1)[:, k])
    floor = max(float(np.median(dist)) * 1e-3, 1e-12)
    return np.maximum(dist, floor)


def _weighted_median(values: NDArray[np.floating], weights: NDArray[np.floating]) -> float:
    order = np.argsort(values, axis=None)
    cumulative = np.cumsum(weights.ravel()[order])
    return float(values.ravel()[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def diffusion_kmeans(points: NDArray[np.floating], k: int, *,
                     weights: NDArray[np.floating] | None = None, bandwidth: float = 3.0,
                     n_components: int | None = None, t: int = 1,
                     random_state: int | None = 0) -> NDArray[np.int64]:
    """Spectral k-means: weighted k-means of a diffusion-map embedding of the points.

    The kernel is ``exp(-|x_i - x_j|^2 / (bandwidth * m))`` with ``m`` the median squared
    distance between two points (each pair weighted by the product of the points' weights);
    the Markov chain steps to point j in proportion to ``kernel * weights[j]``. Its
    ``n_components`` (default ``k``) leading right eigenvectors, scaled by their eigenvalues
    to the power ``t``, are the diffusion map; each point's row is then scaled to unit length
    (as Ng, Jordan and Weiss do), which keeps a few outlying points from taking a cluster of
    their own.

    Returns
    -------
    ndarray of int64, shape (n,)
        A cluster id in ``0..k-1`` per point (fewer ids when there are fewer points).
    """
    from sklearn.cluster import KMeans

    points, w = _check(points, weights)
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}. Fix: pass --k 2 or more.")
    if bandwidth <= 0:
        raise ParameterError(f"bandwidth must be > 0, got {bandwidth}.")
    n = len(points)
    k = min(k, n)
    if k == 1 or n < 3:
        return np.arange(n, dtype=np.int64) if k == n else np.zeros(n, dtype=np.int64)
    d2 = squared_distances(points, points)
    scale = bandwidth * max(_weighted_median(d2, np.outer(w, w)), 1e-12)
    kernel = np.exp(-d2 / scale)
    degree = kernel @ w
    # P = D^-1 K W is similar to the symmetric S = W^1/2 D^-1/2 K D^-1/2 W^1/2.
    sym = np.sqrt(w / degree)
    values, vectors = np.linalg.eigh(kernel * sym[:, None] * sym[None, :])
    order = np.argsort(-values)
    m = min(n_components or k, n)
    values, vectors = values[order][:m], vectors[:, order][:, :m]
    psi = vectors / np.sqrt(degree * w)[:, None]
    psi /= np.maximum(np.sqrt((psi**2 * (w * degree)[:, None]).sum(0)), 1e-12)
    embedding = psi * np.abs(values) ** t
    embedding /= np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    km = KMeans(n_clusters=k, n_init=4, random_state=random_state)
    return km.fit_predict(embedding, sample_weight=w).astype(np.int64)


def _adaptive_kernel(x: NDArray[np.float64], knn: int, decay: float) -> sp.csr_matrix:
    """PHATE's kernel on points, sparse and symmetric.

    Each point's bandwidth ``sigma_i`` is the distance to its ``knn``-th nearest other point;
    ``K_ij = (exp(-(d_ij / sigma_i) ** decay) + exp(-(d_ij / sigma_j) ** decay)) / 2``, kept
    for the pairs among each point's ``3 * knn`` nearest points (beyond, with decay 40, it is
    below 1e-16) and on the diagonal (1). On landmarks the bandwidth counts landmarks, not the
    pixels they hold: a landmark stands for a cell of pixels, and the cells next to it are its
    neighbours.
    """
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    search = min(n, 3 * knn + 1)
    dist, idx = NearestNeighbors(n_neighbors=search).fit(x).kneighbors(x)
    dist, idx = dist[:, 1:], idx[:, 1:]  # the point itself comes first
    sigma = dist[:, min(knn, idx.shape[1]) - 1]
    sigma = np.maximum(sigma, max(float(np.median(sigma)) * 1e-3, 1e-12))
    rows = np.repeat(np.arange(n), idx.shape[1])
    values = np.exp(-((dist.ravel() / sigma[rows]) ** decay))
    half = sp.csr_matrix((values, (rows, idx.ravel())), shape=(n, n))
    kernel = (half + half.T) * 0.5
    kernel.setdiag(1.0)
    return kernel.tocsr()


def knee(values: NDArray[np.floating]) -> int:
    """Index of the knee of a decreasing curve: the split where one line on each side fits
    best (least squared error), the second line starting at the split."""
    y = np.asarray(values, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64)
    if len(y) < 3:
        return 0
    best, best_error = 1, np.inf
    for split in range(1, len(y) - 1):
        error = 0.0
        for seg in (slice(0, split + 1), slice(split, len(y))):
            coef = np.polyfit(x[seg], y[seg], 1)
            error += float(((np.polyval(coef, x[seg]) - y[seg]) ** 2).sum())
        if error < best_error:
            best, best_error = split, error
    return best


def von_neumann_entropy(eigenvalues: NDArray[np.floating], t_max: int = 100
                        ) -> NDArray[np.float64]:
    """Entropy of the spectrum of ``P^t`` for t = 1..t_max: ``-sum eta log eta`` with ``eta``
    the normalised ``|lambda|^t``."""
    lam = np.abs(np.asarray(eigenvalues, dtype=np.float64))
    out = np.empty(t_max)
    for t in range(1, t_max + 1):
        eta = lam**t
        eta = eta[eta > 0] / eta.sum()
        out[t - 1] = -(eta * np.log(eta)).sum()
    return out


@dataclass
class PhateEmbedding:
    """The result of :func:`phate_embedding`."""

    #: (n, n_components) diffusion coordinates at time t; the first is constant on a
    #: connected graph (one per connected part otherwise).
    coordinates: NDArray[np.float64]
    #: The diffusion time used.
    t: int
    #: The leading eigenvalues of the diffusion operator, largest first (1 comes first).
    eigenvalues: NDArray[np.float64]


def phate_embedding(points: NDArray[np.floating], n_components: int, *,
                    weights: NDArray[np.floating] | None = None, knn: int = 5,
                    decay: float = 40.0, t: int | None = None, n_eigenvalues: int = 100
                    ) -> PhateEmbedding:
    """The diffusion map of PHATE's kernel on weighted points.

    The kernel is :func:`_adaptive_kernel` (kNN bandwidths, alpha decay); the Markov chain
    steps to point j in proportion to ``K_ij * weights[j]``. Its ``n_components`` leading
    right eigenvectors, scaled by their eigenvalues to the power ``t``, are the coordinates
    (the first, constant on a connected graph, is kept: on a graph of several parts the
    leading eigenvectors mark the parts). ``t=None`` picks PHATE's automatic time: the knee of
    the von Neumann entropy of ``P^t`` over t = 1..100, computed from the ``n_eigenvalues``
    leading eigenvalues (every eigenvalue when there are at most 2,000 points).

    Memory and time grow with the number of points times ``knn`` (the kernel is sparse), and
    with the points times the eigenvectors computed (``n_components + 1`` when ``t`` is given,
    ``n_eigenvalues`` when it is chosen).
    """
    from scipy.sparse.linalg import eigsh

    x, w = _check(points, weights)
    n = len(x)
    if n_components < 1 or n_components > n - 1:
        raise ParameterError(
            f"asked for {n_components} PHATE components of {n} points. Fix: ask for fewer "
            "segments, or use more landmarks."
        )
    if knn < 1 or decay <= 0:
        raise ParameterError(f"knn must be >= 1 and decay > 0; got knn={knn}, decay={decay}.")
    if t is not None and t < 1:
        raise ParameterError(f"t must be >= 1 or None (automatic), got {t}.")
    kernel = _adaptive_kernel(x, knn, decay)
    degree = np.asarray(kernel @ w).ravel()
    # P = D^-1 K W is similar to the symmetric S = W^1/2 D^-1/2 K D^-1/2 W^1/2.
    sym = np.sqrt(w / degree)
    s = sp.diags(sym) @ kernel @ sp.diags(sym)
    if n <= 2000:
        values, vectors = np.linalg.eigh(s.toarray())
    else:
        m = min(n - 1, n_components + 1 if t is not None else max(n_eigenvalues,
                                                                   n_components + 1))
        v0 = np.sqrt(w * degree)
        values, vectors = eigsh(s, k=m, which="LA", v0=v0 / np.linalg.norm(v0), tol=1e-8)
    order = np.argsort(-values)
    values, vectors = values[order], vectors[:, order]
    if t is None:
        t = knee(von_neumann_entropy(values[: max(n_eigenvalues, n_components + 1)])) + 1
    psi = vectors[:, :n_components] / np.sqrt(degree * w)[:, None]
    psi /= np.maximum(np.sqrt((psi**2 * (w * degree)[:, None]).sum(0)), 1e-12)
    psi *= np.sign(psi[np.abs(psi).argmax(0), np.arange(psi.shape[1])])
    return PhateEmbedding(psi * values[:n_components] ** t, int(t), values)


def phate_kmeans(points: NDArray[np.floating], k: int, *,
                 weights: NDArray[np.floating] | None = None, knn: int = 5,
                 decay: float = 40.0, t: int | None = None,
                 random_state: int | None = 0) -> NDArray[np.int64]:
    """Spectral k-means on PHATE's diffusion: weighted k-means of :func:`phate_embedding`'s
    ``k`` coordinates.

    Returns
    -------
    ndarray of int64, shape (n,)
        A cluster id in ``0..k-1`` per point (fewer ids when there are fewer points).
    """
    from sklearn.cluster import KMeans

    x, w = _check(points, weights)
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}. Fix: pass --k 2 or more.")
    n = len(x)
    k = min(k, n)
    if k == 1 or n < 3:
        return np.arange(n, dtype=np.int64) if k == n else np.zeros(n, dtype=np.int64)
    embedding = phate_embedding(x, min(k, n - 1), weights=w, knn=knn, decay=decay, t=t)
    km = KMeans(n_clusters=k, n_init=4, random_state=random_state)
    return km.fit_predict(embedding.coordinates, sample_weight=w).astype(np.int64)


@dataclass
class Condensation:
    """The result of :func:`condense`: every partition of the points, fine to coarse."""

    #: (n_levels, n) cluster id of each point at each level; level 0 = every point its own
    #: cluster (identical points merged), the last level = one cluster. Ids are 0..c-1.
    labels: NDArray[np.int64]
    #: (n_levels,) the condensation step at which each level appeared (level 0: step 0).
    steps: NDArray[np.int64]
    #: The last step run.
    final_step: int
    #: (n,) the weight of each point.
    weights: NDArray[np.float64]

    @property
    def n_clusters(self) -> NDArray[np.int64]:
        """Clusters at each level."""
        return self.labels.max(axis=1) + 1

    @property
    def durations(self) -> NDArray[np.int64]:
        """Steps each level lasted before the next merge (the last level: 0)."""
        return np.diff(np.append(self.steps, self.final_step))

    def plateaus(self, max_clusters: int | None = None) -> NDArray[np.int64]:
        """Levels with 2 or more clusters (at most ``max_clusters``), longest-lasting first:
        the granularities at which the number of clusters plateaus."""
        counts = self.n_clusters
        ok = counts >= 2
        if max_clusters is not None:
            ok &= counts <= max_clusters
        levels = np.flatnonzero(ok)
        order = np.lexsort((-levels, -self.durations[levels]))
        return levels[order]

    def _start(self, max_clusters: int | None) -> int:
        """The first level with at most ``max_clusters`` clusters (level 0 for None)."""
        if max_clusters is None:
            return 0
        fits = np.flatnonzero(self.n_clusters <= max_clusters)
        return int(fits[0]) if len(fits) else len(self.labels) - 1

    def persistent(self, max_clusters: int | None = None, min_size: float = 0.01
                   ) -> NDArray[np.int64]:
        """Persistent structures as the CUTS paper defines them (its section 3.2.2).

        A segment is a cluster as a set of points; its persistence is the number of
        condensation steps it stays intact, from the step it forms until the step it merges
        with any other cluster. Every segment of the levels with 2 to ``max_clusters``
        clusters (all levels with 2 or more by default) is painted over the points in order of
        persistence, so a more persistent segment overrides the less persistent ones it
        overlaps (the segments are nested: each point takes the most persistent segment that
        holds it; on equal persistence the smaller one). Ids are 0..m-1.
        """
        start = self._start(max_clusters)
        n_levels = len(self.labels)
        if self.n_clusters[start] < 2:
            return self.labels[start].copy()
        # birth[c]: the step cluster c of the current level formed, kept while it is intact
        total = float(self.weights.sum())
        birth = np.zeros(int(self.labels[0].max()) + 1, dtype=np.int64)
        segments: list[tuple[int, float, int, int]] = []  # (persistence, -weight, level, id)
        for level in range(1, n_levels):
            prev, cur, step = self.labels[level - 1], self.labels[level], int(self.steps[level])
            pairs = np.unique(np.stack([cur, prev]), axis=1)  # (2, pairs) sorted by cur
            parts = np.bincount(pairs[0])
            new_birth = np.where(parts == 1, 0, step).astype(np.int64)
            single = parts[pairs[0]] == 1
            new_birth[pairs[0, single]] = birth[pairs[1, single]]
            if level - 1 >= start:
                weight = np.bincount(prev, weights=self.weights)
                for c in pairs[1, ~single]:  # the clusters of prev that merge at this step
                    if weight[c] >= min_size * total:
                        segments.append((step - int(birth[c]), -float(weight[c]), level - 1,
                                         int(c)))
            birth = new_birth
        # the coarsest level with 2 or more clusters first, under every segment painted
        out = self.labels[n_levels - 2].copy()
        for index, (_, _, level, c) in enumerate(sorted(segments), start=int(out.max()) + 1):
            out[self.labels[level] == c] = index
        return np.unique(out, return_inverse=True)[1].astype(np.int64)

    def excess_of_mass(self, max_clusters: int | None = None, tolerance: float = 0.05
                       ) -> NDArray[np.int64]:
        """One partition of the points into the segments that persist longest by mass.

        Only the levels with at most ``max_clusters`` clusters take part (all levels by
        default); the clusters of the first of them are the starting segments. A segment lives
        from the step it forms until it merges with a cluster of comparable size: absorbing
        clusters that add less than ``tolerance`` of the merged weight does not end it. Its
        persistence is its weight (pixels) times the steps it lived. Going up the merge tree, a
        segment wins over the segments inside it when its persistence is at least the summed
        persistence of the winners among them, otherwise its points go to those winners (the
        excess-of-mass rule of HDBSCAN, with condensation steps as the scale). The single
        cluster at the top never competes: it does not end.
        """
        start = self._start(max_clusters)
        labels, steps = self.labels[start:], self.steps[start:]
        if len(labels) == 1:
            return labels[0].copy()
        n_leaves = int(labels[0].max()) + 1
        # Nodes of the merge tree: one per starting segment, then one whenever clusters of
        # comparable size merge. node_of: the node of each cluster id of the current level.
        node_of = np.arange(n_leaves)
        weight = np.bincount(labels[0], weights=self.weights, minlength=n_leaves).tolist()
        birth, death = [int(steps[0])] * n_leaves, [0] * n_leaves
        children: list[list[int]] = [[] for _ in range(n_leaves)]
        for level in range(1, len(labels)):
            prev, cur, step = labels[level - 1], labels[level], int(steps[level])
            pairs = np.unique(np.stack([cur, prev]), axis=1)  # (2, pairs) sorted by cur
            new_node_of = np.empty(int(cur.max()) + 1, dtype=np.int64)
            for group in np.split(pairs, np.flatnonzero(np.diff(pairs[0])) + 1, axis=1):
                parts = [int(o) for o in node_of[group[1]]]
                total = sum(weight[o] for o in parts)
                main = max(parts, key=lambda o: weight[o])
                if weight[main] >= (1 - tolerance) * total:
                    node = main  # absorbs the small parts and lives on
                    parts.remove(main)
                else:
                    node = len(birth)
                    birth.append(step)
                    death.append(0)
                    weight.append(0.0)
                    children.append([])
                for o in parts:
                    death[o] = step
                children[node].extend(parts)
                weight[node] = total
                new_node_of[group[0, 0]] = node
            node_of = new_node_of
        root = int(node_of[0])
        mass = np.asarray(weight) * (np.asarray(death) - np.asarray(birth))
        best = np.zeros(len(birth))
        winners: dict[int, list[int]] = {}
        order, stack = [], [root]
        while stack:  # pre-order; reversed, every node comes after its children
            node = stack.pop()
            order.append(node)
            stack.extend(children[node])
        for node in reversed(order):
            inner = sum(best[c] for c in children[node])
            if node != root and (not children[node] or mass[node] >= inner):
                best[node], winners[node] = mass[node], [node]
            else:
                best[node] = inner
                winners[node] = [w for c in children[node] for w in winners[c]]
        leaf_label = np.empty(n_leaves, dtype=np.int64)
        for segment, node in enumerate(winners[root]):
            leaf_label[_members(node, children, n_leaves)] = segment
        return leaf_label[labels[0]]


def _members(node: int, children: list[list[int]], n_leaves: int) -> list[int]:
    """The starting segments under a node (they are the nodes numbered below ``n_leaves``)."""
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        if current < n_leaves:
            out.append(current)
        stack.extend(children[current])
    return out


def condense(points: NDArray[np.floating], *, weights: NDArray[np.floating] | None = None,
             n_neighbors: int = 1, merge_threshold: float = 1e-3, growth: float = 1.1,
             max_steps: int = 10_000) -> Condensation:
    """Diffusion condensation of weighted points until one cluster remains.

    Each step moves every point to its weighted kernel mean
    ``x_i <- sum_j K_ij w_j x_j / sum_j K_ij w_j`` with ``K_ij = exp(-|x_i - x_j|^2 / eps)``,
    then merges points closer than ``merge_threshold`` times the median initial
    ``n_neighbors``-th neighbour distance (a merged point is the weighted mean, with the summed
    weight). ``eps`` starts at the square of that median distance and is multiplied by
    ``growth`` after every step that merges nothing. A step costs O(m^2 d) for the m points
    left.

    Parameters
    ----------
    points : array_like, shape (n, d)
    weights : array_like, shape (n,), optional
        Points each row stands for (landmark sizes); default 1 each.
    n_neighbors, merge_threshold, growth, max_steps
        As above; ``max_steps`` bounds the steps (a ``ParameterError`` if one cluster is not
        reached by then).

    Returns
    -------
    Condensation
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    x, w = _check(points, weights)
    point_weights = w.copy()
    if growth <= 1:
        raise ParameterError(f"growth must be > 1, got {growth}.")
    if merge_threshold <= 0:
        raise ParameterError(f"merge_threshold must be > 0, got {merge_threshold}.")
    _, first, inverse = np.unique(x, axis=0, return_index=True, return_inverse=True)
    current: NDArray[np.int64] = inverse.ravel().astype(np.int64)
    w = np.bincount(current, weights=w).astype(np.float64)
    x = x[first]
    d2 = squared_distances(x, x)
    scale = float(np.median(_knn_scale(d2, n_neighbors))) if len(x) > 1 else 1.0
    eps, limit = scale**2, (merge_threshold * scale) ** 2
    labels, steps = [current.copy()], [0]
    step = 0
    while len(x) > 1:
        if step >= max_steps:
            raise ParameterError(
                f"diffusion condensation left {len(x)} clusters after {max_steps} steps. "
                "Fix: raise max_steps or growth."
            )
        step += 1
        kernel = np.exp(-d2 / eps) * w[None, :]
        x = (kernel @ x) / kernel.sum(axis=1, keepdims=True)
        d2 = squared_distances(x, x)
        close = np.argwhere(np.triu(d2 < limit, k=1))
        if len(close) == 0:
            eps *= growth
            continue
        graph = coo_matrix((np.ones(len(close)), (close[:, 0], close[:, 1])),
                           shape=(len(x), len(x)))
        n_comp, comp = connected_components(graph, directed=False)
        merged_w = np.bincount(comp, weights=w).astype(np.float64)
        x = _group_sums(comp, w[:, None] * x, n_comp) / merged_w[:, None]
        w = merged_w
        current = comp[current]
        d2 = squared_distances(x, x)
        labels.append(current.copy())
        steps.append(step)
    return Condensation(np.stack(labels), np.asarray(steps, dtype=np.int64), step, point_weights)
