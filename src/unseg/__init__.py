"""unseg: label-free segmentation of pathology and medical images."""

__version__ = "0.1.0"
