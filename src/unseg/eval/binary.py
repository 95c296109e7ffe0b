"""Metrics between a binary predicted mask and a binary ground-truth mask.

The definitions follow the evaluation code of CUTS (Liu, Amodio et al., MICCAI 2024): Dice,
Hausdorff distance (scikit-image's definition on all foreground pixels), SSIM of the masks
(scikit-image), and ERGAS and RMSE as the ``sewar`` package (version 0.4.5 and earlier) computes
them. ``docs/metrics.md`` writes each formula out with its conventions for empty masks.

Every function takes two masks of shape (H, W) holding only 0/1 (or bool), foreground = 1.
Ignored pixels are the caller's business: :func:`unseg.eval.evaluate` sets them to 0 in both.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import distance_transform_edt, uniform_filter
from skimage.metrics import structural_similarity

from unseg.errors import ParameterError

ERGAS_RATIO = 4.0
"""Resolution ratio ``r`` of ERGAS (sewar's default)."""
ERGAS_WINDOW = 8
"""Side of ERGAS's sliding window in pixels (sewar's default)."""


def _as_masks(pred: ArrayLike, gt: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Check two binary masks of the same 2-D shape and return them as bool arrays."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ParameterError(
            "pred and gt must be 2-D masks of the same shape; received pred "
            f"{pred.shape} and gt {gt.shape}. Fix: pass one (H, W) mask of each."
        )
    for name, mask in (("pred", pred), ("gt", gt)):
        if mask.dtype != np.bool_ and not np.isin(mask, (0, 1)).all():
            raise ParameterError(
                f"{name} must be a binary mask holding only 0 and 1; received values "
                f"{np.unique(mask)[:5].tolist()}. Fix: pass (label_map == foreground_id)."
            )
    return pred.astype(bool), gt.astype(bool)


def _empty_value(pred: NDArray[np.bool_], gt: NDArray[np.bool_]) -> float | None:
    """Distance convention when a mask is empty: 0 for both, the image diagonal for one."""
    pred_empty, gt_empty = not pred.any(), not gt.any()
    if pred_empty and gt_empty:
        return 0.0
    if pred_empty or gt_empty:
        height, width = gt.shape
        return float(np.sqrt(height**2 + width**2))
    return None


def _distances(
    pred: NDArray[np.bool_], gt: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Distance from each foreground pixel of one mask to the nearest of the other.

    Returns
    -------
    pred_to_gt : ndarray of float64, shape (|pred|,)
    gt_to_pred : ndarray of float64, shape (|gt|,)
    """
    # The Euclidean distance transform of ~mask gives each pixel's distance to mask.
    return distance_transform_edt(~gt)[pred], distance_transform_edt(~pred)[gt]


def dice(pred: ArrayLike, gt: ArrayLike) -> float:
    """Dice coefficient ``2 |P & G| / (|P| + |G|)``.

    Parameters
    ----------
    pred, gt : array_like of {0, 1} or bool, shape (H, W)
        Predicted and ground-truth foreground.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both masks are empty.
    """
    pred, gt = _as_masks(pred, gt)
    total = int(pred.sum()) + int(gt.sum())
    return 2 * int((pred & gt).sum()) / total if total else 1.0


def hausdorff(pred: ArrayLike, gt: ArrayLike) -> float:
    """Symmetric Hausdorff distance between the foreground pixel sets, in pixels.

    Parameters
    ----------
    pred, gt : array_like of {0, 1} or bool, shape (H, W)
        Predicted and ground-truth foreground.

    Returns
    -------
    float
        ``max(max_p d(p, G), max_g d(g, P))`` over all foreground pixels, as
        :func:`skimage.metrics.hausdorff_distance`; 0.0 when both masks are empty, the image
        diagonal ``sqrt(H**2 + W**2)`` when exactly one is.
    """
    pred, gt = _as_masks(pred, gt)
    empty = _empty_value(pred, gt)
    if empty is not None:
        return empty
    pred_to_gt, gt_to_pred = _distances(pred, gt)
    return float(max(pred_to_gt.max(), gt_to_pred.max()))


def hausdorff95(pred: ArrayLike, gt: ArrayLike) -> float:
    """95th percentile of the pooled distances between the foreground pixel sets, in pixels.

    Parameters
    ----------
    pred, gt : array_like of {0, 1} or bool, shape (H, W)
        Predicted and ground-truth foreground.

    Returns
    -------
    float
        95th percentile (linear interpolation) of the distances from every pixel of ``pred``
        to the nearest of ``gt`` together with those from every pixel of ``gt`` to the nearest
        of ``pred``; same empty-mask values as :func:`hausdorff`.
    """
    pred, gt = _as_masks(pred, gt)
    empty = _empty_value(pred, gt)
    if empty is not None:
        return empty
    return float(np.percentile(np.concatenate(_distances(pred, gt)), 95))


def ssim(pred: ArrayLike, gt: ArrayLike) -> float:
    """Structural similarity of the two masks (scikit-image, 7x7 uniform window).

    Parameters
    ----------
    pred, gt : array_like of {0, 1} or bool, shape (H, W)
        Predicted and ground-truth foreground.

    Returns
    -------
    float
        :func:`skimage.metrics.structural_similarity` of the masks as float64 with
        ``data_range = 1``; images with a side below 7 use the largest odd window that fits.
        NaN when a side is below 3 pixels (no window with a variance fits).
    """
    pred, gt = _as_masks(pred, gt)
    side = min(gt.shape)
    if side < 3:
        return float("nan")
    window = None if side >= 7 else side - 1 + side % 2
    # data_range is max(gt) - min(gt), or 1 when that is 0: always 1 for a binary mask.
    return float(
        structural_similarity(
            gt.astype(np.float64), pred.astype(np.float64), data_range=1.0, win_size=window
        )
    )


def ergas(pred: ArrayLike, gt: ArrayLike) -> float:
    """ERGAS (relative dimensionless global error) with a sliding window, as sewar 0.4.5.

    Parameters
    ----------
    pred, gt : array_like of {0, 1} or bool, shape (H, W)
        Predicted and ground-truth foreground.

    Returns
    -------
    float
        Mean over the window-cropped image of ``100 r RMSE_w / mu_w``, where ``RMSE_w`` is the
        local root mean squared error and ``mu_w`` the local mean of ``gt`` divided by ``w**2``
        (``r = 4``, ``w = 8``); 0 where ``mu_w = 0``. NaN when a side is 8 pixels or less (the
        crop is empty).
    """
    pred, gt = _as_masks(pred, gt)
    crop = round(ERGAS_WINDOW / 2)
    if min(gt.shape) <= 2 * crop:
        return float("nan")
    gt_f, pred_f = gt.astype(np.float64), pred.astype(np.float64)
    local_rmse = np.sqrt(uniform_filter((gt_f - pred_f) ** 2, size=ERGAS_WINDOW))
    local_mean = uniform_filter(gt_f, size=ERGAS_WINDOW) / ERGAS_WINDOW**2
    no_gt = local_mean == 0
    relative = np.where(no_gt, 0.0, local_rmse / np.where(no_gt, 1.0, local_mean))
    return float(100 * ERGAS_RATIO * relative[crop:-crop, crop:-crop].mean())


def rmse(pred: ArrayLike, gt: ArrayLike) -> float:
    """Root mean squared error between the masks, ``sqrt(mean((G - P)**2))``.

    Parameters
    ----------
    pred, gt : array_like of {0, 1} or bool, shape (H, W)
        Predicted and ground-truth foreground.

    Returns
    -------
    float
        In [0, 1]: the square root of the fraction of pixels where the masks differ.
    """
    pred, gt = _as_masks(pred, gt)
    return float(np.sqrt(np.mean(pred != gt)))
