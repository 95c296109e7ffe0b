"""Sky-and-fruit scenes: lemons, apples and blueberries in front of a sky of high internal
colour variance, in two styles.

- :func:`pasted_fruit` (``--style thesis``), the data of the CIRS thesis: one fixed lemon, apple
  and blueberry sprite pasted at random positions and rotations on one fixed cloudy sky.
- :func:`sky_and_fruit` (``--style varied``): fruits of random number, scale and colour on a
  sky drawn anew for every scene.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from unseg.data.synthetic._common import RandomState, _check_size, _smooth_noise, _to_uint8
from unseg.errors import ParameterError
from unseg.types import Image, LabelMap

SKY, LEMON, APPLE, BLUEBERRY = 0, 1, 2, 3
FRUIT_CLASSES = ("sky", "lemon", "apple", "blueberry")
#: Seed of the one sky and the three sprites of :func:`pasted_fruit`.
_FIXED_SEED = 2020
_CLOUD = np.array([248, 248, 252])


def pasted_fruit(size: int = 64, *, random_state: RandomState = 0) -> tuple[Image, LabelMap]:
    """The thesis's scene: fixed fruit sprites pasted at random positions and rotations on one
    fixed sky.

    The sky is the same image in every scene: a blue gradient with white clouds covering
    about 40% of it, so its colours vary as much as the fruits' differ. The three sprites (a
    dimpled lemon with nubs, a red apple with highlight, dent and stem, a bunch of three
    blueberries with a pale bloom) are drawn once; each scene pastes each of them once, in
    random order (later ones may occlude earlier ones), each rotated by a random angle
    (nearest neighbour, so colours are the sprite's own) and placed at a random position
    inside the frame. Image and mask are pasted together, so the mask is exact.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 32``; sprites scale with ``size / 64``.
    random_state : int, Generator or None
        Seed of the scene: the order, angles and positions.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` ``uint8``.
    mask : ndarray
        ``(size, size)`` ``int32``: 0 sky, 1 lemon, 2 apple, 3 blueberry (``FRUIT_CLASSES``).
    """
    from scipy import ndimage

    _check_size(size, 32)
    rng = np.random.default_rng(random_state)
    image = _fixed_sky(size).copy()
    mask = np.zeros((size, size), np.int32)
    sprites = _sprites(size)
    for kind in rng.permutation([LEMON, APPLE, BLUEBERRY]):
        colour, inside = sprites[int(kind)]
        angle = rng.uniform(0, 360)
        colour = ndimage.rotate(colour, angle, axes=(1, 0), order=0, reshape=True)
        inside = ndimage.rotate(inside, angle, axes=(1, 0), order=0, reshape=True)
        rows, cols = np.nonzero(inside)
        inside = inside[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        colour = colour[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        h, w = inside.shape
        top = int(rng.integers(0, size - h + 1))
        left = int(rng.integers(0, size - w + 1))
        window = (slice(top, top + h), slice(left, left + w))
        image[window] = np.where(inside[..., None], colour, image[window])
        mask[window][inside] = kind
    return _to_uint8(image), mask


@functools.lru_cache(maxsize=4)
def _fixed_sky(size: int) -> np.ndarray:
    """The one sky of :func:`pasted_fruit`: ``(size, size, 3)`` float, read-only."""
    rng = np.random.default_rng(_FIXED_SEED)
    t = np.linspace(0, 1, size)[:, None, None]
    sky = np.broadcast_to(np.array([30, 80, 190]) * (1 - t) + np.array([150, 195, 245]) * t,
                          (size, size, 3))
    cover = _smooth_noise(rng, size, sigma=size / 10)
    sky = _clouded(sky, cover, threshold=0.2)
    sky.flags.writeable = False
    return sky


def _clouded(sky: np.ndarray, cover: np.ndarray, threshold: float) -> np.ndarray:
    """White clouds where the smooth field ``cover`` exceeds ``threshold`` (soft edges)."""
    weight = np.clip((cover - threshold) * 1.5, 0, 1)[..., None]
    return sky * (1 - weight) + _CLOUD * weight


@functools.lru_cache(maxsize=4)
def _sprites(size: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The three sprites of :func:`pasted_fruit` by class: colour (h, w, 3) and mask (h, w)."""
    rng = np.random.default_rng(_FIXED_SEED + 1)
    unit = size / 64
    half = math.ceil(13 * unit)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    lemon = _lemon(rng, yy, xx, 0.0, 10 * unit)
    apple = _apple(rng, yy, xx, 0.0, 9 * unit)
    inside = np.zeros(yy.shape, bool)
    colour = np.zeros((*yy.shape, 3))
    for by, bx in ((-3.5, -3.0), (-2.5, 4.0), (3.5, 0.5)):
        berry, shade = _blueberry(rng, yy - by * unit, xx - bx * unit, 4.5 * unit)
        colour = np.where(berry[..., None], shade, colour)
        inside |= berry
    sprites = {LEMON: lemon, APPLE: apple, BLUEBERRY: (inside, colour)}
    return {kind: (np.where(m[..., None], c, 0.0), m) for kind, (m, c) in sprites.items()}


def sky_and_fruit(
    size: int = 64, *, max_objects: int = 4, random_state: RandomState = 0
) -> tuple[Image, LabelMap]:
    """A sky of high internal colour variance occluded by lemons, apples and blueberries.

    The sky is a blue gradient with white clouds or coloured horizontal bands. One to
    ``max_objects`` fruits are drawn in random order (later ones occlude earlier ones) at
    random positions (partly outside the frame too), rotations and scales: lemons are
    yellow, dimpled ellipses with a nub at each end; apples red-to-green round fruits with a
    highlight, a dent and a stem; blueberries small dark-blue berries with a pale bloom and a
    crown, often in bunches. Image and mask are drawn from the same geometry at pixel centres,
    so the mask is exact.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 16``.
    max_objects : int
        Most fruits (or bunches of blueberries) per image, ``>= 1``.
    random_state : int, Generator or None
        Seed of the scene.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` ``uint8``.
    mask : ndarray
        ``(size, size)`` ``int32``: 0 sky, 1 lemon, 2 apple, 3 blueberry (``FRUIT_CLASSES``).
    """
    _check_size(size, 16)
    if not isinstance(max_objects, int) or max_objects < 1:
        raise ParameterError(f"max_objects must be an integer >= 1, got {max_objects!r}")
    rng = np.random.default_rng(random_state)
    image = _sky(rng, size)
    mask = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    unit = size / 64  # sizes below are for a 64 px image
    for _ in range(int(rng.integers(1, max_objects + 1))):
        kind = int(rng.choice([LEMON, APPLE, BLUEBERRY]))
        cy, cx = rng.uniform(-0.05, 1.05, 2) * size
        theta = rng.uniform(0, 2 * math.pi)
        if kind == LEMON:
            inside, colour = _lemon(rng, yy - cy, xx - cx, theta, rng.uniform(8, 15) * unit)
        elif kind == APPLE:
            inside, colour = _apple(rng, yy - cy, xx - cx, theta, rng.uniform(7, 13) * unit)
        else:
            inside = np.zeros((size, size), bool)
            colour = np.zeros((size, size, 3))
            for _ in range(int(rng.integers(1, 5))):
                by, bx = cy + rng.normal(0, 5 * unit), cx + rng.normal(0, 5 * unit)
                berry, shade = _blueberry(rng, yy - by, xx - bx, rng.uniform(3, 5.5) * unit)
                colour = np.where(berry[..., None], shade, colour)
                inside |= berry
        image = np.where(inside[..., None], colour, image)
        mask[inside] = kind
    return _to_uint8(image + rng.normal(0.0, 3.0, image.shape)), mask


def _sky(rng: np.random.Generator, size: int) -> np.ndarray:
    """A vertical blue gradient with white clouds (or, one time in three, coloured bands)."""
    t = np.linspace(0, 1, size)[:, None, None]
    top = np.array([30, 80, 190]) + rng.normal(0, 15, 3)
    bottom = np.array([150, 195, 245]) + rng.normal(0, 10, 3)
    sky = np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3)).copy()
    if rng.uniform() < 1 / 3:
        phase = rng.uniform(0, 2 * math.pi)
        bands = np.sin(np.linspace(0, rng.uniform(2, 5) * math.pi, size) + phase)
        band = np.array([250, 170, 120]) + rng.normal(0, 10, 3)  # sunset-coloured bands
        weight = np.clip(bands, 0, 1)[:, None, None] * 0.7
        return sky * (1 - weight) + band * weight
    cover = _smooth_noise(rng, size, sigma=size / 10)
    return _clouded(sky, cover, threshold=rng.uniform(-0.3, 0.8))


def _rotated(dy: np.ndarray, dx: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    return (dx * math.cos(theta) + dy * math.sin(theta),
            -dx * math.sin(theta) + dy * math.cos(theta))


def _lemon(rng: np.random.Generator, dy: np.ndarray, dx: np.ndarray, theta: float,
           length: float) -> tuple[np.ndarray, np.ndarray]:
    u, v = _rotated(dy, dx, theta)
    a, b = length, length * rng.uniform(0.6, 0.75)
    body = (u / a) ** 2 + (v / b) ** 2
    nubs = ((np.abs(u) - a) / (0.25 * a)) ** 2 + (v / (0.18 * b)) ** 2 <= 1
    inside = (body <= 1) | nubs
    shade = 0.7 + 0.3 * np.sqrt(np.clip(1 - body, 0, 1))
    dimples = rng.normal(0, 12, dy.shape)
    base = np.array([245, 215, 55]) + rng.normal(0, 8, 3)
    return inside, base * shade[..., None] + dimples[..., None] * np.array([1.0, 1.0, 0.3])


def _apple(rng: np.random.Generator, dy: np.ndarray, dx: np.ndarray, theta: float,
           radius: float) -> tuple[np.ndarray, np.ndarray]:
    u, v = _rotated(dy, dx, theta)  # u points to the stem
    r2 = (u**2 + (v / 1.05) ** 2) / radius**2
    dent = ((u - radius) ** 2 + v**2) / (0.3 * radius) ** 2 <= 1
    stem = (u > 0.6 * radius) & (u < 1.25 * radius) & (np.abs(v) < max(0.8, 0.08 * radius))
    inside = ((r2 <= 1) & ~dent) | stem
    red, green = np.array([200, 30, 40]), np.array([150, 190, 60])
    blush = np.clip(0.5 + 0.5 * np.tanh(u / radius * 2 + rng.normal(0, 0.7)), 0, 1)
    mix = rng.uniform(0.0, 0.6)
    base = red * (1 - mix * blush[..., None]) + green * (mix * blush[..., None])
    shade = 0.65 + 0.35 * np.sqrt(np.clip(1 - r2, 0, 1))
    spot = np.exp(-(((u + 0.4 * radius) ** 2 + (v - 0.35 * radius) ** 2) / (0.2 * radius) ** 2))
    colour = base * shade[..., None] + 90 * spot[..., None]
    colour = np.where(stem[..., None] & (r2 > 0.8)[..., None], np.array([90, 60, 30]), colour)
    return inside, colour


def _blueberry(rng: np.random.Generator, dy: np.ndarray, dx: np.ndarray, radius: float
               ) -> tuple[np.ndarray, np.ndarray]:
    r2 = (dy**2 + dx**2) / radius**2
    inside = r2 <= 1
    bloom = 0.25 * np.clip(1 - np.abs(r2 - 0.5) * 2, 0, 1)
    base = np.array([45, 55, 115]) + rng.normal(0, 6, 3)
    colour = base * (1 - bloom[..., None]) + np.array([150, 160, 200]) * bloom[..., None]
    crown = r2 <= 0.06
    return inside, np.where(crown[..., None], np.array([25, 25, 50]), colour)
