"""Per-class segmentation scores from a confusion matrix and a cluster-to-class mapping.

A cluster's pixels count as predictions of the class it is mapped to. Pixels of an unmatched
cluster (mapping -1) predict nothing: they are false negatives of their true class and false
positives of no class. Classes absent from the ground truth (no pixel in their column) get NaN
scores and are left out of the mean.

To pool over images that each have their own mapping, stack the per-image matrices and
concatenate their mappings: every count below is a sum over rows, so the stacked result is the
sum of the per-image counts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from unseg.errors import ParameterError
from unseg.eval.matching import as_confusion


def class_counts(
    confusion: ArrayLike, mapping: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """True positives, false positives and false negatives per class.

    Parameters
    ----------
    confusion : array_like of int, shape (K, C)
        Pixel counts, rows = clusters, columns = classes (:func:`confusion_matrix`).
    mapping : array_like of int, shape (K,)
        Class id of each cluster in ``[0, C)``, or -1 for an unmatched cluster (:func:`match`).

    Returns
    -------
    tp, fp, fn : ndarray of int64, each shape (C,)
        ``tp[c]``: pixels of class ``c`` in clusters mapped to ``c``; ``fp[c]``: other pixels
        in clusters mapped to ``c``; ``fn[c]``: pixels of class ``c`` not in a cluster mapped
        to ``c`` (unmatched clusters included).

    Raises
    ------
    ParameterError
        If ``mapping`` does not have one entry in ``[-1, C)`` per row of ``confusion``.
    """
    confusion = as_confusion(confusion).astype(np.int64)
    n_clusters, n_classes = confusion.shape
    mapping = np.asarray(mapping)
    if (
        mapping.shape != (n_clusters,)
        or not np.issubdtype(mapping.dtype, np.integer)
        or (mapping.size and not -1 <= mapping.min() <= mapping.max() < n_classes)
    ):
        raise ParameterError(
            f"mapping must hold {n_clusters} integer class ids in [-1, {n_classes}) for a "
            f"confusion matrix of shape {confusion.shape}; received shape {mapping.shape}, "
            f"dtype {mapping.dtype}. Fix: compute it with unseg.eval.match(confusion, method)."
        )
    matched = mapping >= 0
    mapped = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(mapped, mapping[matched], confusion[matched])
    tp = np.diag(mapped).copy()
    return tp, mapped.sum(axis=1) - tp, confusion.sum(axis=0) - tp


def _ratio_over_present(numerator: NDArray, denominator: NDArray, present: NDArray) -> NDArray:
    """``numerator / denominator`` where ``present``, NaN elsewhere."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=present)
    return out


def iou_per_class(confusion: ArrayLike, mapping: ArrayLike) -> NDArray[np.float64]:
    """Intersection over union per class, ``TP / (TP + FP + FN)``.

    Parameters
    ----------
    confusion : array_like of int, shape (K, C)
        Pixel counts, rows = clusters, columns = classes.
    mapping : array_like of int, shape (K,)
        Class id of each cluster, -1 where unmatched.

    Returns
    -------
    ndarray of float64, shape (C,)
        IoU of each class; NaN for classes with no ground-truth pixel.
    """
    tp, fp, fn = class_counts(confusion, mapping)
    return _ratio_over_present(tp, tp + fp + fn, tp + fn > 0)


def f1_per_class(confusion: ArrayLike, mapping: ArrayLike) -> NDArray[np.float64]:
    """F1 score (Dice) per class, ``2 TP / (2 TP + FP + FN)``.

    Parameters
    ----------
    confusion : array_like of int, shape (K, C)
        Pixel counts, rows = clusters, columns = classes.
    mapping : array_like of int, shape (K,)
        Class id of each cluster, -1 where unmatched.

    Returns
    -------
    ndarray of float64, shape (C,)
        F1 of each class; NaN for classes with no ground-truth pixel.
    """
    tp, fp, fn = class_counts(confusion, mapping)
    return _ratio_over_present(2 * tp, 2 * tp + fp + fn, tp + fn > 0)


def mean_iou(confusion: ArrayLike, mapping: ArrayLike) -> float:
    """Mean IoU over the classes present in the ground truth.

    Parameters
    ----------
    confusion : array_like of int, shape (K, C)
        Pixel counts, rows = clusters, columns = classes.
    mapping : array_like of int, shape (K,)
        Class id of each cluster, -1 where unmatched.

    Returns
    -------
    float
        Mean of :func:`iou_per_class` over classes with at least one ground-truth pixel; NaN
        when there is none.
    """
    iou = iou_per_class(confusion, mapping)
    present = ~np.isnan(iou)
    return float(iou[present].mean()) if present.any() else float("nan")


def pixel_accuracy(confusion: ArrayLike, mapping: ArrayLike) -> float:
    """Fraction of valid pixels whose cluster is mapped to their true class.

    Parameters
    ----------
    confusion : array_like of int, shape (K, C)
        Pixel counts, rows = clusters, columns = classes.
    mapping : array_like of int, shape (K,)
        Class id of each cluster, -1 where unmatched.

    Returns
    -------
    float
        ``sum(TP) / sum(confusion)``; NaN when there is no valid pixel.
    """
    tp, _, fn = class_counts(confusion, mapping)
    total = tp.sum() + fn.sum()
    return float(tp.sum() / total) if total else float("nan")
