"""Joint factorization of a batch: Deep Feature Factorization's co-segmentation (Collins,
Achanta & Süsstrunk, ECCV 2018).

All pixels of a batch are factorized together, so the ``k`` components (concepts) are shared by
the images and a component means the same thing in each of them. (The ``dff`` method factorizes
each image alone, DFF's single-image case, with :func:`unseg.factorize.nmf`.)
"""

from __future__ import annotations

from typing import Any

from unseg.errors import ParameterError
from unseg.factorize.nmf import Array, nmf


def joint_nmf(X: Array, n_components: int, **nmf_kwargs: Any) -> tuple[Any, ...]:
    """One NMF over the ``B * N`` pixels of a batch; concepts shared by its images.

    Parameters
    ----------
    X : numpy.ndarray or torch.Tensor, shape (B, N, C)
        Non-negative features of B images (``N = h * w`` pixels each).
    n_components : int
        ``k``, the number of shared concepts; at most ``min(B * N, C)``.
    **nmf_kwargs
        Passed to :func:`unseg.factorize.nmf` (``init``, ``max_iter``, ``tol``,
        ``random_state``, ``return_error``, or a fixed ``H`` of shape (k, C)).

    Returns
    -------
    W : same type as X, shape (B, N, k)
        The concept weights of each pixel, split back per image.
    H : same type as X, shape (k, C)
        The concepts.
    error : float or 0-d tensor
        Only with ``return_error=True``: the relative error over the whole batch.

    Raises
    ------
    ParameterError
        X not 3-D, or any error of :func:`unseg.factorize.nmf`.
    """
    if getattr(X, "ndim", None) != 3:
        shape = tuple(X.shape) if hasattr(X, "shape") else type(X).__name__
        raise ParameterError(
            f"joint_nmf: X must be a batch of features (B, N, C), got {shape}. "
            "Fix: stack the images' (N, C) features, or call nmf for one image."
        )
    B, N, C = X.shape
    W, H, *error = nmf(X.reshape(B * N, C), n_components, **nmf_kwargs)
    return (W.reshape(B, N, W.shape[-1]), H, *error)
