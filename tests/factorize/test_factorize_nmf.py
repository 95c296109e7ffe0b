from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import nnls
from sklearn.decomposition import NMF

from unseg.errors import ParameterError
from unseg.factorize import _solver, nmf, reconstruction_error


def _low_rank(seed: int, k: int, batch: int = 3, n: int = 80, c: int = 48):
    rng = np.random.default_rng(seed)
    W0, H0 = rng.random((batch, n, k)), rng.random((k, c))
    return W0 @ H0, W0, H0


def _structured(seed: int, n_types: int = 5, side: int = 12, c: int = 40) -> np.ndarray:
    """A feature map of a few tissue types: blocks of distinct spectra, each pixel mixed with a
    little of the others, plus rectified noise; shape (side * side, c)."""
    rng = np.random.default_rng(seed)
    spectra = rng.gamma(0.5, size=(n_types, c))
    labels = rng.integers(0, n_types, size=(4, 4)).repeat(side // 4, 0).repeat(side // 4, 1)
    mix = np.eye(n_types)[labels.ravel()]
    mix = 0.8 * mix + 0.2 * rng.dirichlet(np.ones(n_types), size=len(mix))
    return np.maximum(mix @ spectra + 0.05 * rng.standard_normal((len(mix), c)), 0)


def _sklearn_cd_errors(X: np.ndarray, k: int) -> np.ndarray:
    errors = []
    for x in X:
        model = NMF(k, solver="cd", init="nndsvda", max_iter=200, tol=1e-4, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
            W = model.fit_transform(x)
        errors.append(np.linalg.norm(x - W @ model.components_) / np.linalg.norm(x))
    return np.array(errors)


@pytest.mark.parametrize("k", [2, 4, 6])
def test_exact_low_rank_is_recovered(k):
    X, _, _ = _low_rank(k, k)
    W, H, error = nmf(X, k, max_iter=1000, tol=1e-12, return_error=True)
    assert W.shape == (3, 80, k) and H.shape == (3, k, 48)
    assert (W >= 0).all() and (H >= 0).all()
    assert error.max() < 1e-3
    np.testing.assert_allclose(error, reconstruction_error(X, W, H), rtol=1e-9)


def test_fixed_h_recovers_w():
    X, W0, H0 = _low_rank(7, 5)
    W, H = nmf(X, 5, H=H0, max_iter=3000, tol=1e-14)
    assert H is not H0 and np.array_equal(H, H0)  # given H returned as it was given
    np.testing.assert_allclose(W, W0, atol=1e-5 * W0.max())


@pytest.mark.parametrize("data", ["random", "structured"])
@pytest.mark.parametrize("k", range(2, 9))
def test_matches_or_beats_sklearn_cd(data, k):
    rng = np.random.default_rng(k)
    if data == "random":
        X = rng.random((4, 100, 32))
    else:
        X = np.stack([_structured(10 * k + i) for i in range(4)])
    ours = nmf(X, k, return_error=True)[2]
    assert ours.mean() <= 1.01 * _sklearn_cd_errors(X, k).mean()


@pytest.mark.parametrize("init", ["nndsvd", "nndsvda"])
@pytest.mark.parametrize("shape", [(30, 20), (20, 30)])
def test_nndsvd_start_matches_sklearn(init, shape):
    from sklearn.decomposition._nmf import _initialize_nmf

    X = np.random.default_rng(0).random(shape) ** 3
    W, H = _initialize_nmf(X, 5, init=init, random_state=0)
    Wt, H2 = _solver.nndsvd(torch.from_numpy(X)[None], 5, fill_mean=init == "nndsvda")
    # sklearn uses a randomized SVD and zeroes entries below 1e-6: equal up to those
    np.testing.assert_allclose(Wt[0].T.numpy() @ H2[0].numpy(), W @ H, atol=1e-3 * X.max())
    np.testing.assert_allclose(np.sort(Wt[0].numpy().T, 0), np.sort(W, 0), atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("init", ["nndsvda", "nndsvd", "random"])
def test_batch_equals_items_one_at_a_time(dtype, init):
    X = np.stack([_structured(i) for i in range(5)]).astype(dtype)
    X[2] *= 10  # items of different scales converge at different iterations
    W, H = nmf(X, 4, init=init)
    for b in range(len(X)):
        W1, H1 = nmf(X[b], 4, init=init)
        scale = np.abs(X[b]).max()
        np.testing.assert_allclose(W1 @ H1, W[b] @ H[b], atol=1e-4 * scale)
        np.testing.assert_allclose(W1, W[b], rtol=1e-3, atol=1e-4 * W1.max())


def test_fixed_h_equals_scipy_nnls_per_row():
    rng = np.random.default_rng(3)
    X = rng.random((3, 30, 20))
    H = rng.random((6, 20))
    W, _ = nmf(X, 6, H=H, max_iter=5000, tol=1e-15)
    expected = np.stack([np.stack([nnls(H.T, row)[0] for row in x]) for x in X])
    assert (expected == 0).mean() > 0.1  # the constraints are active: this is not plain LS
    np.testing.assert_allclose(W, expected, atol=1e-5)


def test_fixed_h_shared_and_per_item_agree():
    rng = np.random.default_rng(4)
    X, H = rng.random((2, 30, 20)), rng.random((5, 20))
    W_shared, H_shared = nmf(X, 5, H=H)
    W_items, H_items = nmf(X, 5, H=np.stack([H, H]))
    assert H_shared.shape == (5, 20) and H_items.shape == (2, 5, 20)
    np.testing.assert_allclose(W_shared, W_items, rtol=1e-10, atol=1e-12)


def test_fixed_h_with_a_zero_component():
    rng = np.random.default_rng(5)
    X, H = rng.random((2, 30, 8)), rng.random((4, 8))
    H[2] = 0  # a concept that explains nothing gets no weight
    W, _ = nmf(X, 4, H=H, max_iter=2000, tol=1e-12)
    assert np.all(W[..., 2] == 0)
    expected = np.stack([np.stack([nnls(H.T, row)[0] for row in x]) for x in X])
    np.testing.assert_allclose(W, expected, atol=1e-6)


def test_numpy_in_numpy_out_and_torch_in_torch_out():
    X = np.stack([_structured(i) for i in range(2)]).astype(np.float32)
    W, H, error = nmf(X, 3, return_error=True)
    assert isinstance(W, np.ndarray) and W.dtype == np.float32 and W.shape == (2, 144, 3)
    assert isinstance(H, np.ndarray) and H.dtype == np.float32 and H.shape == (2, 3, 40)
    assert isinstance(error, np.ndarray) and error.shape == (2,)
    for dtype in (torch.float32, torch.float64):
        Wt, Ht, et = nmf(torch.from_numpy(X).to(dtype), 3, return_error=True)
        assert all(isinstance(t, torch.Tensor) and t.dtype == dtype for t in (Wt, Ht, et))
        np.testing.assert_allclose(et.numpy(), error, rtol=1e-2)
    W1, H1, e1 = nmf(X[0], 3, return_error=True)
    assert W1.shape == (144, 3) and H1.shape == (3, 40) and isinstance(e1, float)


def test_single_item_error_of_a_tensor_is_0d():
    X = torch.from_numpy(_structured(0))
    W, H, error = nmf(X, 3, return_error=True)
    assert W.shape == (144, 3) and H.shape == (3, 40) and error.shape == ()
    assert float(error) == pytest.approx(float(reconstruction_error(X, W, H)), rel=1e-12)


def test_float64_is_kept_and_precise():
    X, _, _ = _low_rank(2, 3)
    W, H = nmf(torch.from_numpy(X), 3, max_iter=1000, tol=1e-12)
    assert W.dtype == torch.float64 and H.dtype == torch.float64
    assert reconstruction_error(torch.from_numpy(X), W, H).max() < 1e-6


def test_feature_map_view_gives_the_same_result():
    # (B, C, h, w) -> (B, h*w, C) is a non-contiguous view; it must not change the result
    fmap = torch.from_numpy(np.stack([_structured(i) for i in range(2)])).transpose(1, 2)
    fmap = fmap.reshape(2, 40, 12, 12).contiguous()
    view = fmap.flatten(2).transpose(1, 2)
    W, H = nmf(view, 4)
    W2, H2 = nmf(view.contiguous(), 4)
    torch.testing.assert_close(W @ H, W2 @ H2)


def test_deterministic_and_seeded():
    X = np.stack([_structured(i) for i in range(2)])
    for init in ("nndsvda", "random"):
        W1, H1 = nmf(X, 4, init=init, random_state=5)
        W2, H2 = nmf(X, 4, init=init, random_state=5)
        assert np.array_equal(W1, W2) and np.array_equal(H1, H2)
    W3, _ = nmf(X, 4, init="random", random_state=6)
    assert not np.allclose(W1, W3)
    W4, _ = nmf(X, 4, init="random", random_state=None)
    W5, _ = nmf(X, 4, init="random", random_state=None)
    assert not np.allclose(W4, W5)  # None: a fresh seed per call


def test_tol_and_max_iter_are_respected():
    X = np.stack([_structured(i) for i in range(3)])
    one = nmf(X, 5, max_iter=1, return_error=True)[2]
    loose = nmf(X, 5, tol=0.1, return_error=True)[2]
    tight = nmf(X, 5, tol=1e-8, max_iter=1000, return_error=True)[2]
    assert (tight < loose).all() and (loose < one).all()


def test_round_off_negatives_are_clipped_and_zero_items_work():
    X = np.stack([_structured(0), np.zeros((144, 40))])
    X[0, 0, 0] = -1e-9
    W, H, error = nmf(X, 3, return_error=True)
    assert (W >= 0).all() and (H >= 0).all()
    assert error[1] == 0 and np.all(W[1] @ H[1] == 0)


def test_reconstruction_error_against_numpy():
    rng = np.random.default_rng(0)
    X, W, H = rng.random((3, 10, 6)), rng.random((3, 10, 2)), rng.random((2, 6))
    expected = [np.linalg.norm(x - w @ H) / np.linalg.norm(x) for x, w in zip(X, W, strict=True)]
    np.testing.assert_allclose(reconstruction_error(X, W, H), expected, rtol=1e-12)
    assert reconstruction_error(X[0], W[0], H) == pytest.approx(expected[0], rel=1e-12)
    batched_H = np.stack([H] * 3)
    np.testing.assert_allclose(reconstruction_error(X, W, batched_H), expected, rtol=1e-12)


X4 = np.random.default_rng(0).random((2, 10, 6))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: nmf(X4[0, 0], 2), r"\(N, C\) or a batch"),
        (lambda: nmf(X4[None], 2), r"\(N, C\) or a batch"),
        (lambda: nmf(X4[:, :0], 2), "empty"),
        (lambda: nmf(X4.tolist(), 2), "NumPy array or a torch tensor, got list"),
        (lambda: nmf(X4.astype(np.int64), 2), "float32 or float64"),
        (lambda: nmf(torch.ones(4, 3, dtype=torch.float16), 2), "float32 or float64"),
        (lambda: nmf(-X4 - 0.1, 2), "non-negative"),
        (lambda: nmf(np.where(X4 > 0.5, np.nan, X4), 2), "NaN"),
        (lambda: nmf(X4, 0), "n_components must be an integer >= 1"),
        (lambda: nmf(X4, 2.0), "n_components must be an integer"),
        (lambda: nmf(X4, 7), r"at most min\(N, C\) = 6 in free mode"),
        (lambda: nmf(X4, 2, init="svd"), "init must be one of"),
        (lambda: nmf(X4, 2, max_iter=0), "max_iter"),
        (lambda: nmf(X4, 2, tol=-1.0), "tol"),
        (lambda: nmf(X4, 2, random_state=-1), "random_state"),
        (lambda: nmf(X4, 2, random_state="0"), "random_state"),
        (lambda: nmf(X4, 3, H=np.ones((2, 6))), r"n_components \(3\) must equal"),
        (lambda: nmf(X4, 2, H=np.ones((2, 5))), "C = 6"),
        (lambda: nmf(X4, 2, H=np.ones((3, 2, 6))), "B = 2"),
        (lambda: nmf(X4, 2, H=-np.ones((2, 6))), "H must be non-negative"),
        (lambda: nmf(X4, 2, H=torch.ones(2, 6, dtype=torch.float64)), "H is a torch tensor"),
        (lambda: reconstruction_error(X4, X4[..., :2], np.ones((3, 6))), "do not fit"),
        (lambda: reconstruction_error(X4, X4[0, :, :2], np.ones((2, 6))), "expected X"),
        (lambda: reconstruction_error(X4, torch.ones(2, 10, 2), np.ones((2, 6))), "all"),
    ],
)
def test_parameter_errors(call, match):
    with pytest.raises(ParameterError, match=match):
        call()


