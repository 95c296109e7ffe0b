"""Datasets on disk (labelled ``img/`` + ``mask/`` folders, plain image folders) and synthetic
images with known answers (:mod:`unseg.data.synthetic`)."""

from __future__ import annotations

from unseg.data import synthetic
from unseg.data.datasets import Sample, discover, load_sample

__all__ = ["Sample", "discover", "load_sample", "synthetic"]
