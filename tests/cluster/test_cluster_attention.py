"""Attention-based clustering: its loss terms and recovery of separated clusters."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from unseg.cluster.attention import abc_loss, fit_abc


def test_size_term_is_zero_within_the_bounds_only():
    one_hot = torch.eye(4).repeat_interleave(5, dim=0)  # 4 clusters of 5 points
    cos = torch.ones(20, 4)
    balanced = abc_loss(one_hot, cos, low=0.1, high=0.5, weights=(0, 0, 1))
    assert float(balanced) == 0
    collapsed = torch.zeros(20, 4)
    collapsed[:, 0] = 1
    assert float(abc_loss(collapsed, cos, low=0.1, high=0.5, weights=(0, 0, 1))) > 0.5
    # disjointness: a hard assignment has none, a uniform one has the most
    assert float(abc_loss(one_hot, cos, low=0, high=1, weights=(0, 1, 0))) == 0
    uniform = torch.full((20, 4), 0.25)
    assert float(abc_loss(uniform, cos, low=0, high=1, weights=(0, 1, 0))) == 0.75


def test_abc_separates_clusters_and_is_seeded():
    rng = np.random.default_rng(0)
    directions = np.eye(6, dtype=np.float32)[:3] * 4
    x = np.concatenate([d + 0.3 * rng.normal(size=(50, 6)) for d in directions]).astype(np.float32)
    y = np.repeat([0, 1, 2], 50)
    a = fit_abc(x, 3, epochs=60, batch_size=150, random_state=0)
    b = fit_abc(x, 3, epochs=60, batch_size=150, random_state=0)
    assert np.array_equal(a.centres, b.centres)
    assert adjusted_rand_score(y, a.assign(x)) > 0.9
