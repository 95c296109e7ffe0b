"""Datasets on disk (labelled ``img/`` + ``mask/`` folders, plain image folders) and synthetic
images with known answers (:mod:`unseg.data.synthetic`)."""

from __future__ import annotations

from unseg.data import synthetic, weak_labels
from unseg.data.datasets import (
    Sample,
    class_names,
    discover,
    discover_slides,
    load_sample,
    slide_id,
)
from unseg.data.names import LabelNames, read_label_names

__all__ = ["LabelNames", "Sample", "class_names", "discover", "discover_slides", "load_sample",
           "read_label_names", "slide_id", "synthetic", "weak_labels"]
