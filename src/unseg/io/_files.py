"""Decoding shared by the image and label-map readers: one place that turns bad files into
:class:`~unseg.errors.InputError`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unseg.errors import InputError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

TIFF_SUFFIXES = (".tif", ".tiff")
CORRUPT_FIX = "the file may be truncated or corrupt; export or download it again"
CODEC_FIX = "install the codecs tifffile uses for compressed TIFF files: pip install imagecodecs"


def existing_file(path: str | Path) -> Path:
    """Return ``path`` as a Path after checking that it is a non-empty file.

    Raises
    ------
    InputError
        If the path does not exist, is a folder or is empty.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not a file", fix="give one of the files inside it")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)", fix=CORRUPT_FIX)
    return path


def decode_tiff(path: Path) -> np.ndarray:
    """Read the first series of a TIFF file as stored (no channel or dtype changes)."""
    import tifffile

    try:
        return tifffile.imread(path)
    # tifffile reports damaged files through many exception types (ValueError, zlib.error,
    # TypeError, ZeroDivisionError, ...); every one of them means the file cannot be used.
    except Exception as exc:
        fix = CODEC_FIX if "imagecodecs" in str(exc) else CORRUPT_FIX
        raise InputError(path, f"cannot read the TIFF file ({exc})", fix=fix) from exc


def decode_pillow(path: Path, prepare: Callable[[PILImage], PILImage]) -> np.ndarray:
    """Fully decode a file with Pillow and return ``prepare(image)`` as an array.

    ``prepare`` converts the decoded image (for example palette to RGB); the decode is forced
    with ``load()`` so that truncated data fails here rather than later.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return np.array(prepare(img))
    except UnidentifiedImageError:
        raise InputError(
            path, "not an image file Pillow can read", fix="save it as PNG, JPEG or TIFF"
        ) from None
    except Image.DecompressionBombError as exc:
        raise InputError(
            path, f"image is too large to read whole ({exc})", fix="split it into tiles"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"cannot decode the image ({exc})", fix=CORRUPT_FIX) from exc


def size_text(shape: tuple[int, ...]) -> str:
    """``"HxW"`` for the first two entries of a shape, as used in messages."""
    return f"{shape[0]}x{shape[1]}"
