"""Non-negative factorization of feature maps: batched NMF (free or fixed-H) and Deep Feature
Factorization.

``nmf(X, k)`` factorizes each image's ``(h * w, C)`` features into ``W (h * w, k)`` and
``H (k, C)``, the basis of F-SEG (Gildenblat & Hadar, "Segmentation by Factorization");
``nmf(X, k, H=centres)`` solves ``W`` alone against fixed components such as a concept bank's
centres; ``dff(X, k)`` factorizes all pixels of a batch at once (Collins et al. 2018), so the
concepts are shared by its images.
"""

from __future__ import annotations

from unseg.factorize.dff import dff
from unseg.factorize.nmf import nmf, reconstruction_error

__all__ = ["dff", "nmf", "reconstruction_error"]
