"""Whole-slide images: one reader factory over OpenSlide, tiffslide and plain images.

:func:`open_slide` returns a :class:`~unseg.io.slide_base.Slide` whatever the backend.
OpenSlide and tiffslide come with ``pip install 'unseg[wsi]'`` and are imported only when a
slide is opened. The backends are in :mod:`unseg.io.slide_backends`, the TIFF header checks in
:mod:`unseg.io.tiff_meta`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final

from unseg.errors import InputError, MissingDependencyError, ParameterError
from unseg.io._files import TIFF_SUFFIXES, existing_file
from unseg.io.slide_backends import _BACKEND_CLASSES, _ImageSlide
from unseg.io.slide_base import _SLIDE_FIX, Slide
from unseg.io.tiff_meta import _check_tiff_extent, _quiet_tifffile

SLIDE_SUFFIXES: Final = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")
"""Suffixes that are always whole slides; ``.tif``/``.tiff`` files are checked by content."""

BACKENDS: Final = ("openslide", "tiffslide", "image")
"""Names accepted by :func:`open_slide`'s ``backend``."""

PLAIN_IMAGE_SUFFIXES: Final = (".png", ".jpg", ".jpeg")
"""Suffixes read as a one-level slide by the ``"image"`` backend when no backend is named."""

BIG_TIFF_SIDE: Final = 8192
"""A tiled TIFF whose level 0 is longer than this (in pixels) counts as a slide."""


def open_slide(path: str | Path, *, mpp: float | None = None, backend: str | None = None) -> Slide:
    """Open a whole-slide image (or a plain image as a one-level slide).

    Parameters
    ----------
    path : str or Path
        The slide: SVS, NDPI, MRXS, SCN, BIF, pyramidal or plain TIFF, PNG, JPEG...
    mpp : float, optional
        Level-0 microns per pixel; overrides the metadata (see :attr:`Slide.mpp`).
    backend : {"openslide", "tiffslide", "image"}, optional
        The reader. None picks one: ``.png``/``.jpg``/``.jpeg`` are images; anything else
        goes to OpenSlide, then tiffslide if OpenSlide is missing or cannot open the file,
        then, for ``.tif``/``.tiff``, the image reader.

    Returns
    -------
    Slide

    Raises
    ------
    InputError
        If the file is missing, empty, truncated or unreadable by every backend tried; the
        message names the file, each backend's reason and the fix.
    MissingDependencyError
        If a backend named here, or every backend that could read the file, is not installed.
    ParameterError
        For an unknown backend or a non-positive ``mpp``.
    """
    if backend is not None and backend not in BACKENDS:
        raise ParameterError(
            f"unknown slide backend {backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    if mpp is not None and not (isinstance(mpp, int | float) and math.isfinite(mpp) and mpp > 0):
        raise ParameterError(f"mpp must be a positive number of microns per pixel, got {mpp!r}")
    mpp = None if mpp is None else float(mpp)
    path = existing_file(path)
    _check_tiff_extent(path)
    if backend is not None:
        return _BACKEND_CLASSES[backend](path, mpp)
    suffix = path.suffix.lower()
    if suffix in PLAIN_IMAGE_SUFFIXES:
        return _ImageSlide(path, mpp)
    candidates = ["openslide", "tiffslide"] + (["image"] if suffix in TIFF_SUFFIXES else [])
    failures: list[str] = []
    missing: list[MissingDependencyError] = []
    for name in candidates:
        try:
            return _BACKEND_CLASSES[name](path, mpp)
        except MissingDependencyError as exc:
            missing.append(exc)
        except InputError as exc:
            failures.append(exc.reason)
    if not failures:  # nothing installed could try
        raise missing[0]
    reason = "; ".join(failures)
    if missing:
        reason += " (not installed: " + ", ".join(str(e).split(" ")[0] for e in missing) + ")"
    raise InputError(path, f"cannot open the slide: {reason}", _SLIDE_FIX)


def is_slide(path: str | Path) -> bool:
    """Whether ``path`` is a whole slide (to be read by region) rather than a plain image.

    True for the suffixes in :data:`SLIDE_SUFFIXES`; for ``.tif``/``.tiff``, True when level 0
    is tiled and the file holds more than one resolution level or level 0 is longer than
    8192 pixels (only the TIFF header is read). False for everything else, including files
    that are missing or not readable TIFFs.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SLIDE_SUFFIXES:
        return True
    if suffix not in TIFF_SUFFIXES or not path.is_file():
        return False
    import tifffile

    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            first = tif.pages.first
            if not first.is_tiled:
                return False
            if max(first.imagewidth, first.imagelength) > BIG_TIFF_SIDE:
                return True
            series = tif.series[0] if tif.series else None
            if series is not None and len(series.levels) > 1:
                return True
            # reduced levels as SubIFDs, or as further tiled pages of the main chain
            return bool(first.subifds) or any(
                isinstance(page, tifffile.TiffPage)
                and page.is_tiled
                and page.imagewidth < first.imagewidth
                for page in tif.pages[1:]
            )
    except Exception:  # not a TIFF tifffile can parse: not a slide we can route
        return False
