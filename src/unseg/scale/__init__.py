"""Runners over many images: local by default."""

from unseg.scale.local import Failures, SegmentRun, progress, read_images, segment_samples

__all__ = ["Failures", "SegmentRun", "progress", "read_images", "segment_samples"]
