"""Landmarks, diffusion-map k-means and diffusion condensation on points with known clusters."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from unseg.cluster.diffusion import condense, diffusion_kmeans, landmarks
from unseg.errors import ParameterError


def blobs(n_per: int = 150, spread: float = 0.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [6, 0], [0, 6], [6, 6]], float)
    x = np.concatenate([c + rng.normal(size=(n_per, 2)) * spread for c in centres])
    return x, np.repeat(np.arange(4), n_per)


def test_landmarks_summarize_every_point_with_its_nearest_landmark():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 6)).astype(np.float32)
    marks = landmarks(x, 64)
    assert len(marks.centres) <= 64 and marks.weights.sum() == len(x)
    assert np.array_equal(np.bincount(marks.assignment), marks.weights)
    d = ((x[:, None] - marks.centres[None]) ** 2).sum(-1)
    # each landmark is the mean of its points, and nearly every point's nearest landmark
    assert (d.argmin(1) == marks.assignment).mean() > 0.9
    np.testing.assert_allclose(marks.centres[3], x[marks.assignment == 3].mean(0), atol=1e-5)


def test_few_distinct_points_are_their_own_landmarks():
    x = np.repeat(np.eye(3, dtype=np.float32), [5, 1, 7], axis=0)
    marks = landmarks(x, 10)
    assert sorted(marks.weights.tolist()) == [1, 5, 7]
    assert np.array_equal(marks.centres[marks.assignment], x)


def test_diffusion_kmeans_finds_the_blobs_and_respects_weights():
    x, truth = blobs()
    assert adjusted_rand_score(truth, diffusion_kmeans(x, 4)) == 1.0
    # one point standing for many: the weighted result equals the one on repeated points
    marks = landmarks(x, 40)
    labels = diffusion_kmeans(marks.centres, 4, weights=marks.weights)[marks.assignment]
    assert adjusted_rand_score(truth, labels) > 0.95


def test_condensation_levels_only_merge_and_end_in_one_cluster():
    x, truth = blobs(60)
    result = condense(x)
    counts = result.n_clusters
    assert counts[0] == len(x) and counts[-1] == 1
    assert (np.diff(counts) < 0).all() and (np.diff(result.steps) > 0).all()
    for finer, coarser in zip(result.labels[:-1], result.labels[1:], strict=True):
        pairs = np.unique(np.stack([finer, coarser]), axis=1)
        # each cluster of a level lies inside one cluster of the next
        assert len(np.unique(pairs[0])) == pairs.shape[1]


def test_the_longest_plateau_and_the_persistent_segments_are_the_blobs():
    x, truth = blobs()
    result = condense(x)
    best = result.plateaus(max_clusters=50)[0]
    assert result.n_clusters[best] == 4
    assert adjusted_rand_score(truth, result.labels[best]) == 1.0
    assert adjusted_rand_score(truth, result.excess_of_mass(max_clusters=50)) == 1.0
    assert adjusted_rand_score(truth, result.persistent(max_clusters=8)) == 1.0


def _condensation(levels: list[list[int]], steps: list[int]):
    from unseg.cluster.diffusion import Condensation

    return Condensation(np.array(levels), np.array(steps), steps[-1],
                        np.ones(len(levels[0])))


def test_the_papers_persistence_counts_the_steps_a_segment_stays_intact():
    # points 0 and 1 merge at step 2, {2, 3} at step 10, all at 11: the singletons 2 and 3
    # stay intact 10 steps, {0, 1} 9, the singletons 0 and 1 2, {2, 3} 1; each point takes
    # the most persistent segment holding it
    tree = _condensation([[0, 1, 2, 3], [0, 0, 1, 2], [0, 0, 1, 1], [0, 0, 0, 0]],
                         [0, 2, 10, 11])
    labels = tree.persistent()
    assert labels[0] == labels[1] and len({labels[1], labels[2], labels[3]}) == 3
    # a segment that lasts longer overrides the finer ones inside it
    tree = _condensation([[0, 1, 2, 3], [0, 0, 1, 2], [0, 0, 1, 1], [0, 0, 0, 0]],
                         [0, 2, 3, 30])
    assert adjusted_rand_score(tree.persistent(), [0, 0, 1, 1]) == 1.0
    # the excess-of-mass rule weighs pixels x steps: {0, 1} (2 x 9) beats 0 and 1 (2 x 2)
    assert adjusted_rand_score(tree.excess_of_mass(), [0, 0, 1, 1]) == 1.0


def test_the_papers_persistence_leaves_out_tiny_segments():
    # points 0-99 stay single until step 45, the lone point 200 until 50: each lasts longer
    # than the segment {0-99, 200} they then form (40 steps), but holds under 1% of the weight
    levels = [list(range(201)), list(range(100)) + [100] * 100 + [101],
              [0] * 100 + [1] * 100 + [2], [0] * 100 + [1] * 100 + [0], [0] * 201]
    tree = _condensation(levels, [0, 5, 45, 50, 90])
    assert adjusted_rand_score(tree.persistent(), [0] * 100 + [1] * 100 + [0]) == 1.0
    assert len(np.unique(tree.persistent(min_size=0.0))) == 102


def test_persistence_prefers_the_segments_that_last():
    # two tight pairs of blobs: the pairs last longer than the four blobs, so they win
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [1.5, 0], [40, 0], [41.5, 0]], float)
    x = np.concatenate([c + rng.normal(size=(80, 2)) * 0.1 for c in centres])
    result = condense(x)
    pairs = np.repeat([0, 0, 1, 1], 80)
    assert adjusted_rand_score(pairs, result.persistent(max_clusters=20)) == 1.0
    assert adjusted_rand_score(pairs, result.excess_of_mass(max_clusters=20)) == 1.0
    assert result.n_clusters[result.plateaus(20)[0]] == 2


def test_weights_pull_the_diffusion():
    # a heavy point drags a light one: condensing with weights equals condensing the repeats
    x = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    weighted = condense(x, weights=np.array([50.0, 1.0, 1.0]))
    repeated = condense(np.repeat(x, [50, 1, 1], axis=0))
    assert np.array_equal(weighted.n_clusters[1:], repeated.n_clusters[1:])


def test_bad_input_is_refused():
    with pytest.raises(ParameterError, match="weights"):
        condense(np.zeros((3, 2)), weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ParameterError, match="growth"):
        condense(np.eye(3), growth=1.0)
    with pytest.raises(ParameterError, match="non-empty"):
        landmarks(np.zeros((0, 3)), 4)


def test_phate_kmeans_on_landmarks_agrees_with_every_pixel():
    from unseg.cluster.diffusion import phate_kmeans
    from unseg.data.synthetic import he_tile

    image, _ = he_tile(128, random_state=0)  # 16,384 pixels
    rng = np.random.default_rng(0)
    x = image.reshape(-1, 3).astype(np.float32) / 255
    x += rng.normal(0, 0.02, x.shape).astype(np.float32)
    dense = phate_kmeans(x, 3, t=20)
    marks = landmarks(x, 1000)
    assert len(marks.centres) == 1000
    marked = phate_kmeans(marks.centres, 3, weights=marks.weights, t=20)[marks.assignment]
    assert adjusted_rand_score(dense, marked) >= 0.9


def test_phate_embedding_finds_the_blobs_and_picks_a_time():
    from unseg.cluster.diffusion import phate_embedding, phate_kmeans

    x, truth = blobs()
    labels = phate_kmeans(x, 4)
    assert adjusted_rand_score(truth, labels) > 0.95
    found = phate_embedding(x, 4)
    assert 1 <= found.t <= 100 and found.coordinates.shape == (600, 4)
    assert found.eigenvalues[0] == pytest.approx(1.0)
    # four blobs the kNN graph does not link: eigenvalue 1 four times, then below
    assert found.eigenvalues[3] > 1 - 1e-9 and found.eigenvalues[4] < 1 - 1e-4
    with pytest.raises(ParameterError, match="components"):
        phate_embedding(x[:3], 3)


def test_the_knee_of_two_lines_is_where_they_meet():
    from unseg.cluster.diffusion import knee, von_neumann_entropy

    curve = np.concatenate([10 - 2.0 * np.arange(6), 0 - 0.1 * np.arange(1, 30)])
    assert knee(curve) == 5
    entropy = von_neumann_entropy(np.array([1.0, 0.9, 0.5, 0.1]), t_max=50)
    assert np.all(np.diff(entropy) <= 1e-12) and entropy[0] > entropy[-1] >= 0
