"""Non-negative matrix factorization of feature maps, one image or a batch at a time.

``X (N, C) ~ W (N, k) @ H (k, C)`` with ``W, H >= 0``, minimising the Frobenius norm of the
residual. Free mode solves both factors; fixed-H mode (``H`` given, e.g. the centres of a concept
bank) solves ``W`` alone, a non-negative least-squares problem per row.

The solver is HALS (hierarchical alternating least squares: exact cyclic updates of one row of a
factor at a time, the coordinate descent of scikit-learn's ``solver="cd"``) with three sweeps per
factor update and extrapolation with restarts between outer iterations. A batch advances through
batched tensor products; each item stops at its own convergence, so its result does not depend
on the batch it is in.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Literal, overload

import numpy as np
import torch

from unseg.errors import ParameterError
from unseg.factorize import _solver

Array = np.ndarray | torch.Tensor

INITS = ("nndsvda", "nndsvd", "random")
# Entries above -NEGATIVE_TOLERANCE * max|X| are float round-off and are clipped to zero.
NEGATIVE_TOLERANCE = 1e-6


@overload
def nmf(
    X: torch.Tensor, n_components: int, *, H: Array | None = ..., init: str = ...,
    max_iter: int = ..., tol: float = ..., random_state: int | None = ...,
    return_error: Literal[False] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...
@overload
def nmf(
    X: np.ndarray, n_components: int, *, H: Array | None = ..., init: str = ...,
    max_iter: int = ..., tol: float = ..., random_state: int | None = ...,
    return_error: Literal[False] = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def nmf(
    X: Array, n_components: int, *, H: Array | None = ..., init: str = ...,
    max_iter: int = ..., tol: float = ..., random_state: int | None = ...,
    return_error: Literal[True],
) -> tuple[Array, Array, Array | float]: ...
def nmf(
    X: Array,
    n_components: int,
    *,
    H: Array | None = None,
    init: str = "nndsvda",
    max_iter: int = 200,
    tol: float = 1e-4,
    random_state: int | None = 0,
    return_error: bool = False,
) -> tuple[Array, Array] | tuple[Array, Array, Array | float]:
    """Factorize ``X ~ W @ H`` with non-negative factors, per item of a batch.

    Parameters
    ----------
    X : numpy.ndarray or torch.Tensor, shape (N, C) or (B, N, C)
        Non-negative data (for a feature map: ``N = h * w`` pixels, ``C`` channels), float32 or
        float64. A tensor is processed on its device in its dtype; an array on the CPU.
        Negative entries above ``-1e-6 * max|X|`` (round-off) are clipped to zero.
    n_components : int
        ``k``, the number of components; at most ``min(N, C)`` in free mode. In fixed-H mode it
        must equal the number of rows of ``H``.
    H : numpy.ndarray or torch.Tensor, shape (k, C) or (B, k, C), optional
        Fixed components: only ``W`` is solved (non-negative least squares of each row of ``X``
        on the rows of ``H``). A ``(k, C)`` H is shared by the whole batch. It is cast to the
        dtype of ``X``; a tensor must be on the device of ``X``, and an array ``X`` needs an
        array ``H``.
    init : {"nndsvda", "nndsvd", "random"}
        Start of the free mode. ``nndsvda``: NNDSVD from an exact SVD, zeros set to the mean of
        ``X`` (the default, as good for dense features); ``nndsvd``: zeros kept (sparser);
        ``random``: ``|N(0, 1)|`` entries scaled by ``sqrt(mean(X) / k)``, seeded by
        ``random_state``. Fixed-H mode always starts from ``W = 0``.
    max_iter : int
        Maximum number of iterations: in free mode one iteration updates W then H (three HALS
        sweeps each); in fixed-H mode it is one HALS sweep over the k columns of W.
    tol : float
        An item stops when its loss ``||X - W H||_F^2`` changes by at most ``tol`` (relative) per
        iteration, on average over the last 5 iterations. In fixed-H mode the loss settles
        before W does when the rows of H are strongly correlated (concept-bank centres): use
        ``tol=1e-7`` or smaller where W itself must be accurate.
    random_state : int or None
        Seed of the random initialisation (nothing else is random): the same inputs give the
        same output. None draws a fresh seed, so ``init="random"`` then differs call to call.
    return_error : bool
        Also return the relative error ``||X - W H||_F / ||X||_F`` of each item.

    Returns
    -------
    W : same type as X, shape (N, k) or (B, N, k)
    H : same type as X, shape (k, C) or (B, k, C)
        In fixed-H mode, the given H (converted to the type, device and dtype of X).
    error : float, or same type as X with shape (B,)
        Only with ``return_error``: see :func:`reconstruction_error`.

    Raises
    ------
    ParameterError
        Wrong types, dimensions or shapes, negative or non-finite entries, ``n_components``
        out of range, unknown ``init``, or ``max_iter``/``tol``/``random_state`` out of range.
    """
    Xt, is_numpy = _as_tensor(X, "X")
    single = Xt.ndim == 2
    if Xt.ndim not in (2, 3):
        raise ParameterError(
            f"nmf: X must be (N, C) or a batch (B, N, C), got shape {tuple(Xt.shape)}. "
            "Fix: reshape a feature map (B, C, h, w) with x.flatten(2).transpose(1, 2)."
        )
    if Xt.numel() == 0:
        raise ParameterError(f"nmf: X is empty, shape {tuple(Xt.shape)}. Fix: pass data.")
    k = _check_int(n_components, "n_components", 1)
    _check_int(max_iter, "max_iter", 1)
    if random_state is not None:
        _check_int(random_state, "random_state", 0)
    if isinstance(tol, bool) or not isinstance(tol, Real) or not 0 <= tol < 1:
        raise ParameterError(
            f"nmf: tol must be a number in [0, 1), got {tol!r}. Fix: use e.g. 1e-4."
        )
    if init not in INITS:
        raise ParameterError(
            f"nmf: init must be one of {', '.join(INITS)}, got {init!r}. Fix: use 'nndsvda'."
        )
    with torch.no_grad():
        X3 = _non_negative(Xt[None] if single else Xt, "X")
        _, N, C = X3.shape
        if H is None:
            if k > min(N, C):
                raise ParameterError(
                    f"nmf: n_components must be at most min(N, C) = {min(N, C)} in free mode "
                    f"(X has N = {N} rows, C = {C} columns), got {k}. Fix: use fewer "
                    "components, or give H to solve W only."
                )
            Wt, H3 = _solver.solve_free(X3, k, init, max_iter, float(tol), random_state)
        else:
            H3 = _fixed_components(H, X3, k, is_numpy)
            Wt = _solver.solve_fixed(X3, H3, max_iter, float(tol))
        W = Wt.transpose(1, 2).contiguous()
        error = _relative_error(X3, W, H3) if return_error else None
    # H follows X in free mode and keeps the shape it was given in fixed-H mode
    if H is None:
        H_out = H3[0] if single else H3
    else:
        H_out = H3 if H.ndim == 3 else H3[0]
    result: list[Any] = [W[0] if single else W, H_out]
    if error is not None:
        result.append(error[0] if single else error)
    return tuple(_to_output(r, is_numpy) for r in result)  # type: ignore[return-value]


def reconstruction_error(X: Array, W: Array, H: Array) -> Array | float:
    """Relative Frobenius error ``||X - W H||_F / ||X||_F`` of each item.

    Parameters
    ----------
    X : numpy.ndarray or torch.Tensor, shape (N, C) or (B, N, C)
    W : same type as X, shape (N, k) or (B, N, k)
    H : same type as X, shape (k, C), or (B, k, C) for a batch
        A ``(k, C)`` H is shared by the batch.

    Returns
    -------
    float for a single X (a 0-d tensor for a tensor X), else ``(B,)`` of the type of X. An
    all-zero item has error 0 if ``W H`` is zero too, else ``inf``.

    Raises
    ------
    ParameterError
        Mixed array types, or shapes that do not fit together.
    """
    Xt, is_numpy = _as_tensor(X, "X")
    Wt, w_numpy = _as_tensor(W, "W")
    Ht, h_numpy = _as_tensor(H, "H")
    if not is_numpy == w_numpy == h_numpy:
        raise ParameterError(
            "reconstruction_error: X, W and H must all be NumPy arrays or all torch tensors. "
            "Fix: convert them to one type."
        )
    if Xt.ndim not in (2, 3) or Wt.ndim != Xt.ndim or Ht.ndim not in (2, Xt.ndim):
        raise ParameterError(
            f"reconstruction_error: expected X (N, C) with W (N, k), H (k, C), or X (B, N, C) "
            f"with W (B, N, k) and H (k, C) or (B, k, C); got X {tuple(Xt.shape)}, "
            f"W {tuple(Wt.shape)}, H {tuple(Ht.shape)}. Fix: pass matching shapes."
        )
    single = Xt.ndim == 2
    X3, W3 = (Xt[None], Wt[None]) if single else (Xt, Wt)
    fits = (
        W3.shape[:2] == X3.shape[:2]
        and Ht.shape[-2] == W3.shape[2]
        and Ht.shape[-1] == X3.shape[2]
        and (Ht.ndim == 2 or len(Ht) == len(X3))
    )
    if not fits:
        raise ParameterError(
            f"reconstruction_error: shapes do not fit X ~ W @ H: X {tuple(Xt.shape)}, "
            f"W {tuple(Wt.shape)}, H {tuple(Ht.shape)}. Fix: W must be (..., N, k) and H "
            "(..., k, C) for X (..., N, C)."
        )
    if W3.device != X3.device or Ht.device != X3.device:
        raise ParameterError(
            f"reconstruction_error: X, W and H must be on one device, got {X3.device}, "
            f"{W3.device} and {Ht.device}. Fix: move them with .to(device)."
        )
    dtype = torch.promote_types(torch.promote_types(X3.dtype, W3.dtype), Ht.dtype)
    with torch.no_grad():
        error = _relative_error(X3.to(dtype), W3.to(dtype), Ht.to(dtype))
    return _to_output(error[0] if single else error, is_numpy)


def _relative_error(X: torch.Tensor, W: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``(B,)`` relative Frobenius errors of ``X (B, N, C)`` by ``W (B, N, k) @ H``."""
    residual = torch.linalg.matrix_norm(X - W @ H)
    norm = torch.linalg.matrix_norm(X)
    zero = norm == 0
    ratio = residual / torch.where(zero, torch.ones_like(norm), norm)
    # an all-zero item: exact (0) if W H is zero too, else infinitely wrong
    return torch.where(zero, torch.where(residual == 0, 0.0, float("inf")).to(norm), ratio)


