"""The :class:`Slide` every backend gives: level-0 ``(x, y)`` coordinates, RGB ``uint8``
regions ``(H, W, 3)`` with everything outside the slide (or transparent in it) white, a physical
resolution in microns per pixel, thumbnails read from the smallest level that suffices.

The backends are in :mod:`unseg.io.slide_backends`; :func:`unseg.io.slides.open_slide` picks
one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

import numpy as np

from unseg.errors import InputError, ParameterError
from unseg.io._files import CORRUPT_FIX
from unseg.types import Image

MPP_FIX: Final = (
    "pass --mpp, the microns per pixel of level 0 (for example --mpp 0.25 for a 40x scan)"
)
_SLIDE_FIX = (
    "check that it is a complete whole-slide image in a format OpenSlide reads (SVS, NDPI, "
    "MRXS, SCN, BIF, tiled TIFF); " + CORRUPT_FIX
)
_WHITE = 255

MppSource = Literal["given", "metadata", "objective-power"]
"""Where :attr:`Slide.mpp` comes from (see :attr:`Slide.mpp_source`)."""

log = logging.getLogger("unseg")


class Slide:
    """A whole-slide image opened by :func:`open_slide`: a pyramid of levels read by region.

    Do not create it directly; :func:`open_slide` picks the backend. A slide is a context
    manager (``with open_slide(path) as slide: ...``) and pickles as "open this path again",
    so it can be sent to worker processes.

    Attributes
    ----------
    path : Path
        The slide file.
    backend : {"openslide", "tiffslide", "image"}
        The reader in use.
    dimensions : tuple of int
        Level-0 ``(width, height)`` in pixels.
    level_count : int
        Number of pyramid levels (1 for a plain image).
    level_dimensions : tuple of tuple of int
        ``(width, height)`` of each level, level 0 first.
    level_downsamples : tuple of float
        Level-0 pixels per pixel of each level (``1.0`` for level 0), increasing.
    objective_power : float or None
        Scanning magnification from the metadata (20, 40, ...), when recorded.
    mpp_source : {"given", "metadata", "objective-power"} or None
        Where :attr:`mpp` comes from: the ``mpp`` given to :func:`open_slide`, the file's
        metadata, or a guess from the objective power; None when none of them is known.
    properties : Mapping[str, str]
        The backend's metadata, as strings.
    """

    path: Path
    backend: str
    dimensions: tuple[int, int]
    level_count: int
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    objective_power: float | None
    mpp_source: MppSource | None
    properties: Mapping[str, str]

    def __init__(
        self,
        path: Path,
        backend: str,
        *,
        level_dimensions: tuple[tuple[int, int], ...],
        level_downsamples: tuple[float, ...],
        objective_power: float | None,
        metadata_mpp: float | None,
        mpp: float | None,
        properties: Mapping[str, str],
    ) -> None:
        self.path = path
        self.backend = backend
        self.level_dimensions = level_dimensions
        self.level_downsamples = level_downsamples
        self.dimensions = level_dimensions[0]
        self.level_count = len(level_dimensions)
        self.objective_power = objective_power
        self.properties = properties
        self._metadata_mpp = metadata_mpp
        self._given_mpp = mpp
        self.mpp_source = _mpp_source(mpp, metadata_mpp, objective_power)
        self._guess_reported = False
        self._closed = False

    # -- physical resolution ---------------------------------------------------------------

    @property
    def mpp(self) -> float:
        """Level-0 microns per pixel.

        In order: the ``mpp`` given to :func:`open_slide`; the slide's metadata (mean of x and
        y); ``10 / objective_power`` (a 40x scan is about 0.25 um/px). :attr:`mpp_source` says
        which. The last is a guess (scanners differ), so the first time it is used a warning on
        the ``unseg`` logger names the file and the guessed value and says that ``--mpp``
        overrides it.

        Raises
        ------
        InputError
            If none of them is known; the message says to pass ``--mpp``.
        """
        if self._given_mpp is not None:
            return self._given_mpp
        if self._metadata_mpp is not None:
            return self._metadata_mpp
        if self.objective_power is not None:
            guess = 10.0 / self.objective_power
            if not self._guess_reported:
                self._guess_reported = True
                log.warning(
                    "%s: no microns per pixel in the slide's metadata; guessing %.4g um/px "
                    "from its objective power (10 / %gx), which --mpp overrides. Fix: if the "
                    "guess is wrong, %s",
                    self.path,
                    guess,
                    self.objective_power,
                    MPP_FIX,
                )
            return guess
        raise InputError(
            self.path,
            "no physical resolution (microns per pixel) in the slide's metadata",
            MPP_FIX,
        )

    # -- reading ---------------------------------------------------------------------------

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image:
        """Read a rectangle of one level.

        Parameters
        ----------
        location : tuple of int
            Level-0 ``(x, y)`` of the top-left corner; may lie outside the slide.
        level : int
            Pyramid level, ``0 <= level < level_count``.
        size : tuple of int
            ``(width, height)`` in pixels of ``level``, both ``>= 1``.

        Returns
        -------
        ndarray
            ``(height, width, 3)`` ``uint8`` RGB. Output pixel ``(i, j)`` is pixel
            ``(floor(y / d) + i, floor(x / d) + j)`` of the level, ``d`` its downsample. Parts
            outside the level are white (255), and so are transparent parts inside it
            (alpha is composited onto white).

        Raises
        ------
        InputError
            If the backend fails to decode the region (a damaged file).
        """
        self._check_open()
        level = self._check_level(level)
        x, y = (int(v) for v in location)
        width, height = (int(v) for v in size)
        if width < 1 or height < 1:
            raise ParameterError(f"region size must be at least 1 x 1 pixels, got {size!r}")
        level_width, level_height = self.level_dimensions[level]
        downsample = self.level_downsamples[level]
        # the region in level pixels, then the part of it inside the level
        left, top = math.floor(x / downsample), math.floor(y / downsample)
        skip_x, skip_y = max(0, -left), max(0, -top)
        inside_width = min(width, level_width - left) - skip_x
        inside_height = min(height, level_height - top) - skip_y
        region = np.full((height, width, 3), _WHITE, dtype=np.uint8)
        if inside_width <= 0 or inside_height <= 0:
            return region
        # A region clipped on the left/top starts at level pixel 0, which is level-0 pixel 0.
        start = (x if skip_x == 0 else 0, y if skip_y == 0 else 0)
        try:
            inside = self._read(start, level, (inside_width, inside_height))
        except InputError:
            raise
        except Exception as exc:  # decoders fail in many ways on damaged data
            raise InputError(
                self.path, f"cannot read a region of level {level} ({exc})", _SLIDE_FIX
            ) from exc
        region[skip_y : skip_y + inside_height, skip_x : skip_x + inside_width] = inside
        return region

    def best_level_for_downsample(self, downsample: float) -> int:
        """The level with the largest downsample ``<= downsample`` (level 0 if none)."""
        best = 0
        for level, level_downsample in enumerate(self.level_downsamples):
            if level_downsample <= downsample:
                best = level
        return best

    def thumbnail(self, max_size: int) -> Image:
        """The whole slide, scaled so its longest side is ``min(max_size, level-0 side)``.

        The smallest level at least as large as the thumbnail is read (level 0 of a pyramid
        only when no reduced level is large enough), then resized with antialiasing (Lanczos).

        Parameters
        ----------
        max_size : int
            Longest side of the thumbnail in pixels, ``>= 1``.

        Returns
        -------
        ndarray
            ``(h, w, 3)`` ``uint8`` RGB with ``max(h, w) == min(max_size, max(dimensions))``
            and the slide's aspect ratio (each side rounded, at least 1).
        """
        if not isinstance(max_size, int | np.integer) or max_size < 1:
            raise ParameterError(f"max_size must be an integer >= 1, got {max_size!r}")
        width, height = self.dimensions
        longest = max(width, height)
        scale = longest / min(int(max_size), longest)  # level-0 pixels per thumbnail pixel
        size = (max(1, round(width / scale)), max(1, round(height / scale)))
        level = max(
            level
            for level, (w, h) in enumerate(self.level_dimensions)
            if level == 0 or (w >= size[0] and h >= size[1])
        )
        image = self.read_region((0, 0), level, self.level_dimensions[level])
        if image.shape[1::-1] == size:
            return image
        from PIL import Image as PILImage

        resized = PILImage.fromarray(image).resize(size, PILImage.Resampling.LANCZOS)
        return np.asarray(resized, dtype=np.uint8)

    # -- life cycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Release the file; reading afterwards raises :class:`ParameterError`."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, tuple[Path, float | None]]:
        # pickles as "open again" with the same backend: file handles do not travel between
        # processes
        return (type(self), (self.path, self._given_mpp))

    def __repr__(self) -> str:
        width, height = self.dimensions
        return (
            f"Slide({str(self.path)!r}, backend={self.backend!r}, {width}x{height}, "
            f"levels={self.level_count})"
        )

    # -- backend interface -----------------------------------------------------------------

    def _read(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image:
        """``(h, w, 3)`` uint8 RGB of a region that lies inside the level."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release the backend's resources."""

    def _check_open(self) -> None:
        if self._closed:
            raise ParameterError(f"{self.path}: the slide is closed; open it again")

    def _check_level(self, level: int) -> int:
        if not isinstance(level, int | np.integer) or not 0 <= level < self.level_count:
            raise ParameterError(
                f"{self.path}: level must be an integer in 0..{self.level_count - 1}, got {level!r}"
            )
        return int(level)


def _mpp_source(
    mpp: float | None, metadata_mpp: float | None, objective_power: float | None
) -> MppSource | None:
    """Where a slide's microns per pixel come from, in the order :attr:`Slide.mpp` uses."""
    if mpp is not None:
        return "given"
    if metadata_mpp is not None:
        return "metadata"
    if objective_power is not None:
        return "objective-power"
    return None
