"""The readers behind :func:`~unseg.io.open_slide`: OpenSlide, tiffslide and plain images.

Each backend is a :class:`~unseg.io.Slide` subclass opened from ``(path, mpp)``; OpenSlide and
tiffslide are imported only when a slide is opened with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from unseg._optional import optional_import
from unseg.errors import InputError, MissingDependencyError
from unseg.io._files import TIFF_SUFFIXES
from unseg.io.slide_base import _SLIDE_FIX, _WHITE, Slide
from unseg.io.tiff_meta import _tiff_mpp
from unseg.types import Image


class _OpenSlideSlide(Slide):
    def __init__(self, path: Path, mpp: float | None) -> None:
        openslide = _import_backend("openslide")
        try:
            handle = openslide.OpenSlide(str(path))
        except openslide.OpenSlideError as exc:
            raise InputError(path, f"OpenSlide cannot open it ({exc})", _SLIDE_FIX) from exc
        self._handle = handle
        props = dict(handle.properties)
        super().__init__(
            path,
            "openslide",
            level_dimensions=tuple((int(w), int(h)) for w, h in handle.level_dimensions),
            level_downsamples=tuple(float(d) for d in handle.level_downsamples),
            objective_power=_positive_or_none(props.get("openslide.objective-power")),
            metadata_mpp=_mean_mpp(props.get("openslide.mpp-x"), props.get("openslide.mpp-y")),
            mpp=mpp,
            properties=props,
        )

    def _read(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image:
        rgba = np.asarray(self._handle.read_region(location, level, size))
        return _rgb(rgba)

    def _close(self) -> None:
        self._handle.close()


class _TiffSlideSlide(Slide):
    def __init__(self, path: Path, mpp: float | None) -> None:
        tiffslide = _import_backend("tiffslide")
        try:
            handle = tiffslide.TiffSlide(path)
        # tifffile and tiffslide report unreadable files through many exception types
        except Exception as exc:
            raise InputError(path, f"tiffslide cannot open it ({exc})", _SLIDE_FIX) from exc
        self._handle = handle
        props = {k: str(v) for k, v in handle.properties.items() if v is not None}
        super().__init__(
            path,
            "tiffslide",
            level_dimensions=tuple((int(w), int(h)) for w, h in handle.level_dimensions),
            level_downsamples=tuple(float(d) for d in handle.level_downsamples),
            objective_power=_positive_or_none(props.get("tiffslide.objective-power")),
            metadata_mpp=_mean_mpp(props.get("tiffslide.mpp-x"), props.get("tiffslide.mpp-y")),
            mpp=mpp,
            properties=props,
        )

    def _read(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image:
        array = self._handle.read_region(location, level, size, as_array=True)
        return _rgb(np.asarray(array))

    def _close(self) -> None:
        self._handle.close()


class _ImageSlide(Slide):
    """A plain image held in memory as a one-level slide."""

    def __init__(self, path: Path, mpp: float | None) -> None:
        from unseg.io.images import read_image

        self._image = _rgb(read_image(path))
        height, width = self._image.shape[:2]
        super().__init__(
            path,
            "image",
            level_dimensions=((width, height),),
            level_downsamples=(1.0,),
            objective_power=None,
            metadata_mpp=_tiff_mpp(path) if path.suffix.lower() in TIFF_SUFFIXES else None,
            mpp=mpp,
            properties={},
        )

    def _read(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image:
        (x, y), (width, height) = location, size
        return self._image[y : y + height, x : x + width].copy()

    def _close(self) -> None:
        del self._image


_BACKEND_CLASSES: dict[str, Callable[[Path, float | None], Slide]] = {
    "openslide": _OpenSlideSlide,
    "tiffslide": _TiffSlideSlide,
    "image": _ImageSlide,
}


def _import_backend(module: str) -> Any:
    try:
        return optional_import(module, "wsi")
    except OSError as exc:  # the module is there but its C library is not
        raise MissingDependencyError(
            f"{module} is installed but cannot load its library ({exc}); reinstall it with "
            "`pip install 'unseg[wsi]'`"
        ) from exc


def _rgb(array: np.ndarray) -> Image:
    """``(h, w, 3)`` uint8 RGB from gray, gray + alpha, RGB or RGBA (alpha onto white)."""
    if array.ndim == 2:
        array = array[..., None]
    if array.dtype == np.uint16:
        array = ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    channels = array.shape[-1]
    if channels in (2, 4):
        colour, alpha = array[..., :-1].astype(np.uint16), array[..., -1:].astype(np.uint16)
        # non-premultiplied alpha over white, rounded
        array = ((colour * alpha + _WHITE * (255 - alpha) + 127) // 255).astype(np.uint8)
        channels -= 1
    if channels == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


def _positive_or_none(value: object) -> float | None:
    """``float(value)`` when it is a positive finite number, else None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _mean_mpp(mpp_x: object, mpp_y: object) -> float | None:
    values = [v for v in (_positive_or_none(mpp_x), _positive_or_none(mpp_y)) if v is not None]
    return sum(values) / len(values) if values else None

