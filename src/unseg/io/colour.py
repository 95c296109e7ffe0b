"""Colour label maps for viewing: a fixed palette, colourised maps and overlays."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

from unseg.errors import ParameterError
from unseg.io.images import checked_image, write_image
from unseg.io.labels import checked_labels

# Hand-picked, well-separated colours for the first ids; later ids get generated hues.
_TABLE = np.array(
    [
        (52, 101, 164),  # blue
        (220, 80, 50),  # vermilion
        (70, 160, 70),  # green
        (240, 190, 40),  # yellow
        (140, 80, 170),  # purple
        (40, 180, 200),  # cyan
        (230, 120, 180),  # pink
        (150, 100, 50),  # brown
        (130, 130, 130),  # grey
        (170, 210, 60),  # lime
        (20, 60, 110),  # navy
        (250, 150, 90),  # apricot
        (0, 120, 110),  # teal
        (200, 40, 120),  # magenta
        (110, 200, 150),  # mint
        (120, 30, 30),  # maroon
        (180, 170, 230),  # lavender
        (100, 100, 20),  # olive
        (250, 215, 150),  # sand
        (60, 60, 60),  # charcoal
    ],
    dtype=np.uint8,
)
_GOLDEN = (5**0.5 - 1) / 2  # hue step that keeps successive hues far apart
_SATURATIONS = (0.85, 0.6, 1.0)
_VALUES = (0.95, 0.75, 0.85, 0.65, 0.55)


def palette(n: int) -> np.ndarray:
    """Return ``n`` distinct, deterministic colours.

    The first 20 colours come from a fixed qualitative table; further colours step around the
    hue circle by the golden ratio with cycling saturation and brightness. The first 5000
    colours are all different.

    Parameters
    ----------
    n : int
        Number of colours, ``>= 0``.

    Returns
    -------
    ndarray
        ``(n, 3)`` ``uint8`` RGB; row ``i`` is the colour of id ``i``.
    """
    if n < 0:
        raise ParameterError(f"palette size must be >= 0, got {n}")
    generated = [
        colorsys.hsv_to_rgb((j * _GOLDEN) % 1.0, _SATURATIONS[j % 3], _VALUES[(j // 3) % 5])
        for j in range(max(n - len(_TABLE), 0))
    ]
    extra = np.round(np.array(generated, dtype=np.float64).reshape(-1, 3) * 255).astype(np.uint8)
    return np.concatenate([_TABLE, extra])[:n]


def colourize(labels: np.ndarray, colours: np.ndarray | None = None) -> np.ndarray:
    """Paint each id of a label map with its :func:`palette` colour.

    Parameters
    ----------
    labels : ndarray
        ``(H, W)`` integer ids ``>= 0``.
    colours : ndarray, optional
        ``(n, 3)`` RGB rows that replace the palette colours of ids ``0 .. n - 1`` (the
        colours a user gave, :meth:`unseg.data.LabelNames.colour_table`).

    Returns
    -------
    ndarray
        ``(H, W, 3)`` ``uint8`` RGB.
    """
    labels = checked_labels(labels)
    table = palette(int(labels.max()) + 1)
    if colours is not None:
        given = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)[: len(table)]
        table[: len(given)] = given
    return table[labels]


def overlay(
    image: np.ndarray, labels: np.ndarray, *, alpha: float = 0.5, colours: np.ndarray | None = None
) -> np.ndarray:
    """Blend the colourised label map over an image.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` or ``(H, W, 3)``, ``uint8`` or ``uint16``; gray and 16-bit images are
        converted to RGB ``uint8`` first.
    labels : ndarray
        ``(H, W)`` integer ids ``>= 0``, same height and width as ``image``.
    alpha : float
        Weight of the label colours: 0 shows only the image, 1 only the labels.
    colours : ndarray, optional
        Colours replacing the palette's, as for :func:`colourize`.

    Returns
    -------
    ndarray
        ``(H, W, 3)`` ``uint8`` RGB.

    Raises
    ------
    ParameterError
        If the shapes differ, ``alpha`` is outside ``[0, 1]``, or either array is invalid.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must be between 0 and 1, got {alpha}")
    image = checked_image(image)
    labels = checked_labels(labels)
    if image.shape[:2] != labels.shape:
        raise ParameterError(
            f"image of shape {image.shape} and labels of shape {labels.shape} "
            "differ in height or width"
        )
    if image.dtype == np.uint16:
        image = np.round(image / 257.0).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    blended = (1.0 - alpha) * image + alpha * colourize(labels, colours)
    return np.round(blended).astype(np.uint8)


def write_overlay(
    path: str | Path, image: np.ndarray, labels: np.ndarray, *, alpha: float = 0.5,
    colours: np.ndarray | None = None,
) -> Path:
    """Write :func:`overlay` of ``image`` and ``labels`` atomically.

    Parameters
    ----------
    path : str or Path
        Output image file (PNG, JPEG or TIFF, by suffix). Missing folders are created.
    image, labels, alpha, colours
        As for :func:`overlay`.

    Returns
    -------
    Path
        ``path``.
    """
    return write_image(path, overlay(image, labels, alpha=alpha, colours=colours))
