"""Small synthetic images with known answers, for tests and for a demo without real data.

Every generator takes ``random_state`` (the same seed gives the same output) and returns
``(image, mask)``: an RGB ``uint8`` image ``(H, W, 3)`` and its ``int32`` class ids ``(H, W)``.

:func:`write_synthetic_slide` writes pyramidal whole slides of any size (generic tiled TIFF or
Aperio-like SVS) tile by tile, and :func:`synthetic_slide_truth` gives their class map at any
downsample.

The modules: :mod:`~unseg.data.synthetic.tiles` (:func:`quadrants`, :func:`blobs`,
:func:`he_tile`), :mod:`~unseg.data.synthetic.fruit` (:func:`sky_and_fruit`),
:mod:`~unseg.data.synthetic.dataset` (:func:`write_dataset`) and
:mod:`~unseg.data.synthetic.slides` (the whole slides).
"""

from __future__ import annotations

from unseg.data.synthetic._common import RandomState
from unseg.data.synthetic.dataset import write_dataset
from unseg.data.synthetic.fruit import APPLE, BLUEBERRY, FRUIT_CLASSES, LEMON, SKY, sky_and_fruit
from unseg.data.synthetic.slides import SlideFlavour, synthetic_slide_truth, write_synthetic_slide
from unseg.data.synthetic.tiles import blobs, he_tile, quadrants

__all__ = [
    "APPLE",
    "BLUEBERRY",
    "FRUIT_CLASSES",
    "LEMON",
    "RandomState",
    "SKY",
    "SlideFlavour",
    "blobs",
    "he_tile",
    "quadrants",
    "sky_and_fruit",
    "synthetic_slide_truth",
    "write_dataset",
    "write_synthetic_slide",
]
