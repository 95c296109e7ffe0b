"""Tissue detection on slide thumbnails: which parts of the glass hold stained tissue.

Stained tissue is coloured and glass is white or grey, so the HSV saturation separates them:
an Otsu threshold on the saturation, with guards for slides that hold no tissue at all, then
small specks removed and small holes filled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from unseg.errors import ParameterError
from unseg.io.images import checked_image

if TYPE_CHECKING:
    from unseg.io.slide_base import Slide

MIN_SATURATION = 0.05
"""Saturation at or below which a pixel is glass whatever Otsu says (white/grey glass,
JPEG chroma noise and slight colour casts stay under it; stained tissue is well above)."""

MIN_SEPARATION = 0.05
"""Least difference between the mean saturations of Otsu's two classes for them to be tissue
and glass rather than two halves of the noise of one (blank) slide."""


def tissue_mask(
    thumbnail: np.ndarray,
    *,
    min_area: float = 2e-4,
    max_hole_area: float = 1e-3,
    min_saturation: float = MIN_SATURATION,
    min_separation: float = MIN_SEPARATION,
) -> NDArray[np.bool_]:
    """Tissue pixels of an RGB thumbnail of a slide.

    1. Saturation ``S = (max - min) / max`` of R, G, B (HSV, as ``skimage.color.rgb2hsv``),
       lightly smoothed (Gaussian, sigma 1 pixel) so isolated noisy pixels do not count.
    2. Otsu's threshold ``t`` splits ``S`` in two classes; tissue is ``S > max(t,
       min_saturation)``. Two guards: when the lower class is itself coloured (mean saturation
       at least ``3 * min_saturation``) there is no glass and Otsu split tissue from tissue, so
       tissue is ``S > min_saturation``; when the two classes' mean saturations differ by less
       than ``min_separation``, the image has one mode only, glass (a blank or slightly
       tinted slide), and the mask is empty.
    3. Connected tissue regions smaller than ``min_area`` of the image are removed and holes
       smaller than ``max_hole_area`` of the image are filled (8-connectivity for tissue).

    Parameters
    ----------
    thumbnail : ndarray
        ``(H, W, 3)`` RGB, ``uint8`` or ``uint16``.
    min_area : float
        Smallest tissue region kept, as a fraction of ``H * W``, in ``[0, 1)``.
    max_hole_area : float
        Largest hole filled, as a fraction of ``H * W``, in ``[0, 1)``.
    min_saturation : float
        Floor of the saturation threshold, in ``[0, 1)``.
    min_separation : float
        Least gap between the two classes' mean saturations, in ``[0, 1)``.

    Returns
    -------
    ndarray
        ``(H, W)`` bool, True on tissue.

    Raises
    ------
    ParameterError
        For a grayscale image (no saturation to threshold) or parameters out of range.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    image = checked_image(thumbnail)
    if image.ndim != 3:
        raise ParameterError(
            f"tissue detection needs an (H, W, 3) RGB thumbnail, got shape {image.shape}"
        )
    for name, value in (
        ("min_area", min_area),
        ("max_hole_area", max_hole_area),
        ("min_saturation", min_saturation),
        ("min_separation", min_separation),
    ):
        if not 0 <= value < 1:
            raise ParameterError(f"{name} must be in [0, 1), got {value!r}")
    rgb = image.astype(np.float32)
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    saturation = ndimage.gaussian_filter(saturation, sigma=1.0)

    glass_level = 3 * min_saturation  # glass, even tinted, is less saturated than this
    threshold = min_saturation
    if saturation.max() - saturation.min() > 1e-6:
        otsu = float(threshold_otsu(saturation))
        below = float(saturation[saturation <= otsu].mean())
        above = float(saturation[saturation > otsu].mean())
        if below >= glass_level:  # Otsu split tissue from tissue: there is no glass
            threshold = min_saturation
        elif above - below < min_separation:  # one mode, and it is glass
            return np.zeros(saturation.shape, dtype=bool)
        else:
            threshold = max(otsu, min_saturation)
    elif saturation.max() < glass_level:  # one flat colour, and it is glass
        return np.zeros(saturation.shape, dtype=bool)
    mask = saturation > threshold

    area = mask.size
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= min_area * area
        keep[0] = False
        mask = keep[labels]
    holes = ndimage.binary_fill_holes(mask) & ~mask
    labels, count = ndimage.label(holes)
    if count:
        sizes = np.bincount(labels.ravel())
        fill = sizes <= max_hole_area * area
        fill[0] = False
        mask |= fill[labels]
    return mask


def detect_tissue(
    slide: Slide, *, max_size: int = 2048, **options: float
) -> tuple[NDArray[np.bool_], tuple[float, float]]:
    """Tissue mask of a slide, computed on its thumbnail.

    Parameters
    ----------
    slide : Slide
        An open slide (:func:`unseg.io.open_slide`).
    max_size : int
        Longest side of the thumbnail, in pixels.
    **options
        Passed to :func:`tissue_mask` (``min_area``, ``max_hole_area``, ...).

    Returns
    -------
    mask : ndarray
        ``(h, w)`` bool, True on tissue; ``max(h, w) == min(max_size, longest slide side)``.
    scale : tuple of float
        Level-0 pixels per mask pixel along x and along y: mask pixel ``(i, j)`` covers
        level-0 ``x`` in ``[j * scale[0], (j + 1) * scale[0])``, likewise ``y``.
    """
    thumbnail = slide.thumbnail(max_size)
    mask = tissue_mask(thumbnail, **options)
    width, height = slide.dimensions
    return mask, (width / mask.shape[1], height / mask.shape[0])
