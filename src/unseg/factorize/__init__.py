"""Non-negative factorization of feature maps and the helpers from factors to pixel labels.

``nmf(X, k)`` factorizes each image's ``(h * w, C)`` features into ``W (h * w, k)`` and
``H (k, C)``, the basis of F-SEG (Gildenblat & Hadar, "Segmentation by Factorization");
``nmf(X, k, H=centres)`` solves ``W`` alone against fixed components such as a concept bank's
centres; ``joint_nmf(X, k)`` factorizes all pixels of a batch at once (Deep Feature
Factorization's co-segmentation, Collins et al. 2018), so the concepts are shared by its images.
:func:`upsample_argmax` and :func:`sample_upsampled` take memberships from the feature grid to
pixels.
"""

from __future__ import annotations

from unseg.factorize.joint import joint_nmf
from unseg.factorize.labels import sample_upsampled, upsample_argmax
from unseg.factorize.nmf import nmf, reconstruction_error

__all__ = ["joint_nmf", "nmf", "reconstruction_error", "sample_upsampled", "upsample_argmax"]