def test_fixed_h_on_another_device_is_refused():
    X = torch.ones(4, 3)
    H = torch.ones(2, 3, device="meta")
    with pytest.raises(ParameterError, match="H is on meta"):
        nmf(X, 2, H=H)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_stays_on_device_and_matches_cpu():
    X = torch.from_numpy(np.stack([_structured(i) for i in range(4)])).float()
    W, H, error = nmf(X.cuda(), 4, return_error=True)
    assert W.is_cuda and H.is_cuda and error.is_cuda and W.dtype == torch.float32
    W_cpu, H_cpu, error_cpu = nmf(X, 4, return_error=True)
    torch.testing.assert_close(error.cpu(), error_cpu, rtol=1e-2, atol=1e-4)
    W_fixed, _ = nmf(X.cuda(), 4, H=H_cpu[0].numpy())
    assert W_fixed.is_cuda


def test_more_factors_than_the_features_carry_stay_finite(shared_data: Path) -> None:
    # a glass-heavy H&E patch: its default-backbone features have about ten directions of any
    # size, so with 20 factors some rows of W vanish to subnormal values during the solve;
    # dividing by their squared norm overflowed and made every factor NaN
    from unseg import backbones
    from unseg.io import read_image

    image = read_image(shared_data / "wsss4luad-val" / "img" / "24.png")[:496, :320]
    x = backbones.create("default").features(image[None]).flatten(2).transpose(1, 2)
    W, H, error = nmf(x, 20, return_error=True)
    assert torch.isfinite(W).all() and torch.isfinite(H).all()
    assert float(error[0]) < float(nmf(x, 16, return_error=True)[2][0])