def _as_tensor(value: Any, name: str) -> tuple[torch.Tensor, bool]:
    """A float32/float64 array or tensor as a tensor (no copy where possible); and whether it
    was a NumPy array."""
    if isinstance(value, torch.Tensor):
        if value.dtype not in (torch.float32, torch.float64):
            raise ParameterError(
                f"{name} must be float32 or float64, got a tensor of {value.dtype}. "
                f"Fix: pass {name}.float()."
            )
        return value, False
    if isinstance(value, np.ndarray):
        if value.dtype not in (np.float32, np.float64):
            raise ParameterError(
                f"{name} must be float32 or float64, got an array of {value.dtype}. "
                f"Fix: pass {name}.astype(np.float32)."
            )
        if not value.flags.writeable or any(s < 0 for s in value.strides):
            value = value.copy()  # torch cannot share read-only or reversed memory
        return torch.from_numpy(value), True
    raise ParameterError(
        f"{name} must be a NumPy array or a torch tensor, got {type(value).__name__}. "
        f"Fix: pass np.asarray({name}, dtype=np.float32)."
    )


def _non_negative(X: torch.Tensor, name: str) -> torch.Tensor:
    """``X`` with round-off negatives clipped; a ParameterError for real negatives or non-finite
    entries."""
    if not bool(torch.isfinite(X).all()):
        raise ParameterError(
            f"nmf: {name} has NaN or infinite entries. Fix: clean the input "
            f"(e.g. torch.nan_to_num)."
        )
    low = float(X.min())
    if low >= 0:
        return X
    scale = float(X.abs().max())
    if low < -NEGATIVE_TOLERANCE * scale:
        raise ParameterError(
            f"nmf: {name} must be non-negative, got a minimum of {low:.3g} (max |{name}| = "
            f"{scale:.3g}). Fix: take features after a ReLU, or shift/clip them yourself."
        )
    return X.clamp_min(0)


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ParameterError(
            f"nmf: {name} must be an integer >= {low}, got {value!r}. "
            f"Fix: pass an int of at least {low}."
        )
    return int(value)


