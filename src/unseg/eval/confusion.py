"""Confusion matrices between predicted clusters and ground-truth classes.

Rows are predicted cluster ids, columns are ground-truth class ids. Pixels whose ground truth
equals ``ignore_index`` are left out. Cluster ids carry no meaning until they are matched to
classes (:func:`unseg.eval.match`), so the matrix is rectangular: ``K`` clusters by ``C``
classes, with ``K`` and ``C`` independent.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from unseg.errors import ParameterError


def _as_label_array(name: str, array: ArrayLike) -> NDArray[np.integer]:
    """Return ``array`` as a 2-D integer (or boolean) array, or raise :class:`ParameterError`."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ParameterError(
            f"{name} must be a 2-D (H, W) label map; received an array of shape {array.shape}. "
            "Fix: pass one single-channel label map per image."
        )
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ParameterError(
            f"{name} must hold integer ids; received dtype {array.dtype}. "
            f"Fix: convert it with {name}.astype(np.int32) after rounding."
        )
    return array


def valid_pixels(
    pred: ArrayLike, gt: ArrayLike, *, ignore_index: int | None = 255
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Check a prediction and its ground truth, and return their ids at the valid pixels.

    Parameters
    ----------
    pred, gt : array_like of int, shape (H, W)
        Predicted cluster ids and ground-truth class ids of one image.
    ignore_index : int or None
        Ground-truth id of the pixels to leave out; None leaves none out.

    Returns
    -------
    pred_ids, gt_ids : ndarray of int64, shape (N,)
        Ids of the ``N`` pixels whose ground truth is not ``ignore_index``, in row-major order.
    valid : ndarray of bool, shape (H, W)
        Where the ground truth is not ``ignore_index``.

    Raises
    ------
    ParameterError
        If the arrays are not 2-D integer arrays of the same shape, or hold negative ids at
        valid pixels.
    """
    pred = _as_label_array("pred", pred)
    gt = _as_label_array("gt", gt)
    if pred.shape != gt.shape:
        raise ParameterError(
            f"pred and gt must have the same shape; received pred {pred.shape} and gt "
            f"{gt.shape}. Fix: resize the prediction to the ground truth (nearest neighbour)."
        )
    valid = gt != ignore_index if ignore_index is not None else np.ones(gt.shape, bool)
    pred_ids = pred[valid].astype(np.int64)
    gt_ids = gt[valid].astype(np.int64)
    for name, ids in (("pred", pred_ids), ("gt", gt_ids)):
        if ids.size and ids.min() < 0:
            raise ParameterError(
                f"{name} ids must be non-negative; received {ids.min()}. "
                "Fix: renumber the ids from 0 (or mark ignored pixels with the ignore id in "
                "gt)."
            )
    return pred_ids, gt_ids, valid


def confusion_matrix(
    pred: ArrayLike, gt: ArrayLike, *, ignore_index: int | None = 255
) -> NDArray[np.int64]:
    """Count pixels per (predicted cluster, ground-truth class) pair in one image.

    Parameters
    ----------
    pred : array_like of int, shape (H, W)
        Predicted cluster ids, non-negative.
    gt : array_like of int, shape (H, W)
        Ground-truth class ids, non-negative; ``ignore_index`` marks pixels to leave out.
    ignore_index : int or None
        Ground-truth id of the pixels to leave out (default 255); None leaves none out.

    Returns
    -------
    ndarray of int64, shape (K, C)
        ``K`` is the largest cluster id at a valid pixel plus one, ``C`` the largest valid
        ground-truth id plus one; both are at least 1. Entry ``[k, c]`` counts the valid pixels
        predicted ``k`` whose ground truth is ``c``.

    Raises
    ------
    ParameterError
        If the arrays are not 2-D integer arrays of the same shape, or hold negative ids.
    """
    pred_ids, gt_ids, _ = valid_pixels(pred, gt, ignore_index=ignore_index)
    n_clusters = int(pred_ids.max()) + 1 if pred_ids.size else 1
    n_classes = int(gt_ids.max()) + 1 if gt_ids.size else 1
    counts = np.bincount(pred_ids * n_classes + gt_ids, minlength=n_clusters * n_classes)
    return counts.astype(np.int64).reshape(n_clusters, n_classes)


def pad_to(matrix: NDArray, shape: tuple[int, int]) -> NDArray:
    """Pad a confusion matrix with zero rows and columns at the end.

    Parameters
    ----------
    matrix : ndarray, shape (K, C)
        A confusion matrix.
    shape : tuple of int
        Target ``(K', C')`` with ``K' >= K`` and ``C' >= C``.

    Returns
    -------
    ndarray, shape (K', C')
        ``matrix`` in the top-left corner, zeros elsewhere.
    """
    rows, cols = shape[0] - matrix.shape[0], shape[1] - matrix.shape[1]
    return np.pad(matrix, ((0, rows), (0, cols)))


class ConfusionAccumulator:
    """Accumulate confusion matrices over a stream of images.

    The shape grows as new cluster or class ids appear. The per-image matrices are kept (each
    is only ``K x C`` integers) so that a later step can match each image on its own.

    Parameters
    ----------
    ignore_index : int or None
        Ground-truth id of the pixels to leave out (default 255); None leaves none out.

    Examples
    --------
    >>> acc = ConfusionAccumulator()
    >>> _ = acc.update(np.array([[0, 1]]), np.array([[0, 0]]))
    >>> _ = acc.update(np.array([[2, 2]]), np.array([[1, 255]]))
    >>> acc.matrix
    array([[1, 0],
           [1, 0],
           [0, 1]])
    """

    def __init__(self, *, ignore_index: int | None = 255) -> None:
        self.ignore_index = ignore_index
        self._matrices: list[NDArray] = []
        self._total = np.zeros((0, 0), dtype=np.int64)

    def update(self, pred: ArrayLike, gt: ArrayLike) -> NDArray:
        """Add one image.

        Parameters
        ----------
        pred, gt : array_like of int, shape (H, W)
            Predicted cluster ids and ground-truth class ids, as in :func:`confusion_matrix`.

        Returns
        -------
        ndarray of int64, shape (K_i, C_i)
            This image's own confusion matrix (not padded).
        """
        matrix = confusion_matrix(pred, gt, ignore_index=self.ignore_index)
        shape = (
            max(self._total.shape[0], matrix.shape[0]),
            max(self._total.shape[1], matrix.shape[1]),
        )
        self._total = pad_to(self._total, shape) + pad_to(matrix, shape)
        self._matrices.append(matrix)
        return matrix

    @property
    def matrix(self) -> NDArray:
        """ndarray of int64, shape (K, C): the sum over all images, (0, 0) before any."""
        return self._total.copy()

    @property
    def per_image(self) -> list[NDArray]:
        """list of ndarray of int64, each shape (K, C): per-image matrices padded to the total."""
        return [pad_to(matrix, self._total.shape) for matrix in self._matrices]
