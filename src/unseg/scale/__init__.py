"""Runners over many images and slides: local by default, Dask distributed when asked."""

from unseg.scale.executors import DaskExecutor, LocalExecutor
from unseg.scale.local import Failures, SegmentRun, progress, read_images, segment_samples
from unseg.scale.slides import SlideOptions, segment_slides

__all__ = [
    "DaskExecutor",
    "Failures",
    "LocalExecutor",
    "SegmentRun",
    "SlideOptions",
    "progress",
    "read_images",
    "segment_samples",
    "segment_slides",
]
