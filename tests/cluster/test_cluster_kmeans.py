"""Dataset-level k-means (l2, cosine, standardised) and Sinkhorn OT k-means."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from unseg.cluster.kmeans import fit_kmeans, fit_otc, sinkhorn
from unseg.errors import ParameterError


def _blobs(n=(40, 40, 40), seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    x = np.concatenate([c + 0.3 * rng.normal(size=(m, 3)) for c, m in zip(centres, n, strict=True)])
    return x.astype(np.float32), np.repeat([0, 1, 2], n)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("standardize", [False, True])
def test_kmeans_recovers_blobs_and_assigns_new_points(metric, standardize):
    x, y = _blobs()
    centres = fit_kmeans(x, 3, metric=metric, standardize=standardize, random_state=0)
    assert adjusted_rand_score(y, centres.assign(x)) == 1.0
    new, y_new = _blobs(seed=1)
    assert adjusted_rand_score(y_new, centres.assign(new)) == 1.0


def test_cosine_ignores_the_length_of_vectors():
    x, y = _blobs()
    scaled = x * np.random.default_rng(2).uniform(0.1, 10, size=(len(x), 1)).astype(np.float32)
    centres = fit_kmeans(scaled, 3, metric="cosine", random_state=0)
    assert adjusted_rand_score(y, centres.assign(scaled)) == 1.0
    assert adjusted_rand_score(y, fit_kmeans(scaled, 3, metric="l2").assign(scaled)) < 1.0


def test_sinkhorn_balances_the_clusters():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 3))
    scores[:, 0] += 2  # every point prefers cluster 0
    q = sinkhorn(scores, temperature=0.5, iterations=50)
    assert np.allclose(q.sum(1), 1, atol=1e-6)
    assert np.allclose(q.sum(0), 20, atol=1e-3)


def test_kmeans_defaults_are_l2_on_raw_vectors():
    x, y = _blobs()
    centres = fit_kmeans(x, 3)
    assert centres.metric == "l2" and centres.mean is None and centres.scale is None
    # the centres are the blobs' means in the input space
    means = np.stack([x[y == i].mean(0) for i in range(3)])
    assert np.allclose(np.sort(centres.centres, 0), np.sort(means, 0), atol=1e-4)


@pytest.mark.parametrize("init", ["random", "k-means++"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_otc_recovers_balanced_blobs_and_is_seeded(init, seed):
    x, y = _blobs(seed=seed)
    a = fit_otc(x, 3, init=init, random_state=seed)
    assert a.metric == "cosine" and a.mean is None
    assert adjusted_rand_score(y, a.assign(x)) == 1.0
    assert np.array_equal(a.centres, fit_otc(x, 3, init=init, random_state=seed).centres)
    l2 = fit_otc(x, 3, metric="l2", init=init, random_state=seed)
    assert adjusted_rand_score(y, l2.assign(x)) == 1.0
    std = fit_otc(x, 3, standardize=True, init=init, random_state=seed)
    assert adjusted_rand_score(y, std.assign(x)) == 1.0


def test_otc_runs_every_update_unless_told_to_stop_early(monkeypatch):
    from unseg.cluster import kmeans

    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return sinkhorn(*args, **kwargs)

    monkeypatch.setattr(kmeans, "sinkhorn", counted)
    x, y = _blobs()
    fixed = fit_otc(x, 3)
    assert len(calls) == 200  # the report's 200 updates, converged or not
    calls.clear()
    early = fit_otc(x, 3, tol=1e-5)
    assert 1 <= len(calls) < 200
    assert adjusted_rand_score(y, early.assign(x)) == 1.0
    assert np.allclose(fixed.centres, early.centres, atol=1e-4)


def test_otc_random_init_starts_at_data_rows(monkeypatch):
    from unseg.cluster import kmeans

    first = []

    def spy(scores, *args, **kwargs):
        first.append(np.array(scores))
        return sinkhorn(scores, *args, **kwargs)

    monkeypatch.setattr(kmeans, "sinkhorn", spy)
    x, _ = _blobs()
    fit_otc(x, 3, updates=1, random_state=4)
    # cosine scores of the unit-length rows with centres that are rows themselves: each
    # centre scores exactly 1 with the row it was drawn as
    assert np.allclose(first[0].max(0), 1.0, atol=1e-6)
    with pytest.raises(ParameterError, match="init"):
        fit_otc(x, 3, init="farthest")


def test_too_few_vectors_and_bad_metric_are_errors():
    x, _ = _blobs(n=(1, 1, 0))
    with pytest.raises(ParameterError, match="smaller k"):
        fit_kmeans(x, 3)
    with pytest.raises(ParameterError, match="metric"):
        fit_otc(_blobs()[0], 3, metric="manhattan")
