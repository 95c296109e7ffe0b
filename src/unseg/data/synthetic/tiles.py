"""Small test images with known answers: flat quadrants, round blobs and an H&E-like tile."""

from __future__ import annotations

import math

import numpy as np

from unseg.data.synthetic._common import (
    _BACKGROUND_RGB,
    _NUCLEUS_RGB,
    _STROMA_RGB,
    RandomState,
    _check_size,
    _smooth_noise,
    _to_uint8,
)
from unseg.errors import ParameterError
from unseg.types import Image, LabelMap

_QUADRANT_COLOURS = np.array([(200, 60, 60), (60, 160, 70), (60, 90, 200), (220, 200, 80)])


def quadrants(
    size: int = 64, *, noise: float = 8.0, random_state: RandomState = 0
) -> tuple[Image, LabelMap]:
    """Four flat colours, one per quadrant, with Gaussian noise.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 2``.
    noise : float
        Standard deviation of the noise, in grey levels.
    random_state : int, Generator or None
        Seed of the noise.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` ``uint8``.
    mask : ndarray
        ``(size, size)`` ``int32``: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
    """
    _check_size(size, 2)
    if noise < 0:
        raise ParameterError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(random_state)
    half = size // 2
    mask = np.zeros((size, size), dtype=np.int32)
    mask[:half, half:] = 1
    mask[half:, :half] = 2
    mask[half:, half:] = 3
    image = _QUADRANT_COLOURS[mask] + rng.normal(0.0, noise, (size, size, 3))
    return _to_uint8(image), mask


def blobs(
    size: int = 128, *, n_blobs: int = 6, random_state: RandomState = 0
) -> tuple[Image, LabelMap]:
    """Dark round blobs, none touching, on a bright textured background.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 16``.
    n_blobs : int
        Number of blobs, ``>= 1``; each is one connected region of the mask.
    random_state : int, Generator or None
        Seed of the positions, sizes and texture.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` ``uint8``.
    mask : ndarray
        ``(size, size)`` ``int32``: 0 background, 1 blob.

    Raises
    ------
    ParameterError
        If ``n_blobs`` separate blobs do not fit in the image.
    """
    _check_size(size, 16)
    if n_blobs < 1:
        raise ParameterError(f"n_blobs must be >= 1, got {n_blobs}")
    rng = np.random.default_rng(random_state)
    placed: list[tuple[float, float, float]] = []
    for _ in range(100 * n_blobs):
        radius = rng.uniform(0.06, 0.1) * size
        y, x = rng.uniform(radius + 1, size - radius - 1, size=2)
        if all(math.hypot(y - py, x - px) > radius + pr + 2 for py, px, pr in placed):
            placed.append((y, x, radius))
            if len(placed) == n_blobs:
                break
    else:
        raise ParameterError(
            f"cannot fit {n_blobs} separate blobs in a {size}x{size} image; "
            "use fewer blobs or a larger size"
        )
    yy, xx = np.ogrid[:size, :size]
    mask = np.zeros((size, size), dtype=np.int32)
    for y, x, radius in placed:
        mask[(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = 1
    texture = _smooth_noise(rng, size, sigma=size / 32)
    background = np.array([228.0, 218.0, 205.0]) + 12.0 * texture[..., None]
    blob = np.array([70.0, 55.0, 100.0]) + 6.0 * texture[..., None]
    image = np.where(mask[..., None] == 1, blob, background)
    return _to_uint8(image + rng.normal(0.0, 5.0, image.shape)), mask


def he_tile(size: int = 256, *, random_state: RandomState = 0) -> tuple[Image, LabelMap]:
    """An H&E-looking tile: glass, pink fibrous stroma and a cluster of purple nuclei.

    The tissue covers three quarters of the tile with an irregular border. Stroma carries a
    fibre texture along a random direction; nuclei are small ellipses of varying darkness,
    crowded in a tumour-like region around the point deepest inside the tissue.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 32``.
    random_state : int, Generator or None
        Seed of the layout and textures.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` ``uint8``; glass about (240, 240, 240), stroma about
        (230, 150, 190), nuclei about (90, 60, 150).
    mask : ndarray
        ``(size, size)`` ``int32``: 0 background (no tissue), 1 stroma, 2 nuclei.
    """
    from scipy import ndimage

    _check_size(size, 32)
    rng = np.random.default_rng(random_state)
    depth = _smooth_noise(rng, size, sigma=size / 8)
    tissue = depth > np.quantile(depth, 0.25)

    # The cluster sits at the tissue point farthest from both the glass and the tile's border.
    inland = ndimage.distance_transform_edt(np.pad(tissue, 1))[1:-1, 1:-1]
    centre_y, centre_x = np.unravel_index(np.argmax(inland), inland.shape)
    radius = 0.2 * size
    nuclei = np.zeros((size, size), dtype=bool)
    shade = np.zeros((size, size))
    # Nuclei are 7-12 px across whatever the tile size; they cover about 40% of the cluster.
    for _ in range(max(4, round(0.4 * radius**2 / 20))):
        distance, angle = radius * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
        window, inside = _ellipse(
            size,
            centre_y + distance * math.sin(angle),
            centre_x + distance * math.cos(angle),
            rng.uniform(4.0, 6.0),
            rng.uniform(3.5, 4.5),
            rng.uniform(0, math.pi),
        )
        nuclei[window] |= inside
        shade[window][inside] = rng.normal(0.0, 12.0)
    nuclei &= tissue
    mask = np.where(nuclei, 2, tissue.astype(np.int32)).astype(np.int32)

    fibres = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=(1.2, 8.0))
    fibres = ndimage.rotate(fibres, rng.uniform(0, 180), reshape=False, mode="reflect")
    eosin = fibres / fibres.std() + _smooth_noise(rng, size, sigma=size / 16)
    stroma = _STROMA_RGB + eosin[..., None] * np.array([5.0, 14.0, 9.0])
    chromatin = shade + 8.0 * rng.standard_normal((size, size))
    nucleus = _NUCLEUS_RGB + chromatin[..., None]
    image = np.where(
        (mask == 2)[..., None], nucleus, np.where((mask == 1)[..., None], stroma, _BACKGROUND_RGB)
    )
    image = ndimage.gaussian_filter(image, sigma=(0.7, 0.7, 0.0))
    return _to_uint8(image + rng.normal(0.0, 4.0, image.shape)), mask


def _ellipse(
    size: int, y: float, x: float, a: float, b: float, theta: float
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Pixels of an ellipse (semi-axes ``a``, ``b``, rotated by ``theta``) in a square image.

    Returns the window around the ellipse, clipped to the image, and the boolean ellipse inside
    that window.
    """
    top, bottom = np.clip([math.floor(y - a), math.ceil(y + a) + 1], 0, size)
    left, right = np.clip([math.floor(x - a), math.ceil(x + a) + 1], 0, size)
    rows, cols = slice(top, bottom), slice(left, right)
    dy, dx = np.ogrid[rows, cols]
    dy, dx = dy - y, dx - x
    along = dx * math.cos(theta) + dy * math.sin(theta)
    across = -dx * math.sin(theta) + dy * math.cos(theta)
    return (rows, cols), (along / a) ** 2 + (across / b) ** 2 <= 1.0