def _fixed_components(H: Any, X: torch.Tensor, k: int, x_numpy: bool) -> torch.Tensor:
    """Validated fixed components as ``(1 or B, k, C)`` on the device and in the dtype of X."""
    Ht, h_numpy = _as_tensor(H, "H")
    if x_numpy and not h_numpy:
        raise ParameterError(
            "nmf: X is a NumPy array but H is a torch tensor. Fix: pass H.cpu().numpy(), or X "
            "as a tensor."
        )
    if not h_numpy and Ht.device != X.device:
        raise ParameterError(
            f"nmf: H is on {Ht.device} but X is on {X.device}. Fix: pass H.to(X.device)."
        )
    B, _, C = X.shape
    if Ht.ndim not in (2, 3) or Ht.shape[-1] != C or (Ht.ndim == 3 and len(Ht) != B):
        raise ParameterError(
            f"nmf: H must be (k, C) or (B, k, C) with C = {C} and B = {B} (from X), got shape "
            f"{tuple(Ht.shape)}. Fix: use components of the same feature space as X."
        )
    if Ht.shape[-2] != k:
        raise ParameterError(
            f"nmf: n_components ({k}) must equal the number of rows of H ({Ht.shape[-2]}). "
            f"Fix: pass n_components={Ht.shape[-2]}."
        )
    Ht = _non_negative(Ht.to(device=X.device, dtype=X.dtype), "H")
    return Ht[None] if Ht.ndim == 2 else Ht


def _to_output(value: torch.Tensor, is_numpy: bool) -> Array | float:
    if not is_numpy:
        return value
    if value.ndim == 0:
        return float(value)
    return value.cpu().numpy()
