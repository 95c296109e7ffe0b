"""Reading and writing images, label maps and overlays.

Images are channel-last NumPy arrays: RGB ``(H, W, 3)`` or grayscale ``(H, W)``, ``uint8`` or
``uint16``; :func:`as_float32` gives methods their ``float32`` input. Label maps are ``(H, W)``
``int32``. Every writer goes through :func:`atomic_write`, so no half-written file is ever
left behind.

Whole slides open with :func:`open_slide` (OpenSlide, tiffslide or a plain image; the first two
are imported only when a slide is opened) and :func:`detect_tissue` finds their tissue.

The per-slide exports (:func:`write_ome_tiff`, :func:`label_geojson`, :func:`write_geojson`,
:func:`label_areas`, :func:`write_area_csv`) take slide label maps (``uint8``/``uint16``, 0 = no
tissue, ``v`` = concept ``v - 1``, possibly memory-mapped); tifffile, rasterio and shapely are
imported only when they run.
"""

from __future__ import annotations

from unseg.io._files import DEFAULT_MAX_PIXELS, MAX_PIXELS_VARIABLE, max_pixels
from unseg.io.areas import label_areas, write_area_csv
from unseg.io.atomic import atomic_write, output_dir
from unseg.io.colour import colourize, overlay, palette, write_overlay
from unseg.io.geojson import label_geojson, write_geojson
from unseg.io.images import IMAGE_SUFFIXES, as_float32, read_image, write_image
from unseg.io.labels import MASK_SUFFIXES, read_label_map, write_label_map
from unseg.io.ome_tiff import write_ome_tiff
from unseg.io.slide_base import Slide
from unseg.io.slides import SLIDE_SUFFIXES, is_slide, open_slide
from unseg.io.tissue import detect_tissue, tissue_mask

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "MAX_PIXELS_VARIABLE",
    "SLIDE_SUFFIXES",
    "Slide",
    "as_float32",
    "atomic_write",
    "colourize",
    "detect_tissue",
    "is_slide",
    "label_areas",
    "label_geojson",
    "max_pixels",
    "open_slide",
    "output_dir",
    "overlay",
    "palette",
    "read_image",
    "read_label_map",
    "tissue_mask",
    "write_area_csv",
    "write_geojson",
    "write_image",
    "write_label_map",
    "write_ome_tiff",
    "write_overlay",
]
