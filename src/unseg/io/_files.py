"""Decoding shared by the image and label-map readers: one place that turns bad files into
:class:`~unseg.errors.InputError`, and that refuses images too large to decode whole."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from unseg.errors import InputError, ParameterError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

TIFF_SUFFIXES = (".tif", ".tiff")
CORRUPT_FIX = "the file may be truncated or corrupt; export or download it again"
CODEC_FIX = "install the codecs tifffile uses for compressed TIFF files: pip install imagecodecs"

MAX_PIXELS_VARIABLE: Final = "UNSEG_MAX_PIXELS"
"""The environment variable that sets :func:`max_pixels`."""

DEFAULT_MAX_PIXELS: Final = 178_956_970
"""Pillow's default decompression-bomb error threshold (twice ``PIL.Image.MAX_IMAGE_PIXELS``)."""

log = logging.getLogger("unseg")

# Pillow's own decompression-bomb check reads the global PIL.Image.MAX_IMAGE_PIXELS; this lock
# keeps concurrent reads from restoring each other's value (see _open_pillow).
_PILLOW_LIMIT_LOCK = threading.Lock()


def max_pixels() -> int:
    """The largest image, in pixels (height x width), that the image and mask readers decode.

    :func:`~unseg.io.read_image` and :func:`~unseg.io.read_label_map` read each file's size
    from its header (Pillow's lazy open, tifffile's page shape, the ``.npy`` header) and refuse
    a larger image with an :class:`~unseg.errors.InputError` before decoding anything, so a
    small file that decompresses to gigabytes (a "decompression bomb") costs nothing.

    The limit is the environment variable ``UNSEG_MAX_PIXELS`` when it is set (it is read at
    every call, so it reaches worker processes and works from the command line). Otherwise it
    is Pillow's own refusal threshold, twice ``PIL.Image.MAX_IMAGE_PIXELS``: by default
    :data:`DEFAULT_MAX_PIXELS` = 178,956,970 pixels (also used when an application turned
    Pillow's check off), so every PNG or JPEG file Pillow read before still reads and TIFF
    files get the same bound. That is a 13,377 x 13,377 image, 0.5 GB as RGB ``uint8`` and
    2.1 GB once converted to ``float32``: about 145 times the largest image of the project's
    real data (1270 x 975). Larger images belong in whole-slide files, which are read by
    region and are not subject to this limit. For PNG and JPEG files this limit takes the place
    of Pillow's check.

    Returns
    -------
    int
        The limit in pixels, ``>= 1``.

    Raises
    ------
    ParameterError
        If ``UNSEG_MAX_PIXELS`` is set to anything but a positive whole number.
    """
    value = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not value:
        from PIL import Image

        pillow_limit = Image.MAX_IMAGE_PIXELS
        return DEFAULT_MAX_PIXELS if pillow_limit is None else 2 * int(pillow_limit)
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ParameterError(
            f"the environment variable {MAX_PIXELS_VARIABLE} must be a positive whole number "
            f"of pixels, got {value!r}; set it to, for example, {DEFAULT_MAX_PIXELS * 2}, or "
            "unset it for the default"
        )
    return limit


def check_pixels(path: Path, shape: tuple[int, ...], limit: int) -> None:
    """Refuse an image of ``shape`` (its spatial axes) with more than ``limit`` pixels.

    Raises
    ------
    InputError
        If the product of ``shape`` exceeds ``limit``; the message gives the size and how to
        raise the limit.
    """
    pixels = math.prod(shape)
    if pixels > limit:
        raise InputError(
            path,
            f"image is too large to decode: {'x'.join(map(str, shape))} pixels ({pixels:,} in "
            f"all), more than the limit of {limit:,} that guards against decompression bombs",
            fix=f"if you trust the file, raise the limit by setting the environment variable "
            f"{MAX_PIXELS_VARIABLE}={pixels} (or more), or split the image into tiles",
        )


