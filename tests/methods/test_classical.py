"""Known answers for the classical baselines on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from unseg import methods
from unseg.data.synthetic import blobs, quadrants


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of pixels whose region's majority class is their class."""
    total = 0
    for region in np.unique(labels):
        counts = np.bincount(truth[labels == region])
        total += counts.max()
    return total / labels.size


def test_random_is_uniform_and_seeded() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    labels = methods.create("random", k=5, random_state=3).predict(image)
    assert set(np.unique(labels)) == set(range(5))
    assert np.allclose(np.bincount(labels.ravel()) / labels.size, 0.2, atol=0.02)
    other = methods.create("random", k=5, random_state=4).predict(image)
    assert not np.array_equal(labels, other)


def test_kmeans_color_recovers_flat_colour_quadrants() -> None:
    image, truth = quadrants(size=64, random_state=0)
    labels = methods.create("kmeans-color", k=4).predict(image)
    assert len(np.unique(labels)) == 4
    assert purity(labels, truth) == 1.0


def test_kmeans_color_orders_labels_dark_to_light() -> None:
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, 10:] = 250
    labels = methods.create("kmeans-color", k=2).predict(image)
    assert (labels[:, :10] == 0).all() and (labels[:, 10:] == 1).all()


def test_kmeans_color_dataset_labels_are_consistent_across_images() -> None:
    a, truth_a = quadrants(size=64, random_state=0)
    b, truth_b = np.rot90(a).copy(), np.rot90(truth_a).copy()
    segmenter = methods.create("kmeans-color-dataset", k=4).fit([a, b])
    la, lb = segmenter.predict(a), segmenter.predict(b)
    for cls in range(4):
        assert len(np.unique(la[truth_a == cls])) == 1
        assert np.unique(la[truth_a == cls]) == np.unique(lb[truth_b == cls])


def test_watershed_separates_dark_blobs() -> None:
    image, truth = blobs(size=128, n_blobs=6, random_state=0)
    labels = methods.create("watershed", foreground="dark", min_distance=5).predict(image)
    fg = labels > 0
    dice = 2 * (fg & (truth == 1)).sum() / (fg.sum() + (truth == 1).sum())
    assert dice > 0.9
    assert len(np.unique(labels)) - 1 >= 3


def test_watershed_on_a_flat_image_gives_background_only() -> None:
    labels = methods.create("watershed").predict(np.full((20, 20, 3), 128, np.uint8))
    assert (labels == 0).all()


@pytest.mark.parametrize("name", ["felzenszwalb", "slic"])
def test_superpixels_respect_colour_edges(name: str) -> None:
    image, truth = quadrants(size=64, random_state=0)
    labels = methods.create(name).predict(image)
    assert len(np.unique(labels)) >= 4
    assert purity(labels, truth) > 0.95  # smoothing may move a boundary by a pixel
