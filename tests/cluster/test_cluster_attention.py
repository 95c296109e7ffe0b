"""Attention-based clustering: the report's loss terms, networks and recovery of blobs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from unseg.cluster.attention import (
    ARCHITECTURES,
    AttentionClustering,
    abc_loss,
    coverage_loss,
    disjointness_loss,
    fit_abc,
)
from unseg.errors import ParameterError

# 4 segments, 3 clusters: rows sum to 1, 1, 0.2, 0; columns to 1.5, 0.5, 0.2
A = torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0, 0, 0.2], [0, 0, 0]])


def test_coverage_is_three_hinge_terms():
    # rows: mean(0, 0, 0.8, 1) = 0.45; low 0.25 * 4 = 1: mean(0, 0.5, 0.8) = 1.3 / 3;
    # high 0.3 * 4 = 1.2: mean(0.3, 0, 0) = 0.1
    assert float(coverage_loss(A, low=0.25, high=0.3)) == pytest.approx(0.45 + 1.3 / 3 + 0.1)
    assert float(coverage_loss(A, low=0.25, high=None)) == pytest.approx(0.45 + 1.3 / 3)
    assert float(coverage_loss(A, low=0.0, high=1.0)) == pytest.approx(0.45)
    one_hot = torch.eye(3).repeat_interleave(4, dim=0)  # 3 clusters of 4 segments
    assert float(coverage_loss(one_hot, low=1 / 9, high=1 / 3**0.5)) == 0


def test_disjointness_is_the_off_diagonal_sum_of_the_gram_matrix():
    # A^T A has 0.5 * 0.5 = 0.25 at (0, 1) and (1, 0), zeros elsewhere off the diagonal
    assert float(disjointness_loss(A)) == pytest.approx(0.5)
    assert float(disjointness_loss(torch.eye(3).repeat_interleave(4, dim=0))) == 0
    uniform = torch.full((5, 3), 0.5)  # every pair of columns: 5 * 0.25, six pairs
    assert float(disjointness_loss(uniform)) == pytest.approx(6 * 1.25)
    assert float(abc_loss(A, low=0.25, high=0.3)) == pytest.approx(0.45 + 1.3 / 3 + 0.1 + 0.5)


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_networks_re_express_each_segment_alone(architecture):
    torch.manual_seed(0)
    net = AttentionClustering(3, 8, architecture=architecture).eval()
    x = torch.rand(10, 8)
    y = net(x)
    assert y.shape == (10, 8)
    with torch.no_grad():
        assert torch.allclose(net(x[:4]), y[:4], atol=1e-5)  # no attention between segments
        a = net.assignments(x)
    assert a.shape == (10, 3) and float(a.min()) >= 0 and float(a.max()) <= 1 + 1e-6
    if architecture == "identity":
        assert torch.equal(y, x) and [n for n, _ in net.named_parameters()] == ["centres"]
    else:  # layer normalization comes last: every row has mean 0 and unit variance
        assert torch.allclose(y.mean(1), torch.zeros(10), atol=1e-5)
    n_attention = ARCHITECTURES[architecture] or 0
    assert len(net.attention) == n_attention


def _blobs(seed: int = 0, k: int = 2, n: int = 60, dim: int = 64):
    """Well separated Gaussian blobs: centres drawn N(0, 1) in 64 dimensions, spread 0.3."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    x = np.concatenate([c + 0.3 * rng.normal(size=(n, dim)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(k), n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_abc_with_the_report_settings_recovers_blobs_and_is_seeded(seed):
    x, y = _blobs(seed)
    # AdamW 3e-5, one attention + MLP step, ReLU(cos) assignments, raw inputs, centres
    # starting at data rows: random_state=1 draws one row of each blob (rows 56 and 61), and
    # the result separates the blobs; starting both centres in one blob merges them
    # (docs/twostep.md)
    a = fit_abc(x, 2, epochs=300, random_state=1)
    assert adjusted_rand_score(y, a.assign(x)) == 1.0
    rng = np.random.default_rng(5)  # new points of the same blobs
    centres = np.stack([x[:60].mean(0), x[60:].mean(0)])
    new = (np.repeat(centres, 10, 0) + 0.3 * rng.normal(size=(20, 64))).astype(np.float32)
    assert adjusted_rand_score(np.repeat([0, 1], 10), a.assign(new)) == 1.0
    b = fit_abc(x, 2, epochs=300, random_state=1)
    assert np.array_equal(a.centres, b.centres)
    assert all(torch.equal(a.state[key], b.state[key]) for key in a.state)
    assert np.array_equal(a.assign(x), b.assign(x))
    c = fit_abc(x, 2, epochs=300, random_state=2)
    assert not np.array_equal(a.centres, c.centres)
    assert a.mean is None and a.scale is None  # no standardization by default


def test_abc_with_normal_centres_recovers_blobs():
    x, y = _blobs()
    fitted = fit_abc(x, 2, epochs=300, init="normal", random_state=1)
    assert adjusted_rand_score(y, fitted.assign(x)) == 1.0


def test_training_lowers_the_report_loss():
    x, _ = _blobs(seed=1, k=3)
    before = fit_abc(x, 3, epochs=1, random_state=0)
    after = fit_abc(x, 3, epochs=200, random_state=0)

    def loss(fitted):
        with torch.no_grad():
            return float(abc_loss(fitted.network().assignments(torch.from_numpy(x)),
                                  low=1 / 9, high=1 / 3**0.5))

    assert loss(after) < 0.5 * loss(before)


def test_options_standardize_samples_init_and_heads():
    x, _ = _blobs(seed=2, k=3)
    fitted = fit_abc(x, 3, epochs=50, standardize=True, init="normal", heads=2,
                     architecture="2attn-mlp", temperature=0.1)
    assert fitted.mean is not None and fitted.mean.shape == (64,)
    assert np.allclose(fitted.mean, x.mean(0))
    assert fitted.assign(x).shape == (len(x),)
    # samples: the centres start at data rows (standardized), so after no training to speak
    # of each centre is still close to one row
    start = fit_abc(x, 3, epochs=1, lr=1e-12)
    nearest = np.abs(x[:, None] - start.centres[None]).max(2).min(0)
    assert nearest.max() < 1e-4
    with pytest.raises(ParameterError, match="heads"):
        fit_abc(x, 3, heads=5)
    with pytest.raises(ParameterError, match="smaller k"):
        fit_abc(x[:2], 3)
