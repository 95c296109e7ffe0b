"""Whole-slide images: one reader factory over OpenSlide, tiffslide and plain images.

:func:`open_slide` returns a :class:`Slide` whatever the backend: level-0 ``(x, y)``
coordinates, RGB ``uint8`` regions ``(H, W, 3)`` with everything outside the slide (or
transparent in it) white, a physical resolution in microns per pixel, thumbnails read from the
smallest level that suffices. OpenSlide and tiffslide come with ``pip install 'unseg[wsi]'``
and are imported only when a slide is opened.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import numpy as np

from unseg._optional import optional_import
from unseg.errors import InputError, MissingDependencyError, ParameterError
from unseg.io._files import CORRUPT_FIX, TIFF_SUFFIXES, existing_file
from unseg.types import Image

SLIDE_SUFFIXES: Final = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")
"""Suffixes that are always whole slides; ``.tif``/``.tiff`` files are checked by content."""

BACKENDS: Final = ("openslide", "tiffslide", "image")
"""Names accepted by :func:`open_slide`'s ``backend``."""

PLAIN_IMAGE_SUFFIXES: Final = (".png", ".jpg", ".jpeg")
"""Suffixes read as a one-level slide by the ``"image"`` backend when no backend is named."""

BIG_TIFF_SIDE: Final = 8192
"""A tiled TIFF whose level 0 is longer than this (in pixels) counts as a slide."""

MPP_FIX: Final = (
    "pass --mpp, the microns per pixel of level 0 (for example --mpp 0.25 for a 40x scan)"
)
_SLIDE_FIX = (
    "check that it is a complete whole-slide image in a format OpenSlide reads (SVS, NDPI, "
    "MRXS, SCN, BIF, tiled TIFF); " + CORRUPT_FIX
)
_WHITE = 255


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
        self._closed = False

    # -- physical resolution ---------------------------------------------------------------

    @property
    def mpp(self) -> float:
        """Level-0 microns per pixel.

        In order: the ``mpp`` given to :func:`open_slide`; the slide's metadata (mean of x and
        y); ``10 / objective_power`` (a 40x scan is about 0.25 um/px).

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
            return 10.0 / self.objective_power
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

    def __reduce__(self) -> tuple[Any, tuple[str, float | None, str]]:
        # pickles as "open again": file handles do not travel between processes
        return (_reopen, (str(self.path), self._given_mpp, self.backend))

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
            objective_power=_positive(props.get("openslide.objective-power")),
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
            objective_power=_positive(props.get("tiffslide.objective-power")),
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


def _reopen(path: str, mpp: float | None, backend: str) -> Slide:
    """Unpickle a :class:`Slide` by opening its file again."""
    return open_slide(path, mpp=mpp, backend=backend)


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


def _positive(value: object) -> float | None:
    """``float(value)`` when it is a positive finite number, else None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _mean_mpp(mpp_x: object, mpp_y: object) -> float | None:
    values = [v for v in (_positive(mpp_x), _positive(mpp_y)) if v is not None]
    return sum(values) / len(values) if values else None


def _tiff_mpp(path: Path) -> float | None:
    """Microns per pixel from a TIFF's first page resolution tags, when they are physical.

    Centimetre units always count; inch units only when they give less than 10 um/px, since
    72, 96 or 300 dots per inch are image editors' defaults, not microscope resolutions.
    """
    import tifffile

    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            tags = tif.pages.first.tags
            unit = tags.valueof("ResolutionUnit", 1)
            x = tags.valueof("XResolution")
            y = tags.valueof("YResolution", x)
    except Exception:
        return None
    per_unit = {2: 25400.0, 3: 10000.0}.get(int(unit))  # microns per inch / centimetre
    if per_unit is None or x is None:
        return None
    mpps = [per_unit / (r[0] / r[1]) for r in (x, y) if r[0] > 0 and r[1] > 0]
    if not mpps:
        return None
    mpp = sum(mpps) / len(mpps)
    return mpp if unit == 3 or mpp < 10 else None


def _check_tiff_extent(path: Path) -> None:
    """Raise InputError when a TIFF's image data ends beyond the end of the file.

    Backends open truncated TIFFs without complaint and fail only when a missing tile is read;
    this reads the headers (not the pixels) and catches it at once. Files that are not TIFF,
    or that tifffile cannot parse, are left for the backends to judge.
    """
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic not in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return
    import tifffile

    size = path.stat().st_size
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            if len(tif.pages) == 0:
                raise InputError(path, "the TIFF file holds no readable image", CORRUPT_FIX)
            end = 0
            for page in tif.pages:
                offsets = getattr(page, "dataoffsets", ())
                counts = getattr(page, "databytecounts", ())
                if len(offsets) and len(counts):
                    end = max(end, int(np.max(np.asarray(offsets) + np.asarray(counts))))
    except InputError:
        raise
    except Exception:
        return
    if end > size:
        raise InputError(
            path,
            f"the file is truncated: its image data runs to byte {end} but the file has "
            f"{size} bytes",
            CORRUPT_FIX,
        )


@contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's logged warnings (damaged headers are reported by our own errors)."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
