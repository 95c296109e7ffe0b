"""What a TIFF file's headers say: its physical resolution and whether its data is all there.

tifffile is imported only when a file is read; its logged warnings are silenced, since damaged
headers are reported by our own errors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from unseg.errors import InputError
from unseg.io._files import CORRUPT_FIX


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
