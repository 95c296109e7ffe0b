"""W-Net (Xia and Kulis, 2017): two U-Nets as an autoencoder through a K-way soft segmentation.

The encoder U_Enc maps an image to K softmax channels, the segmentation; the decoder U_Dec maps
those back to the image. Training alternates, per mini-batch, a step of U_Enc on the soft
normalised cut of its segmentation (:func:`soft_ncut_loss`: segments of similar colour that
are near each other) and a step of both networks on the reconstruction error
(:func:`reconstruction_loss`). The U-Nets are :class:`unseg.models.cirs.UNet`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _offsets(radius: int) -> list[tuple[int, int]]:
    return [(dy, dx) for dy in range(-radius + 1, radius) for dx in range(-radius + 1, radius)
            if dy * dy + dx * dx < radius * radius]


def soft_ncut_loss(x: torch.Tensor, probs: torch.Tensor, *, radius: int = 5,
                   sigma_colour: float = 10 / 255, sigma_distance: float = 4.0) -> torch.Tensor:
    """The soft normalised cut of W-Net, averaged over the batch.

    ``K - sum_k assoc(A_k, A_k) / assoc(A_k, V)`` per image, where ``assoc(A_k, A_k) = sum_ij
    w_ij p_ik p_jk``, ``assoc(A_k, V) = sum_ij w_ij p_ik`` and ``w_ij = exp(-|x_i - x_j|^2 /
    sigma_colour^2) * exp(-|i - j|^2 / sigma_distance^2)`` for pixels less than ``radius``
    apart (0 otherwise); ``x`` is the image in [0, 1] (colour distance over its channels).

    Parameters
    ----------
    x : (B, C, H, W) images
    probs : (B, K, H, W) soft segmentation (each pixel's K values sum to 1)
    """
    b, k, h, w = probs.shape
    r = radius - 1
    xp = F.pad(x, (r, r, r, r))
    pp = F.pad(probs, (r, r, r, r))
    inside = F.pad(torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device), (r, r, r, r))
    assoc = torch.zeros(b, k, dtype=x.dtype, device=x.device)
    degree = torch.zeros(b, 1, h, w, dtype=x.dtype, device=x.device)
    for dy, dx in _offsets(radius):
        window = (slice(None), slice(None), slice(r + dy, r + dy + h), slice(r + dx, r + dx + w))
        colour = (x - xp[window]).pow(2).sum(dim=1, keepdim=True)
        weight = (torch.exp(-colour / sigma_colour**2 - (dy * dy + dx * dx) / sigma_distance**2)
                  * inside[window])
        assoc = assoc + (probs * weight * pp[window]).sum(dim=(2, 3))
        degree = degree + weight
    volume = (probs * degree).sum(dim=(2, 3))
    return (k - (assoc / volume.clamp_min(1e-12)).sum(dim=1)).mean()


def reconstruction_loss(x: torch.Tensor, encoder: nn.Module, decoder: nn.Module
                        ) -> torch.Tensor:
    """Mean squared error of the W-Net's reconstruction of a batch ``x`` (B, C, H, W) in
    [0, 1]: the decoder's output, through a sigmoid, from the encoder's soft segmentation."""
    probs = torch.softmax(encoder(x), dim=1)
    return F.mse_loss(torch.sigmoid(decoder(probs)), x)
