"""Matching predicted clusters to ground-truth classes from a confusion matrix."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

from unseg.errors import ParameterError

MATCH_METHODS = (
    "hungarian", "majority", "majority-normalized", "identity", "foreground", "best-iou",
)
"""Names accepted by :func:`match`."""


def check_match_method(method: str) -> None:
    """Raise :class:`ParameterError` unless ``method`` is one of :data:`MATCH_METHODS`."""
    if method not in MATCH_METHODS:
        raise ParameterError(
            f"match must be one of {', '.join(MATCH_METHODS)}; received {method!r}. "
            "Fix: pick one of those names."
        )


def as_confusion(confusion: ArrayLike) -> NDArray:
    """Return ``confusion`` as a 2-D array of non-negative counts, or raise ParameterError."""
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or 0 in confusion.shape:
        raise ParameterError(
            "confusion must be a non-empty 2-D (clusters, classes) matrix; received shape "
            f"{confusion.shape}. Fix: build it with unseg.eval.confusion_matrix."
        )
    if not np.issubdtype(confusion.dtype, np.number) or (confusion < 0).any():
        raise ParameterError(
            "confusion must hold non-negative pixel counts; received a matrix of dtype "
            f"{confusion.dtype} that does not. Fix: build it with unseg.eval.confusion_matrix."
        )
    return confusion


def match(confusion: ArrayLike, method: str) -> NDArray[np.int64]:
    """Map each predicted cluster to a ground-truth class.

    Parameters
    ----------
    confusion : array_like, shape (K, C)
        Pixel counts, rows = clusters, columns = classes (:func:`confusion_matrix`).
    method : {"hungarian", "majority", "majority-normalized", "identity", "foreground", "best-iou"}
        ``"hungarian"``: one-to-one assignment maximising the matched pixel count
        (:func:`scipy.optimize.linear_sum_assignment`); with ``K > C`` the ``K - C`` clusters
        left over are unmatched. ``"majority"``: each cluster to its most frequent class
        (many-to-one). ``"majority-normalized"``: each column is first divided by its class's
        pixel total, then each cluster goes to its largest entry, so a small class can win a
        cluster it covers well. Ties go to the smallest class id. ``"identity"``: the
        predictions are class ids already (from a probe trained with labels): cluster ``k`` is
        class ``k``, and ids with no class are unmatched. ``"foreground"``: the binary protocol
        of CUTS, guided by the ground truth: the one cluster with the most pixels of class 1
        is the foreground (class 1), every other cluster is class 0. ``"best-iou"``: the
        one-to-one assignment maximising the sum of the matched pairs' IoU, ``M[k, c] /
        (row_k + column_c - M[k, c])``, so the mapping with the highest mIoU; with scope
        ``"image"`` its per-image mean mIoU is the protocol of the CIRS thesis.

    Returns
    -------
    ndarray of int64, shape (K,)
        Class id of each cluster, -1 where unmatched. Under the majority methods a cluster
        with no pixels is unmatched; under ``"hungarian"`` it is unmatched only if the
        assignment leaves it out.

    Raises
    ------
    ParameterError
        If ``method`` is unknown, ``confusion`` is not a 2-D matrix of counts, or
        ``"foreground"`` is asked for with more than two classes.
    """
    check_match_method(method)
    confusion = as_confusion(confusion)
    mapping = np.full(confusion.shape[0], -1, dtype=np.int64)
    if method == "foreground":
        if confusion.shape[1] > 2:
            raise ParameterError(
                "match 'foreground' is for binary ground truth (classes 0 and 1); received "
                f"{confusion.shape[1]} classes. Fix: use hungarian or majority matching."
            )
        mapping[:] = 0
        if confusion.shape[1] == 2 and confusion[:, 1].any():
            mapping[int(np.argmax(confusion[:, 1]))] = 1
        return mapping
    if method == "identity":
        ids = np.arange(confusion.shape[0])
        return np.where(ids < confusion.shape[1], ids, -1).astype(np.int64)
    if method == "hungarian":
        rows, cols = linear_sum_assignment(confusion, maximize=True)
        mapping[rows] = cols
        return mapping
    if method == "best-iou":
        counts = confusion.astype(np.float64)
        union = counts.sum(axis=1, keepdims=True) + counts.sum(axis=0, keepdims=True) - counts
        iou = np.divide(counts, union, out=np.zeros_like(counts), where=union > 0)
        rows, cols = linear_sum_assignment(iou, maximize=True)
        mapping[rows] = cols
        return mapping
    scores = confusion.astype(np.float64)
    if method == "majority-normalized":
        totals = scores.sum(axis=0)
        scores = np.divide(scores, totals, out=np.zeros_like(scores), where=totals > 0)
    has_pixels = confusion.sum(axis=1) > 0
    mapping[has_pixels] = scores[has_pixels].argmax(axis=1)
    return mapping
