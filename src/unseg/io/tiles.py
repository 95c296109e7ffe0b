"""Square tiles of a slide at a processing resolution."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from unseg.io.slide_base import Slide
    from unseg.types import Image


def read_tile(slide: Slide, origin: tuple[int, int], downsample: float, side: int) -> Image:
    """The ``side`` x ``side`` RGB region whose top-left corner is ``origin`` ``(x, y)``, both
    in pixels of the processing resolution (``downsample`` level-0 pixels each).

    Read from the slide level closest to that resolution and resized to it: box filter when
    shrinking, bilinear when enlarging.
    """
    from PIL import Image as PILImage

    level = slide.best_level_for_downsample(downsample)
    level_downsample = slide.level_downsamples[level]
    x0, y0 = round(origin[0] * downsample), round(origin[1] * downsample)
    read = max(1, math.ceil(side * downsample / level_downsample))
    region = slide.read_region((x0, y0), level, (read, read))
    if read == side:
        return region
    resample = PILImage.Resampling.BOX if read > side else PILImage.Resampling.BILINEAR
    return np.asarray(PILImage.fromarray(region).resize((side, side), resample))
