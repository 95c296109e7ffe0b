"""Reading and writing images, label maps and overlays.

Images are channel-last NumPy arrays: RGB ``(H, W, 3)`` or grayscale ``(H, W)``, ``uint8`` or
``uint16``; :func:`as_float32` gives methods their ``float32`` input. Label maps are ``(H, W)``
``int32``. Every writer goes through :func:`atomic_write`, so no half-written file is ever
left behind.
"""

from __future__ import annotations

from unseg.io.atomic import atomic_write, output_dir
from unseg.io.colour import colorize, overlay, palette, write_overlay
from unseg.io.images import IMAGE_SUFFIXES, as_float32, read_image, write_image
from unseg.io.labels import MASK_SUFFIXES, read_label_map, write_label_map

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "as_float32",
    "atomic_write",
    "colorize",
    "output_dir",
    "overlay",
    "palette",
    "read_image",
    "read_label_map",
    "write_image",
    "write_label_map",
    "write_overlay",
]
