"""Helpers shared by the synthetic generators: seeds, H&E colours, size checks, noise."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np

from unseg.errors import ParameterError

RandomState: TypeAlias = int | np.random.Generator | None

_BACKGROUND_RGB = np.array([240.0, 240.0, 240.0])  # glass, no tissue
_STROMA_RGB = np.array([230.0, 150.0, 190.0])  # eosin pink
_NUCLEUS_RGB = np.array([90.0, 60.0, 150.0])  # haematoxylin purple


def _check_size(size: int, minimum: int) -> None:
    if not isinstance(size, int | np.integer) or size < minimum:
        raise ParameterError(f"size must be an integer >= {minimum}, got {size!r}")


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """``(size, size)`` Gaussian-smoothed white noise scaled to unit standard deviation."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=sigma)
    return field / field.std()


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
