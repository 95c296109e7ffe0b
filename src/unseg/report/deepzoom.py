"""Deep Zoom (DZI) tile pyramids, the format OpenSeadragon reads: ``NAME.dzi`` describes the
image and ``NAME_files/<level>/<column>_<row>.<format>`` hold its tiles, level ``L`` being the
image shrunk ``2 ** (top - L)`` times (``top = ceil(log2(longest side))``, level 0 one pixel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from unseg.report.images import save_jpeg, save_png

#: Tile side in pixels (tiles do not overlap).
TILE = 256
_FORMATS = {"jpg": save_jpeg, "png": save_png}


def levels(width: int, height: int) -> list[tuple[int, int, int]]:
    """``(scale, width, height)`` of every level, from level 0 (scale ``2 ** top``) to the
    full image (scale 1)."""
    top = math.ceil(math.log2(max(width, height, 1)))
    return [(2 ** (top - level), math.ceil(width / 2 ** (top - level)),
             math.ceil(height / 2 ** (top - level))) for level in range(top + 1)]


def write_pyramid(folder: Path, name: str, width: int, height: int,
                  read: Callable[[int, int, int, int, int], np.ndarray], fmt: str, url: str
                  ) -> dict[str, Any]:
    """Write the DZI pyramid of a ``width`` x ``height`` image into ``folder``.

    Parameters
    ----------
    read : callable
        ``read(scale, x, y, w, h)``: the ``(h, w, 3)`` (or ``(h, w, 4)`` for PNG) ``uint8``
        pixels at ``(x, y)`` of the image shrunk ``scale`` times.
    fmt : {"jpg", "png"}
        Tile format (PNG keeps transparency).
    url : str
        ``folder`` as the page showing the pyramid links to it (``"slide/zoom"``).

    Returns
    -------
    dict
        The tile source as OpenSeadragon takes it inline: a page opened from disk may not
        fetch the ``.dzi`` file (which other viewers read), but loads tiles as images.
    """
    from unseg.io import atomic_write

    save = _FORMATS[fmt]
    for level, (scale, level_width, level_height) in enumerate(levels(width, height)):
        for y in range(0, level_height, TILE):
            for x in range(0, level_width, TILE):
                w, h = min(TILE, level_width - x), min(TILE, level_height - y)
                save(folder / f"{name}_files" / str(level) / f"{x // TILE}_{y // TILE}.{fmt}",
                     read(scale, x, y, w, h))
    with atomic_write(folder / f"{name}.dzi") as tmp:
        tmp.write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="{fmt}" '
            f'Overlap="0" TileSize="{TILE}"><Size Width="{width}" Height="{height}"/></Image>\n')
    return {"Image": {"xmlns": "http://schemas.microsoft.com/deepzoom/2008",
                      "Url": f"{url}/{name}_files/", "Format": fmt, "Overlap": "0",
                      "TileSize": str(TILE), "Size": {"Width": str(width),
                                                      "Height": str(height)}}}
