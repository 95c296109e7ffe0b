from __future__ import annotations

import numpy as np
import pytest
import torch

from unseg.errors import ParameterError
from unseg.factorize import joint_nmf, nmf


def _features(batch: int = 3, n: int = 49, c: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    concepts = rng.gamma(0.5, size=(4, c))
    weights = rng.dirichlet(np.full(4, 0.3), size=(batch, n))
    return weights @ concepts + 0.01 * rng.random((batch, n, c))


def test_joint_nmf_shapes_and_shared_concepts():
    X = _features()
    W, H = joint_nmf(X, 4)
    assert W.shape == (3, 49, 4) and H.shape == (4, 24)
    # each image is explained by the shared concepts with its own slice of W
    for b in range(3):
        assert np.linalg.norm(X[b] - W[b] @ H) / np.linalg.norm(X[b]) < 0.1


def test_joint_nmf_equals_nmf_on_the_concatenated_pixels():
    X = _features()
    W, H, error = joint_nmf(X, 4, random_state=1, return_error=True)
    W_all, H_all, error_all = nmf(X.reshape(-1, 24), 4, random_state=1, return_error=True)
    np.testing.assert_array_equal(W.reshape(-1, 4), W_all)
    np.testing.assert_array_equal(H, H_all)
    assert error == error_all
    # pixel p of image b is row b * N + p of the joint problem
    np.testing.assert_array_equal(W[1, 5], W_all[49 + 5])


def test_joint_nmf_keeps_tensors_and_accepts_fixed_concepts():
    X = torch.from_numpy(_features()).float()
    W, H = joint_nmf(X, 4)
    assert isinstance(W, torch.Tensor) and W.shape == (3, 49, 4) and W.dtype == torch.float32
    W_fixed, H_fixed = joint_nmf(X, 4, H=H)
    assert W_fixed.shape == (3, 49, 4) and torch.equal(H_fixed, H)


@pytest.mark.parametrize("X", [np.ones((49, 24)), [[1.0]], np.ones((1, 2, 3, 4))])
def test_joint_nmf_needs_a_batch(X):
    with pytest.raises(ParameterError, match=r"joint_nmf: X must be a batch of features"):
        joint_nmf(X, 2)
