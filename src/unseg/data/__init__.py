"""Datasets on disk (labelled ``img/`` + ``mask/`` folders, plain image folders) and synthetic
images with known answers (:mod:`unseg.data.synthetic`)."""

from __future__ import annotations

from unseg.data import synthetic
from unseg.data.datasets import Sample, discover, discover_slides, load_sample, slide_id

__all__ = ["Sample", "discover", "discover_slides", "load_sample", "slide_id", "synthetic"]