def existing_file(path: str | Path) -> Path:
    """Return ``path`` as a Path after checking that it is a non-empty file.

    Raises
    ------
    InputError
        If the path does not exist (a broken symbolic link is named as such), is a folder or
        is empty.
    """
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            raise InputError(
                path,
                f"broken symbolic link to {os.readlink(path)}",
                fix="restore the file it points to, or remove the link",
            )
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not a file", fix="give one of the files inside it")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)", fix=CORRUPT_FIX)
    return path


def decode_tiff(path: Path) -> tuple[np.ndarray, int]:
    """Read the first image of a TIFF file as stored (no channel or dtype changes).

    The image is the file's first series. When that series is a stack of pages (a z-stack,
    a time series, channels stored as pages), only its first page is read and a warning on
    the ``unseg`` logger names the file and the page count: pages are never taken for colour
    channels, which are the samples of one page. The image's size is checked against
    :func:`max_pixels` from the page header before any pixel is decoded.

    Returns
    -------
    array : ndarray
        The image as tifffile decodes it, e.g. ``(H, W)``, ``(H, W, S)`` or, for separate
        colour planes, ``(S, H, W)``.
    bits : int
        The file's BitsPerSample (12 for 12-bit samples, which tifffile gives as ``uint16``).

    Raises
    ------
    InputError
        If the file cannot be read or its image is larger than :func:`max_pixels`.
    ParameterError
        If the limit's environment variable is invalid.
    """
    import tifffile

    limit = max_pixels()
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            page = series.keyframe
            check_pixels(path, (page.imagelength, page.imagewidth), limit)
            pages = math.prod(series.shape) // max(1, math.prod(page.shape))
            if pages > 1:
                log.warning(
                    "%s: the TIFF file holds a stack of %d pages; reading its first page only "
                    "(pages are not colour channels). Fix: save the page you want as an image "
                    "of its own",
                    path,
                    pages,
                )
                array = tif.asarray(key=0, series=0)
            else:
                array = series.asarray()
            return array, int(page.bitspersample)
    except InputError:
        raise
    # tifffile reports damaged files through many exception types (ValueError, zlib.error,
    # TypeError, ZeroDivisionError, ...); every one of them means the file cannot be used.
    except Exception as exc:
        fix = CODEC_FIX if "imagecodecs" in str(exc) else CORRUPT_FIX
        raise InputError(path, f"cannot read the TIFF file ({exc})", fix=fix) from exc


def decode_pillow(path: Path, prepare: Callable[[PILImage], PILImage]) -> np.ndarray:
    """Fully decode a file with Pillow and return ``prepare(image)`` as an array.

    The size is checked against :func:`max_pixels` from the header before decoding.
    ``prepare`` converts the decoded image (for example palette to RGB); the decode is forced
    with ``load()`` so that truncated data fails here rather than later.
    """
    from PIL import Image, UnidentifiedImageError

    limit = max_pixels()
    try:
        with _open_pillow(path) as img:
            check_pixels(path, (img.height, img.width), limit)
            img.load()
            return np.array(prepare(img))
    except UnidentifiedImageError:
        raise InputError(
            path, "not an image file Pillow can read", fix="save it as PNG, JPEG or TIFF"
        ) from None
    except Image.DecompressionBombError as exc:  # some formats check embedded images on load
        raise InputError(
            path, f"image is too large to read whole ({exc})", fix="split it into tiles"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"cannot decode the image ({exc})", fix=CORRUPT_FIX) from exc


def _open_pillow(path: Path) -> PILImage:
    """Open an image lazily (header only) with Pillow's decompression-bomb check off.

    :func:`check_pixels` takes its place (its default is Pillow's threshold), so that raising
    ``UNSEG_MAX_PIXELS`` is enough to read a larger image. Pillow's global is restored as soon
    as the header is read.
    """
    from PIL import Image

    with _PILLOW_LIMIT_LOCK:
        pillow_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit


def size_text(shape: tuple[int, ...]) -> str:
    """``"HxW"`` for the first two entries of a shape, as used in messages."""
    return f"{shape[0]}x{shape[1]}"
