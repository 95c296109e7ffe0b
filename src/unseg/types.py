"""Shared array aliases.

Images are channel-last NumPy arrays at the I/O boundary: RGB ``(H, W, 3)`` or grayscale
``(H, W)``, ``uint8`` or ``uint16``. Methods work on ``float32`` in ``[0, 1]``
(:func:`unseg.io.as_float32`). A label map is ``(H, W)`` ``int32`` with one id per pixel.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

Image: TypeAlias = NDArray[np.uint8] | NDArray[np.uint16]
FloatImage: TypeAlias = NDArray[np.float32]
LabelMap: TypeAlias = NDArray[np.int32]
