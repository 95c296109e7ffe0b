"""Sky-and-fruit scenes: lemons, apples and blueberries in front of a sky of varied colour."""

from __future__ import annotations

import math

import numpy as np

from unseg.data.synthetic._common import RandomState, _check_size, _smooth_noise, _to_uint8
from unseg.errors import ParameterError
from unseg.types import Image, LabelMap

SKY, LEMON, APPLE, BLUEBERRY = 0, 1, 2, 3
FRUIT_CLASSES = ("sky", "lemon", "apple", "blueberry")


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
    else:
        cover = _smooth_noise(rng, size, sigma=size / 10)
        band = np.array([248, 248, 252])
        weight = np.clip((cover - rng.uniform(-0.3, 0.8)) * 1.5, 0, 1)[..., None]
    return sky * (1 - weight) + band * weight


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
